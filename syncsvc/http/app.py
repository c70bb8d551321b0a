"""aiohttp application factory with typed keys; no globals."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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


def create_app(engine: AsyncEngine) -> web.Application:
    app = web.Application()
    app[ENGINE] = engine
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
