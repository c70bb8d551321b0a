"""API tokens: create, list, revoke, and authenticate a bearer secret against the store.

A token is ``scs_`` followed by 43 characters of ``secrets.token_urlsafe(32)`` (256 random
bits). The secret is shown once, at creation; the store keeps only its SHA-256. Every function
takes a connection and runs in the caller's transaction (the caller commits).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Row, Table, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from syncsvc.auth.errors import InvalidTokenName, TokenNameTaken, UnknownToken
from syncsvc.auth.scopes import grants, parse_scopes
from syncsvc.store.schema import ApiTokenRow

__all__ = [
    "LAST_USED_RESOLUTION",
    "PREFIX",
    "TokenInfo",
    "authenticate",
    "create_token",
    "generate_secret",
    "hash_secret",
    "list_tokens",
    "looks_like_token",
    "lookup_token",
    "revoke_token",
    "touch_token",
]

TOKENS: Final = cast(Table, ApiTokenRow.__table__)  # declarative tables are Tables
PREFIX: Final = "scs_"
_SECRET_BYTES: Final = 32  # token_urlsafe(32) is 43 characters of base64url, no padding
_TOKEN_SHAPE: Final = re.compile(r"scs_[A-Za-z0-9_-]{43}")
_NAME_SHAPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)
"""``last_used`` moves at most this often per token, so requests do not each cost a write."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    """What is known about a token; never the secret (the store does not have it)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created: datetime
    last_used: datetime | None
    revoked: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def allows(self, scope: str) -> bool:
        """Whether this token's scopes grant ``scope`` (admin implies all; write implies read)."""
        return grants(self.scopes, scope)

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "name": self.name, "scopes": list(self.scopes),
                "created": iso(self.created), "last_used": iso(self.last_used),
                "revoked": iso(self.revoked)}


def generate_secret() -> str:
    """A new token secret: ``scs_`` + 43 base64url characters (256 bits from the OS CSPRNG)."""
    return PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest the store keeps in place of the secret.

    A fast, unsalted hash is right here, unlike for passwords: the secret is 256 random bits,
    so there is no dictionary to try and brute force is out of reach whatever the hash costs.
    A slow KDF would only add latency to every request, and a salt would prevent the lookup
    by hash.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the shape of a syncsvc token (cheap; spares the store garbage)."""
    return _TOKEN_SHAPE.fullmatch(value) is not None


def _utc(value: datetime) -> datetime:
    # SQLite hands DateTime(timezone=True) back naive; everything we store is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _info(row: Row[Any]) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, scopes=tuple(row.scopes.split(",")),
                     created=_utc(row.created), last_used=_opt_utc(row.last_used),
                     revoked=_opt_utc(row.revoked))


def _check_name(name: str) -> None:
    if not _NAME_SHAPE.fullmatch(name):
        raise InvalidTokenName(
            f"invalid token name {name!r}: use 1-100 letters, digits and . _ : @ - "
            "(starting with a letter or digit)"
        )


async def create_token(
    conn: AsyncConnection, *, name: str, scopes: str | Iterable[str], now: datetime
) -> str:
    """Store a new token and return its secret, the only time anyone sees it.

    Raises:
        InvalidTokenName: ``name`` is not a short identifier.
        TokenNameTaken: a token (active or revoked) already has ``name``.
        UnknownScope: a scope is not scim:read, scim:write or admin, or none is given.
    """
    _check_name(name)
    scope_list = parse_scopes(scopes)
    taken = await conn.scalar(select(TOKENS.c.revoked.is_not(None)).where(TOKENS.c.name == name))
    if taken is not None:
        state = "a revoked token" if taken else "a token"
        raise TokenNameTaken(f"{state} named {name!r} already exists; choose another name")
    secret = generate_secret()
    try:
        await conn.execute(insert(TOKENS).values(
            id=str(uuid.uuid4()), name=name, token_hash=hash_secret(secret),
            scopes=",".join(scope_list), created=_utc(now), last_used=None, revoked=None,
        ))
    except IntegrityError as exc:  # a concurrent create won the race for the name
        raise TokenNameTaken(f"a token named {name!r} already exists; choose another name") from exc
    return secret


async def list_tokens(conn: AsyncConnection) -> list[TokenInfo]:
    """Every token, revoked ones included, oldest first."""
    rows = await conn.execute(select(TOKENS).order_by(TOKENS.c.created, TOKENS.c.name))
    return [_info(row) for row in rows]


async def revoke_token(conn: AsyncConnection, name: str, now: datetime) -> TokenInfo:
    """Revoke the token ``name``; revoking a revoked token keeps its first revocation time.

    Servers that cached the token stop accepting it within their cache TTL (30 s by default,
    see :class:`syncsvc.auth.middleware.TokenAuthenticator`).

    Raises:
        UnknownToken: no token has this name.
    """
    await conn.execute(update(TOKENS).where(TOKENS.c.name == name, TOKENS.c.revoked.is_(None))
                       .values(revoked=_utc(now)))
    row = (await conn.execute(select(TOKENS).where(TOKENS.c.name == name))).first()
    if row is None:
        raise UnknownToken(f"no token named {name!r}")
    return _info(row)


async def lookup_token(conn: AsyncConnection, secret: str) -> TokenInfo | None:
    """The token whose secret is ``secret``, revoked or not; None when there is none."""
    if not looks_like_token(secret):
        return None
    digest = hash_secret(secret)
    row = (await conn.execute(select(TOKENS).where(TOKENS.c.token_hash == digest))).first()
    # The database compared the digests already; compare again in constant time so the
    # decision never rests on a comparison whose timing depends on the secret's hash.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return _info(row)


async def touch_token(conn: AsyncConnection, info: TokenInfo, now: datetime) -> TokenInfo:
    """Record a use of ``info`` at ``now``, unless one was recorded within the last minute."""
    now = _utc(now)
    if info.last_used is not None and now - info.last_used < LAST_USED_RESOLUTION:
        return info
    cutoff = now - LAST_USED_RESOLUTION
    # The guard in SQL too: several replicas may race to record the same minute.
    await conn.execute(update(TOKENS).where(
        TOKENS.c.id == info.id,
        or_(TOKENS.c.last_used.is_(None), TOKENS.c.last_used <= cutoff),
    ).values(last_used=now))
    return TokenInfo(id=info.id, name=info.name, scopes=info.scopes, created=info.created,
                     last_used=now, revoked=info.revoked)


async def authenticate(conn: AsyncConnection, secret: str, now: datetime) -> TokenInfo | None:
    """The active token for ``secret`` with its use recorded; None if unknown or revoked."""
    info = await lookup_token(conn, secret)
    if info is None or not info.active:
        return None
    return await touch_token(conn, info, now)
