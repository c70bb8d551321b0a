"""Errors of API-token management (the CLI and the admin API show their message as is).

    SyncSvcError
    └── TokenError             a token operation was refused; the message says why
        ├── TokenNameTaken     ``create`` with a name that already exists (revoked ones too)
        ├── UnknownScope       a scope outside scim:read, scim:write, admin (or none at all)
        ├── InvalidTokenName   a name that is empty, too long or has odd characters
        └── UnknownToken       ``revoke`` of a name that does not exist

Authentication failures on HTTP are not these: they are :class:`syncsvc.errors.Unauthorized`
and :class:`syncsvc.errors.Forbidden` (see :mod:`syncsvc.auth.middleware`).
"""

from __future__ import annotations

from syncsvc.errors import SyncSvcError

__all__ = ["InvalidTokenName", "TokenError", "TokenNameTaken", "UnknownScope", "UnknownToken"]


class TokenError(SyncSvcError):
    """A token could not be created, listed or revoked as asked."""


class TokenNameTaken(TokenError):
    """Another token (active or revoked) already has this name."""


class UnknownScope(TokenError):
    """A scope that syncsvc does not know, or an empty scope list."""


class InvalidTokenName(TokenError):
    """The name is not a short, printable identifier."""


class UnknownToken(TokenError):
    """No token has this name."""
