"""aiohttp application factory with typed keys; no globals."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.admin import ADMIN, AdminState
from syncsvc.admin import routes as admin_routes
from syncsvc.admin.targets import add_target_routes
from syncsvc.auth import AUTHENTICATOR, TokenAuthenticator, bearer_auth
from syncsvc.http.headers import install_security_headers
from syncsvc.http.metrics import ENGINE_FOR_METRICS, METRICS, Metrics
from syncsvc.http.pathparams import storable_path_params
from syncsvc.http.probe import DirectoryProbe
from syncsvc.profiles import routes as profile_routes
from syncsvc.scim import routes as scim_routes
from syncsvc.scim.cache import ResponseCache
from syncsvc.scim.middleware import request_context, scim_errors
from syncsvc.scim.service import ScimService
from syncsvc.scim.state import SCIM, ScimState
from syncsvc.settings import Settings
from syncsvc.store import unavailable_reason
from syncsvc.store.changes import StoreChanges
from syncsvc.store.engine import is_postgres
from syncsvc.store.loopreads import loop_reader_for
from syncsvc.store.pgreads import PgReader

__all__ = ["ENGINE", "create_app"]

ENGINE = web.AppKey("engine", AsyncEngine)
DIRECTORY_PROBE = web.AppKey("directory_probe", DirectoryProbe)


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers. Unauthenticated by design (probes)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers a query. LDAP reachability is reported (as last checked,
    never waited for), not required: reads come from the store."""
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any store failure means "not ready", never a 500
        reason = unavailable_reason(exc) or type(exc).__name__
        return web.json_response({"status": "unavailable", "store": reason}, status=503)
    body = {"status": "ready"}
    probe = request.app.get(DIRECTORY_PROBE)
    if probe is not None:
        body["ldap"] = probe.status()
    return web.json_response(body)


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
        middlewares=[metrics.middleware(), request_context, scim_errors, bearer_auth(),
                     storable_path_params],
        client_max_size=max(scim.bulk_max_payload, scim.max_request_bytes),
    )
    install_security_headers(app)  # nosniff everywhere; CSP, framing, referrer on HTML
    app[ENGINE] = engine
    app[METRICS] = metrics
    app[ENGINE_FOR_METRICS] = engine
    app.router.add_get("/metrics", metrics.handler)
    app[AUTHENTICATOR] = TokenAuthenticator(engine)
    changes = StoreChanges(engine)
    loop_reader = loop_reader_for(engine)
    app.on_startup.append(lambda _app: changes.start())
    app.on_cleanup.append(lambda _app: changes.aclose())
    if loop_reader is not None:
        app.on_cleanup.append(lambda _app: asyncio.to_thread(loop_reader.close))
    pg_reader = PgReader(engine) if is_postgres(engine) else None
    if pg_reader is not None:
        app.on_cleanup.append(lambda _app: pg_reader.aclose())
    service = ScimService(engine, scim, capture=bool(settings.targets), loop_reader=loop_reader,
                          pg_reader=pg_reader, changes=changes)
    cache = ResponseCache(changes, scim.response_cache_bytes)
    metrics.watch_cache(cache)
    app[SCIM] = ScimState(service=service, settings=scim, cache=cache)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    scim_routes.add_routes(app)
    profile_routes.add_routes(app, engine, settings)
    # Push targets' status and actions: they need only the store (and, for push/reconcile,
    # the runner serve sets), so every app has them, behind the admin scope.
    add_target_routes(app, engine, settings.targets)
    if admin is not None:
        app[ADMIN] = admin
        probe = DirectoryProbe(admin.deps.directory)
        app[DIRECTORY_PROBE] = probe

        async def _close_probe(_app: web.Application) -> None:
            await probe.aclose()

        app.on_cleanup.append(_close_probe)
        admin_routes.add_routes(app)
    return app
