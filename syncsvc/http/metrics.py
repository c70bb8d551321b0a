"""Prometheus metrics: sync runs, SCIM requests, store size. One registry per app, no globals."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.store.schema import GroupRow, UserRow

__all__ = ["METRICS", "Metrics"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """The service's metrics; ``observe_run`` is handed to the sync engine as an observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("syncsvc_sync_runs", "Sync runs by mode and status",
                            ["mode", "status"], registry=r)
        self.duration = Histogram("syncsvc_sync_duration_seconds", "Sync run duration", ["mode"],
                                  buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600), registry=r)
        self.entries = Counter("syncsvc_sync_entries", "Directory entries by outcome",
                               ["outcome"], registry=r)
        self.problems = Counter("syncsvc_sync_problems", "Entries a run could not map or resolve",
                                registry=r)
        self.last_success = Gauge("syncsvc_sync_last_success_timestamp_seconds",
                                  "When the latest successful run ended", registry=r)
        self.requests = Counter("syncsvc_http_requests", "HTTP requests",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("syncsvc_http_request_duration_seconds", "HTTP request latency",
                                 ["route", "method"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1, 2.5), registry=r)
        self.store = Gauge("syncsvc_store_resources", "Resources in the store", ["kind"], registry=r)

    def observe_run(self, report: Any) -> None:
        """Count a finished run (a SyncReport)."""
        if report.dry_run:
            return
        mode = report.mode.value
        self.runs.labels(mode, report.status.value).inc()
        self.duration.labels(mode).observe(report.seconds)
        for outcome in ("read", "created", "updated", "unchanged", "deactivated", "deleted"):
            self.entries.labels(outcome).inc(getattr(report, outcome))
        self.problems.inc(len(report.problems))
        if report.status.value == "success":
            self.last_success.set(time.time())

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            finally:
                # The route's template, not the path: ids must not become label values.
                route = request.match_info.route.resource
                name = route.canonical if route is not None else "unmatched"
                self.requests.labels(name, request.method, str(status)).inc()
                self.latency.labels(name, request.method).observe(time.perf_counter() - started)

        return count_requests

    async def handler(self, request: web.Request) -> web.Response:
        """GET /metrics: counts of the store are read at scrape time."""
        engine: AsyncEngine = request.app[ENGINE_FOR_METRICS]
        async with engine.connect() as conn:
            users = await conn.scalar(select(func.count()).select_from(UserRow)) or 0
            active = await conn.scalar(
                select(func.count()).select_from(UserRow).where(UserRow.active)) or 0
            groups = await conn.scalar(select(func.count()).select_from(GroupRow)) or 0
        self.store.labels("users").set(users)
        self.store.labels("active_users").set(active)
        self.store.labels("groups").set(groups)
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


METRICS = web.AppKey("metrics", Metrics)
ENGINE_FOR_METRICS = web.AppKey("metrics_engine", AsyncEngine)
