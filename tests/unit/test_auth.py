"""API tokens without a store: format, hashing, scopes and their implications, the surface."""

from __future__ import annotations

import hashlib
import string
from datetime import UTC, datetime

import pytest

import syncsvc.auth
from syncsvc.auth import (
    ADMIN,
    SCIM_READ,
    SCIM_WRITE,
    TokenError,
    TokenInfo,
    UnknownScope,
    grants,
    hash_secret,
    parse_scopes,
)
from syncsvc.auth.tokens import generate_secret, looks_like_token
from syncsvc.errors import SyncSvcError

URLSAFE = set(string.ascii_letters + string.digits + "-_")


def info(*scopes: str, revoked: datetime | None = None) -> TokenInfo:
    return TokenInfo(id="id-1", name="okta", scopes=scopes, created=datetime(2026, 1, 1, tzinfo=UTC),
                     last_used=None, revoked=revoked)


class TestFormat:
    def test_secret_is_prefix_and_43_urlsafe_characters(self) -> None:
        """scs_ + 43 base64url characters: 256 bits, no padding."""
        secret = generate_secret()

        assert ("scs_", 47) == (secret[:4], len(secret))
        assert set(secret[4:]) <= URLSAFE

    def test_secrets_differ(self) -> None:
        """Each call draws fresh randomness."""
        assert 100 == len({generate_secret() for _ in range(100)})

    def test_generated_secrets_look_like_tokens(self) -> None:
        """The shape check accepts what the generator makes."""
        assert all(looks_like_token(generate_secret()) for _ in range(100))

    @pytest.mark.parametrize("value", [
        "", "scs_", "scs_short", "xyz_" + "a" * 43, "scs_" + "a" * 42, "scs_" + "a" * 44,
        "scs_" + "a" * 42 + "=", "scs_" + "a" * 42 + " ", "SCS_" + "a" * 43,
    ])
    def test_other_shapes_are_rejected(self, value: str) -> None:
        """Wrong prefix, length or alphabet: not a token (no store lookup needed)."""
        assert not looks_like_token(value)


class TestHashing:
    def test_hash_is_sha256_hex_of_the_secret(self) -> None:
        """The store keeps hashlib.sha256(secret).hexdigest(), 64 lower-case hex digits."""
        secret = generate_secret()

        assert hashlib.sha256(secret.encode()).hexdigest() == hash_secret(secret)
        assert 64 == len(hash_secret(secret))

    def test_hash_never_contains_the_secret(self) -> None:
        """The digest reveals nothing of the secret's text."""
        secret = generate_secret()

        assert secret[4:12] not in hash_secret(secret)


class TestScopes:
    @pytest.mark.parametrize(("value", "expected"), [
        ("scim:read", ("scim:read",)),
        ("scim:write,scim:read", ("scim:read", "scim:write")),
        (" admin , scim:read ,", ("admin", "scim:read")),
        ("scim:read,scim:read", ("scim:read",)),
        (["admin", "scim:write"], ("admin", "scim:write")),
    ])
    def test_parse_sorts_and_deduplicates(self, value: str | list[str], expected: tuple[str, ...]) -> None:
        """Comma lists and iterables alike; whitespace and empty items ignored."""
        assert expected == parse_scopes(value)

    def test_unknown_scope_names_it_and_lists_valid_ones(self) -> None:
        """The error says which scope is wrong and which exist."""
        with pytest.raises(UnknownScope) as caught:
            parse_scopes("scim:read,scim:delete")

        assert "unknown scope 'scim:delete'; valid scopes: scim:read, scim:write, metrics, admin" == str(caught.value)

    @pytest.mark.parametrize("value", ["", " , ", []])
    def test_no_scope_is_an_error(self, value: str | list[str]) -> None:
        """A token that can do nothing is a mistake, not a token."""
        with pytest.raises(UnknownScope, match="at least one scope"):
            parse_scopes(value)

    def test_scope_errors_are_token_errors(self) -> None:
        """The CLI turns every SyncSvcError into one line on stderr and exit 1."""
        assert issubclass(UnknownScope, TokenError)
        assert issubclass(TokenError, SyncSvcError)

    @pytest.mark.parametrize(("held", "needed", "expected"), [
        ((SCIM_READ,), SCIM_READ, True),
        ((SCIM_READ,), SCIM_WRITE, False),
        ((SCIM_READ,), ADMIN, False),
        ((SCIM_WRITE,), SCIM_READ, True),
        ((SCIM_WRITE,), SCIM_WRITE, True),
        ((SCIM_WRITE,), ADMIN, False),
        ((ADMIN,), SCIM_READ, True),
        ((ADMIN,), SCIM_WRITE, True),
        ((ADMIN,), ADMIN, True),
        ((SCIM_READ, SCIM_WRITE), ADMIN, False),
        ((), SCIM_READ, False),
        (("bogus",), SCIM_READ, False),
    ])
    def test_implication(self, held: tuple[str, ...], needed: str, expected: bool) -> None:
        """admin implies everything; scim:write implies scim:read; nothing else is implied."""
        assert expected == grants(held, needed)
        assert expected == info(*held).allows(needed)


class TestTokenInfo:
    def test_as_dict_has_no_secret_and_iso_times(self) -> None:
        """What `token list --json` prints: names, scopes, ISO times, None for never."""
        revoked = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)

        assert {"id": "id-1", "name": "okta", "scopes": ["admin"],
                "created": "2026-01-01T00:00:00+00:00", "last_used": None,
                "revoked": "2026-02-01T12:00:00+00:00"} == info(ADMIN, revoked=revoked).as_dict()

    def test_active_until_revoked(self) -> None:
        """A revoked token is not active."""
        assert (True, False) == (info(ADMIN).active, info(ADMIN, revoked=datetime.now(UTC)).active)


def test_all_is_sorted_and_complete() -> None:
    """syncsvc.auth.__all__ is sorted and every name in it exists."""
    names = syncsvc.auth.__all__
    assert (sorted(names), True) == (names, all(hasattr(syncsvc.auth, n) for n in names))
