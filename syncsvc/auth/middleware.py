"""Bearer-token checks for aiohttp: ``Authorization: Bearer scs_...``, scopes, a short cache.

Wiring (the app factory)::

    app[AUTHENTICATOR] = TokenAuthenticator(engine)
    app = web.Application(middlewares=[..., errors, bearer_auth()])   # or call require() in handlers

Failures raise :class:`InvalidToken` (a :class:`~syncsvc.errors.Unauthorized`, 401) and
:class:`InsufficientScope` (a :class:`~syncsvc.errors.Forbidden`, 403). Both carry
``challenge``, the ``WWW-Authenticate`` value RFC 6750 §3 asks for; the error middleware, the
one place that renders errors, must copy it into the response (on every 401 at least
``Bearer realm="syncsvc"``, :data:`CHALLENGE`).

Caching: a successful lookup is kept in memory for ``ttl`` seconds (30 by default), keyed by
the secret's hash, so SCIM reads do not each cost a query. The price: a token revoked by
another process (``syncsvc token revoke``, another replica) is still accepted here for up to
``ttl`` seconds. A revocation through this process can call :meth:`TokenAuthenticator.forget`
to take effect at once. Failures are not cached, so a new token works immediately.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, NoReturn

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.auth.scopes import ADMIN, METRICS, SCIM_READ, SCIM_WRITE
from syncsvc.auth.tokens import TokenInfo, hash_secret, looks_like_token, lookup_token, touch_token
from syncsvc.errors import Forbidden, Unauthorized

__all__ = [
    "ADMIN_PAGE",
    "ADMIN_PAGE_ASSETS",
    "AUTHENTICATOR",
    "CHALLENGE",
    "InsufficientScope",
    "InvalidToken",
    "TokenAuthenticator",
    "bearer_auth",
    "default_scope_for",
    "require",
    "token_of",
]

log = structlog.get_logger(__name__)

CHALLENGE: Final = 'Bearer realm="syncsvc"'
"""The ``WWW-Authenticate`` value every 401 must carry (RFC 6750 §3)."""

class InvalidToken(Unauthorized):
    """No bearer token, a malformed header, or a token that is unknown or revoked (401)."""

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        # RFC 6750 §3.1: no error code when the request simply carried no credentials.
        self.challenge = f'{CHALLENGE}, error="{error}"' if error else CHALLENGE


class InsufficientScope(Forbidden):
    """The token is valid but lacks the scope the request needs (403)."""

    def __init__(self, detail: str, *, scope: str) -> None:
        super().__init__(detail)
        self.scope = scope
        self.challenge = f'{CHALLENGE}, error="insufficient_scope", scope="{scope}"'


class TokenAuthenticator:
    """Turns a bearer secret into a :class:`TokenInfo`, with a small TTL-bound LRU in front.

    Args:
        engine: the store's engine (the one of the process; not disposed of here).
        ttl: seconds a successful lookup is trusted without asking the store; also the longest
            a revocation made elsewhere takes to be noticed here.
        max_entries: tokens kept in the cache; the least recently used goes first.
        clock: monotonic seconds, for the cache (tests pass a fake).
        now: wall-clock time for ``last_used``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl: float = 30.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._now = now
        self._cache: OrderedDict[str, tuple[float, TokenInfo]] = OrderedDict()

    async def authenticate(self, secret: str) -> TokenInfo:
        """The active token for ``secret``.

        Raises:
            InvalidToken: the secret is malformed, unknown or revoked.
        """
        if not looks_like_token(secret):
            self._deny("malformed", None)
        digest = hash_secret(secret)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            self._cache.move_to_end(digest)
            return cached[1]
        self._cache.pop(digest, None)
        async with self._engine.connect() as conn:
            info = await lookup_token(conn, secret)
        if info is None:
            self._deny("unknown", None)
        if not info.active:
            self._deny("revoked", info.name)
        info = await self._touch(info)
        self._cache[digest] = (self._clock() + self._ttl, info)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return info

    def forget(self, name: str | None = None) -> None:
        """Drop the cached token ``name`` (all of them when None), e.g. after a revocation."""
        for digest, (_, info) in list(self._cache.items()):
            if name is None or info.name == name:
                del self._cache[digest]

    async def _touch(self, info: TokenInfo) -> TokenInfo:
        # last_used is bookkeeping: a busy store (a sync holding SQLite's write lock) must
        # not turn a valid request into an error.
        try:
            async with self._engine.begin() as conn:
                return await touch_token(conn, info, self._now())
        except SQLAlchemyError as exc:
            log.warning("auth.last_used_failed", token_name=info.name, error=type(exc).__name__)
            return info

    def _deny(self, reason: str, name: str | None) -> NoReturn:
        log.warning("auth.denied", token_name=name or "unknown", reason=reason)
        raise InvalidToken("invalid or revoked bearer token")


