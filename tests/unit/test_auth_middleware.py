"""The HTTP side of tokens without a store: header parsing, scope routing, 401/403 challenges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import make_mocked_request

from syncsvc.auth import (
    ADMIN,
    CHALLENGE,
    SCIM_READ,
    SCIM_WRITE,
    InsufficientScope,
    InvalidToken,
    TokenInfo,
    default_scope_for,
    require,
)
from syncsvc.auth.middleware import _TOKEN, _bearer_secret
from syncsvc.errors import Forbidden, Unauthorized


class TestBearerHeader:
    @pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "BEARER abc", "  Bearer   abc "])
    def test_scheme_is_case_insensitive(self, header: str) -> None:
        """RFC 7235: the auth scheme is case-insensitive; surrounding blanks are ignored."""
        request = make_mocked_request("GET", "/scim/v2/Users", headers={"Authorization": header})

        assert "abc" == _bearer_secret(request)

    def test_missing_header_is_401_without_error_code(self) -> None:
        """RFC 6750 §3.1: a request without credentials gets a bare challenge."""
        request = make_mocked_request("GET", "/scim/v2/Users")

        with pytest.raises(InvalidToken) as caught:
            _bearer_secret(request)

        assert (401, CHALLENGE) == (caught.value.status, caught.value.challenge)

    @pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "scs_x"])
    def test_other_schemes_and_empty_tokens_are_401(self, header: str) -> None:
        """Basic auth, or Bearer without a token: invalid_request."""
        request = make_mocked_request("GET", "/scim/v2/Users", headers={"Authorization": header})

        with pytest.raises(Unauthorized) as caught:
            _bearer_secret(request)

        assert 'Bearer realm="syncsvc", error="invalid_request"' == caught.value.challenge  # type: ignore[attr-defined]


class TestRequire:
    async def test_short_scope_is_403_with_the_needed_scope(self) -> None:
        """A read-only token on a write: Forbidden, and the challenge names the scope."""
        request = make_mocked_request("POST", "/scim/v2/Users")
        request[_TOKEN] = TokenInfo(id="1", name="reader", scopes=(SCIM_READ,),
                                    created=datetime.now(UTC), last_used=None, revoked=None)

        with pytest.raises(InsufficientScope) as caught:
            await require(request, SCIM_WRITE)

        assert isinstance(caught.value, Forbidden)
        assert (403, 'Bearer realm="syncsvc", error="insufficient_scope", scope="scim:write"') == (
            caught.value.status, caught.value.challenge)

    async def test_token_already_accepted_is_reused(self) -> None:
        """After the middleware, require() in a handler does not look the token up again."""
        request = make_mocked_request("GET", "/scim/v2/Users")  # no app authenticator at all
        token = TokenInfo(id="1", name="admin", scopes=(ADMIN,), created=datetime.now(UTC),
                          last_used=None, revoked=None)
        request[_TOKEN] = token

        assert token is await require(request, SCIM_WRITE)


class TestDefaultScope:
    @pytest.mark.parametrize(("method", "path", "expected"), [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", "metrics"),
        ("GET", "/scim/v2/Users", SCIM_READ),
        ("HEAD", "/scim/v2/Users/1", SCIM_READ),
        ("POST", "/scim/v2/.search", SCIM_READ),
        ("POST", "/scim/v2/Users/.search", SCIM_READ),
        ("POST", "/scim/v2/Users", SCIM_WRITE),
        ("PATCH", "/scim/v2/Groups/1", SCIM_WRITE),
        ("DELETE", "/scim/v2/Users/1", SCIM_WRITE),
        ("POST", "/scim/v2/Bulk", SCIM_WRITE),
        ("GET", "/admin/runs", ADMIN),
        ("POST", "/admin/resync", ADMIN),
        ("GET", "/administrator", SCIM_READ),
    ])
    def test_scope_by_path_and_method(self, method: str, path: str, expected: str | None) -> None:
        """Probes are public; /admin needs admin; SCIM reads (and .search) need read, else write."""
        assert expected == default_scope_for(make_mocked_request(method, path))
