"""A small aiohttp reverse proxy that injects faults in front of a real SCIM server.

Used only for what the real server cannot be made to do: answer 429 with ``Retry-After``, or a
5xx, for a while. Every other request is forwarded unchanged (method, path, query, headers,
body) to ``upstream``. ``faults`` is a queue of canned answers served, one per request, before
forwarding resumes; ``when`` limits them to requests whose method+path match.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

__all__ = ["Fault", "FaultProxy", "fault_proxy"]

_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True, slots=True)
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class FaultProxy:
    upstream: str  # e.g. http://127.0.0.1:PORT (no path)
    url: str = ""  # set when serving: http://127.0.0.1:PORT
    faults: deque[Fault] = field(default_factory=deque)
    when: Callable[[web.Request], bool] = lambda _request: True
    served_faults: int = 0
    forwarded: int = 0

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.faults and self.when(request):
            fault = self.faults.popleft()
            self.served_faults += 1
            return web.Response(status=fault.status, headers=fault.headers, text=fault.body,
                                content_type="application/scim+json")
        self.forwarded += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with aiohttp.ClientSession() as session, session.request(
            request.method, self.upstream + request.rel_url.path_qs,
            data=await request.read(), headers=headers, allow_redirects=False,
        ) as resp:
            body = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            return web.Response(status=resp.status, body=body, headers=out)


@asynccontextmanager
async def fault_proxy(
    upstream: str, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[FaultProxy]:
    """Serve a :class:`FaultProxy` for ``upstream`` on a free loopback port (HTTPS with
    ``ssl_context``)."""
    proxy = FaultProxy(upstream=upstream.rstrip("/"))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        await runner.cleanup()
