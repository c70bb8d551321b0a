"""The one place exceptions become HTTP responses (RFC 7644 §3.12 error documents).

Handlers raise; this renders. Tracebacks go to the log, never into a body.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from syncsvc import jsoncodec
from syncsvc.errors import NotModified, ScimError
from syncsvc.store import unavailable_reason

__all__ = ["ERROR_SCHEMA", "SCIM_JSON", "error_response", "request_context", "scim_bytes", "scim_errors",
           "scim_json"]

log = structlog.get_logger(__name__)

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def scim_json(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A SCIM JSON response (``application/scim+json; charset=utf-8``)."""
    return scim_bytes(jsoncodec.dumps(body), status=status, headers=headers)


def scim_bytes(
    body: bytes, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A SCIM JSON response of a body already encoded (e.g. from the response cache)."""
    return web.Response(body=body, status=status, content_type=SCIM_JSON, charset="utf-8",
                        headers=headers)


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim_json(body, status=status, headers=headers)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id (the client's X-Request-Id if sane) to every log line of the request."""
    given = request.headers.get("X-Request-Id", "")
    # 128 random bits as 32 hex digits. An id only has to be unique, not secret: random's
    # generator (seeded from the OS, reseeded after fork) spares a getrandom system call per
    # request, which os.urandom makes.
    request_id = (given if 0 < len(given) <= 64 and given.isprintable()
                  else f"{random.getrandbits(128):032x}")
    # bind/reset rather than the bound_contextvars context manager: a third of the cost, on
    # every request.
    tokens = structlog.contextvars.bind_contextvars(request_id=request_id, method=request.method,
                                                    path=request.path)
    try:
        response = await handler(request)
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def scim_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotModified:
        return web.Response(status=304)
    except ScimError as exc:
        headers = {}
        challenge = getattr(exc, "challenge", None)
        if challenge:
            headers["WWW-Authenticate"] = challenge
        elif exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="syncsvc"'
        log.info("http.scim_error", status=exc.status, scim_type=exc.scim_type, detail=exc.detail)
        return error_response(exc.status, exc.detail, exc.scim_type, headers)
    except web.HTTPException as exc:  # router 404/405, 413 from client_max_size
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, detail or exc.reason, None, headers)
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is not None:
            # The store is down, restarting or read-only: the client should retry, not give up.
            log.warning("http.store_unavailable", reason=reason, error_type=type(exc).__name__)
            return error_response(503, f"the store is unavailable: {reason}; retry later", None,
                                  {"Retry-After": "5"})
        log.exception("http.unhandled")
        return error_response(500, "internal error; the server log has the details")
