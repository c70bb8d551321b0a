"""aiohttp application factory with typed keys; no globals."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.admin import ADMIN, AdminState
from syncsvc.admin import routes as admin_routes
from syncsvc.auth import AUTHENTICATOR, TokenAuthenticator, bearer_auth
from syncsvc.http.metrics import ENGINE_FOR_METRICS, METRICS, Metrics
from syncsvc.profiles import routes as profile_routes
from syncsvc.scim import routes as scim_routes
from syncsvc.scim.middleware import request_context, scim_errors
from syncsvc.scim.service import ScimService
from syncsvc.scim.state import SCIM, ScimState
from syncsvc.settings import Settings

__all__ = ["ENGINE", "create_app"]

ENGINE = web.AppKey("engine", AsyncEngine)


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers. Unauthenticated by design (probes)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers a query."""
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any store failure means "not ready", never a 500
        return web.json_response({"status": "unavailable", "store": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready"})


def create_app(
    engine: AsyncEngine,
    settings: Settings,
    *,
    admin: AdminState | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The whole HTTP surface: health probes (public), SCIM, /metrics and, given its state, the
    admin API."""
    scim = settings.scim
    metrics = metrics or Metrics()
    app = web.Application(
        middlewares=[metrics.middleware(), request_context, scim_errors, bearer_auth()],
        client_max_size=max(scim.bulk_max_payload, scim.max_request_bytes),
    )
    app[ENGINE] = engine
    app[METRICS] = metrics
    app[ENGINE_FOR_METRICS] = engine
    app.router.add_get("/metrics", metrics.handler)
    app[AUTHENTICATOR] = TokenAuthenticator(engine)
    app[SCIM] = ScimState(service=ScimService(engine, scim), settings=scim)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    scim_routes.add_routes(app)
    profile_routes.add_routes(app, engine, settings)
    if admin is not None:
        app[ADMIN] = admin
        admin_routes.add_routes(app)
    return app
