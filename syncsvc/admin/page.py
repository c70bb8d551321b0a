"""The admin page: ``GET /admin/`` and its assets, static files with strict security headers.

The page is public (it is only a sign-in form; see
:func:`syncsvc.auth.middleware.default_scope_for`): it holds no data, and every API call its
script makes carries the admin token the user typed, kept in ``sessionStorage``. Everything is
served from this package (no CDN), so the Content-Security-Policy can be ``'self'`` only; the
script and style sheet are files, never inline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from syncsvc.auth.middleware import ADMIN_PAGE, ADMIN_PAGE_ASSETS

__all__ = ["ASSETS", "SECURITY_HEADERS", "add_page_routes"]

STATIC: Final = Path(__file__).parent / "static"

ASSETS: Final = {
    "admin.js": "text/javascript",
    "admin.css": "text/css",
}
"""The only files served under ``/admin/static/``, with their content types."""

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}
"""Sent with the page and its assets (``no-store``: a new release is seen at once)."""


def _file(name: str, content_type: str) -> web.Response:
    # Read on each request: a few KB, and an edited file shows without a restart.
    return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type,
                        charset="utf-8", headers=SECURITY_HEADERS)


async def page(_request: web.Request) -> web.Response:
    """GET /admin/: the sign-in form and, once signed in, the dashboard (drawn by admin.js)."""
    return _file("index.html", "text/html")


async def asset(request: web.Request) -> web.Response:
    """GET /admin/static/{name}: one of :data:`ASSETS`; anything else is 404."""
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound(text=f"no asset {name}")
    return _file(name, content_type)


def add_page_routes(app: web.Application) -> None:
    """Register the page and its assets (GET, and HEAD through aiohttp's GET routes)."""
    app.router.add_get(ADMIN_PAGE, page)
    app.router.add_get(ADMIN_PAGE_ASSETS + "{name}", asset)
