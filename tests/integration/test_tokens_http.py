"""Bearer tokens over HTTP, on both stores: 401/403 with their challenges, scopes, the cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.auth import (
    AUTHENTICATOR,
    SCIM_WRITE,
    TokenAuthenticator,
    bearer_auth,
    create_token,
    require,
    revoke_token,
    token_of,
)
from syncsvc.errors import ScimError

Client = TestClient[web.Request, web.Application]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What the app's error middleware must do for auth errors: status + WWW-Authenticate."""
    try:
        return await handler(request)
    except ScimError as exc:
        headers = {"WWW-Authenticate": exc.challenge} if hasattr(exc, "challenge") else {}
        return web.json_response({"status": str(exc.status), "detail": exc.detail},
                                 status=exc.status, headers=headers)


async def whoami(request: web.Request) -> web.Response:
    token = token_of(request)
    return web.json_response({"name": token.name if token else None})


async def write(request: web.Request) -> web.Response:
    token = await require(request, SCIM_WRITE)  # reuses what the middleware accepted
    return web.json_response({"name": token.name})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(
    engine: AsyncEngine, clock: FakeClock,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> Client:
    app = web.Application(middlewares=[errors, bearer_auth()])
    app[AUTHENTICATOR] = TokenAuthenticator(engine, ttl=30, clock=clock)
    app.router.add_get("/healthz", whoami)
    app.router.add_get("/scim/v2/Users", whoami)
    app.router.add_post("/scim/v2/Users", write)
    app.router.add_get("/admin/runs", whoami)
    return await aiohttp_client(app)


async def make(engine: AsyncEngine, name: str, scopes: str) -> str:
    async with engine.begin() as conn:
        return await create_token(conn, name=name, scopes=scopes, now=datetime.now(UTC))


def bearer(secret: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {secret}"}


class TestChallenges:
    async def test_probes_need_no_token(self, client: Client) -> None:
        """/healthz stays public for load balancers and kubelets."""
        assert 200 == (await client.get("/healthz")).status

    async def test_missing_token_is_401_with_bearer_challenge(self, client: Client) -> None:
        """No Authorization header: 401 and WWW-Authenticate: Bearer realm="syncsvc"."""
        response = await client.get("/scim/v2/Users")

        assert (401, 'Bearer realm="syncsvc"') == (
            response.status, response.headers["WWW-Authenticate"])

    async def test_unknown_token_is_401_invalid_token(self, client: Client) -> None:
        """A well-formed but unknown token: 401 with error="invalid_token"."""
        response = await client.get("/scim/v2/Users", headers=bearer("scs_" + "A" * 43))

        assert (401, 'Bearer realm="syncsvc", error="invalid_token"') == (
            response.status, response.headers["WWW-Authenticate"])

    async def test_short_scope_is_403(self, client: Client, engine: AsyncEngine) -> None:
        """A read-only token may read but not write, nor use the admin API."""
        secret = await make(engine, "reader", "scim:read")

        statuses = [(await client.get("/scim/v2/Users", headers=bearer(secret))).status,
                    (await client.post("/scim/v2/Users", headers=bearer(secret))).status,
                    (await client.get("/admin/runs", headers=bearer(secret))).status]

        assert [200, 403, 403] == statuses


class TestScopes:
    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
    async def test_scheme_is_case_insensitive(self, client: Client, engine: AsyncEngine,
                                              scheme: str) -> None:
        """Clients in the wild spell the scheme every which way."""
        secret = await make(engine, "okta", "scim:read")

        response = await client.get("/scim/v2/Users", headers=bearer(secret, scheme))

        assert (200, {"name": "okta"}) == (response.status, await response.json())

    async def test_admin_implies_every_scope(self, client: Client, engine: AsyncEngine) -> None:
        """An admin token reads, writes and administers."""
        secret = await make(engine, "ops", "admin")

        statuses = [(await client.get("/scim/v2/Users", headers=bearer(secret))).status,
                    (await client.post("/scim/v2/Users", headers=bearer(secret))).status,
                    (await client.get("/admin/runs", headers=bearer(secret))).status]

        assert [200, 200, 200] == statuses


class TestCacheAndRevocation:
    async def test_revocation_takes_effect_within_the_ttl(
        self, client: Client, engine: AsyncEngine, clock: FakeClock
    ) -> None:
        """Revoked elsewhere: still accepted from the cache, refused once the 30 s are up."""
        secret = await make(engine, "okta", "scim:read")
        assert 200 == (await client.get("/scim/v2/Users", headers=bearer(secret))).status
        async with engine.begin() as conn:
            await revoke_token(conn, "okta", datetime.now(UTC))

        clock.now += 29
        cached = (await client.get("/scim/v2/Users", headers=bearer(secret))).status
        clock.now += 2
        refused = (await client.get("/scim/v2/Users", headers=bearer(secret))).status

        assert (200, 401) == (cached, refused)

    async def test_forget_revokes_at_once_in_this_process(
        self, client: Client, engine: AsyncEngine
    ) -> None:
        """An in-process revocation (admin API) drops the cache entry: refused immediately."""
        secret = await make(engine, "okta", "scim:read")
        assert 200 == (await client.get("/scim/v2/Users", headers=bearer(secret))).status
        async with engine.begin() as conn:
            await revoke_token(conn, "okta", datetime.now(UTC))

        client.app[AUTHENTICATOR].forget("okta")

        assert 401 == (await client.get("/scim/v2/Users", headers=bearer(secret))).status

    async def test_cached_reads_do_not_query_the_store(
        self, client: Client, engine: AsyncEngine
    ) -> None:
        """Within the TTL the store is asked once, however many requests come."""
        secret = await make(engine, "okta", "scim:read")
        queries: list[str] = []

        def count(*args: object) -> None:
            queries.append(str(args[2]))

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                assert 200 == (await client.get("/scim/v2/Users", headers=bearer(secret))).status
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)

        assert 1 == sum("FROM api_token" in q for q in queries)


class TestLogging:
    async def test_denials_are_logged_by_name_never_with_the_secret(
        self, client: Client, engine: AsyncEngine
    ) -> None:
        """auth.denied names the token and the reason; the secret appears nowhere."""
        secret = await make(engine, "okta", "scim:read")
        async with engine.begin() as conn:
            await revoke_token(conn, "okta", datetime.now(UTC))

        with structlog.testing.capture_logs() as logs:
            await client.get("/scim/v2/Users", headers=bearer(secret))
            await client.get("/scim/v2/Users", headers=bearer("scs_" + "B" * 43))

        denied = [(e["token_name"], e["reason"]) for e in logs if e["event"] == "auth.denied"]
        assert [("okta", "revoked"), ("unknown", "unknown")] == denied
        assert secret not in repr(logs)