AUTHENTICATOR: Final = web.AppKey("syncsvc.authenticator", TokenAuthenticator)
"""Where :func:`require` and :func:`bearer_auth` find the app's authenticator."""

# RequestKey arrived in aiohttp 3.14 (string request keys warn from then on); before it,
# a plain string key is the only kind and raises no warning.
_TOKEN: Final = (web.RequestKey("syncsvc.token", TokenInfo) if hasattr(web, "RequestKey")
                 else "syncsvc.token")


def _bearer_secret(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        log.info("auth.denied", token_name="unknown", reason="missing", path=request.path)
        raise InvalidToken("missing bearer token (Authorization: Bearer <token>)", error=None)
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        log.warning("auth.denied", token_name="unknown", reason="scheme", path=request.path)
        raise InvalidToken("use the Authorization: Bearer <token> scheme", error="invalid_request")
    return secret.strip()


def token_of(request: web.Request) -> TokenInfo | None:
    """The token :func:`require` (or :func:`bearer_auth`) accepted for this request, if any."""
    return request.get(_TOKEN)


async def require(request: web.Request, scope: str) -> TokenInfo:
    """The request's token, which must grant ``scope``; the check a handler makes first.

    ``admin`` implies every scope and ``scim:write`` implies ``scim:read``. A token already
    accepted for this request is reused, so calling this after :func:`bearer_auth` is cheap.

    Raises:
        InvalidToken: no token, a malformed header, or an unknown or revoked token (401).
        InsufficientScope: the token does not grant ``scope`` (403).
    """
    info = token_of(request)
    if info is None:
        info = await request.app[AUTHENTICATOR].authenticate(_bearer_secret(request))
        request[_TOKEN] = info
    if not info.allows(scope):
        log.warning("auth.denied", token_name=info.name, reason="scope", needed=scope,
                    path=request.path)
        raise InsufficientScope(f"this token lacks the {scope!r} scope", scope=scope)
    return info


ADMIN_PAGE: Final = "/admin/"
"""The admin page (a sign-in form; its API calls carry the token the user types)."""

ADMIN_PAGE_ASSETS: Final = "/admin/static/"
"""Where the admin page's script and style sheet are served from (a fixed list of files)."""


def default_scope_for(request: web.Request) -> str | None:
    """The scope a request needs: probes and /p/ (public profile pages) are public, /metrics needs
    metrics, /admin needs admin, /profiles needs scim:read, SCIM by method.

    Public too: ``GET``/``HEAD`` of the admin page ``/admin/`` and of its assets under
    ``/admin/static/``; they hold no data, and every API call the page makes needs ``admin``.
    ``POST /scim/v2/.search`` and ``POST .../Users/.search`` only read (RFC 7644 §3.4.3).
    """
    path = request.path
    if path in ("/healthz", "/readyz") or path.startswith("/p/"):
        return None  # probes, and the public profile pages (they check the opt-in themselves)
    if request.method in ("GET", "HEAD") and (
        path == ADMIN_PAGE or path.startswith(ADMIN_PAGE_ASSETS)
    ):
        return None
    if path == "/metrics":
        return METRICS
    if path == "/admin" or path.startswith("/admin/"):
        return ADMIN
    if path.startswith("/profiles/"):
        return SCIM_READ  # cards and signatures are read-only views of users
    if request.method in ("GET", "HEAD", "OPTIONS") or path.endswith("/.search"):
        return SCIM_READ
    return SCIM_WRITE


def bearer_auth(
    scope_for: Callable[[web.Request], str | None] = default_scope_for,
) -> Middleware:
    """A middleware that requires ``scope_for(request)`` of every request (None: public).

    Place it inside (after) the error middleware, so its 401/403 are rendered there.
    """

    @web.middleware
    async def bearer_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        scope = scope_for(request)
        if scope is not None:
            await require(request, scope)
        return await handler(request)

    return bearer_auth_middleware
