"""Path parameters no resource can have are "not found", before any handler queries with them.

A NUL (``%00``) or an unpaired surrogate in ``{id}``, ``{name}`` or ``{slug}`` cannot match a
stored value, and PostgreSQL refuses a NUL in a query parameter outright: left to the
handlers, ``GET /profiles/%00/vcard`` or ``GET /admin/runs/%00`` was a 500. One middleware
answers 404 for every route, present and future. It runs after authentication, so a client
without a token still learns nothing but 401.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from syncsvc.errors import NotFound
from syncsvc.scim.inputs import unstorable

__all__ = ["storable_path_params"]


@web.middleware
async def storable_path_params(request: web.Request, handler: Handler) -> web.StreamResponse:
    if any(unstorable(value) for value in request.match_info.values()):
        raise NotFound("not found")
    return await handler(request)
