"""API tokens: the store side (create, list, revoke, authenticate) and the aiohttp side.

See :mod:`syncsvc.auth.tokens` for the token format and storage, :mod:`syncsvc.auth.scopes`
for scope implication and :mod:`syncsvc.auth.middleware` for the bearer check and its cache.
"""

from syncsvc.auth.errors import (
    InvalidTokenName,
    TokenError,
    TokenNameTaken,
    UnknownScope,
    UnknownToken,
)
from syncsvc.auth.middleware import (
    AUTHENTICATOR,
    CHALLENGE,
    InsufficientScope,
    InvalidToken,
    TokenAuthenticator,
    bearer_auth,
    default_scope_for,
    require,
    token_of,
)
from syncsvc.auth.scopes import (
    ADMIN,
    METRICS,
    SCIM_READ,
    SCIM_WRITE,
    VALID_SCOPES,
    grants,
    parse_scopes,
)
from syncsvc.auth.tokens import (
    TokenInfo,
    authenticate,
    create_token,
    hash_secret,
    list_tokens,
    lookup_token,
    revoke_token,
)

__all__ = [
    "ADMIN",
    "AUTHENTICATOR",
    "CHALLENGE",
    "InsufficientScope",
    "InvalidToken",
    "InvalidTokenName",
    "METRICS",
    "SCIM_READ",
    "SCIM_WRITE",
    "TokenAuthenticator",
    "TokenError",
    "TokenInfo",
    "TokenNameTaken",
    "UnknownScope",
    "UnknownToken",
    "VALID_SCOPES",
    "authenticate",
    "bearer_auth",
    "create_token",
    "default_scope_for",
    "grants",
    "hash_secret",
    "list_tokens",
    "lookup_token",
    "parse_scopes",
    "require",
    "revoke_token",
    "token_of",
]
