"""Prometheus metrics: sync runs, SCIM requests and response cache, store size, push targets. One registry per app,
no globals."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from syncsvc.admin.targets import TARGETS
from syncsvc.push import state as push_state
from syncsvc.scim.cache import ResponseCache
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
        # Push targets: counters from each drain (observe_drain), gauges read at scrape time.
        self.pushed = Counter("syncsvc_push_resources", "Resources pushed to a target by outcome",
                              ["target", "outcome"], registry=r)
        self.drains = Counter("syncsvc_push_drains", "Drains of a target's outbox by result",
                              ["target", "result"], registry=r)
        self.queue = Gauge("syncsvc_push_queue_depth", "Outbox rows a target has not passed",
                           ["target"], registry=r)
        self.quarantined = Gauge("syncsvc_push_quarantined", "1 when the target is quarantined",
                                 ["target"], registry=r)
        self.target_failures = Gauge("syncsvc_push_consecutive_failures",
                                     "Failed attempts in a row", ["target"], registry=r)
        self.refused = Gauge("syncsvc_push_refused_resources",
                             "Resources whose last push the target refused", ["target"], registry=r)
        self._cache_collector: _CacheCollector | None = None
        self.target_success = Gauge("syncsvc_push_last_success_timestamp_seconds",
                                    "When the target last answered a push", ["target"], registry=r)

    def watch_cache(self, cache: ResponseCache) -> None:
        """Export the SCIM response cache's hits, misses and size (read at scrape time)."""
        if self._cache_collector is not None:
            self.registry.unregister(self._cache_collector)
        self._cache_collector = _CacheCollector(cache)
        self.registry.register(self._cache_collector)

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

    def observe_drain(self, report: Any) -> None:
        """Count one drain (a DrainReport): resources pushed, removed, failed; its result."""
        for outcome in ("pushed", "removed", "failed", "skipped"):
            self.pushed.labels(report.target, outcome).inc(getattr(report, outcome))
        result = "error" if report.error else "held" if report.held else "ok"
        self.drains.labels(report.target, result).inc()

    async def _observe_targets(self, engine: AsyncEngine, names: set[str]) -> None:
        async with engine.connect() as conn:
            stored = [t for t in await push_state.list_targets(conn) if t.name in names]
        for gauge in (self.queue, self.quarantined, self.target_failures, self.refused,
                      self.target_success):
            gauge.clear()  # a target removed from the config disappears from the metrics
        for t in stored:
            self.queue.labels(t.name).set(t.queue_depth)
            self.quarantined.labels(t.name).set(1 if t.quarantined else 0)
            self.target_failures.labels(t.name).set(t.consecutive_failures)
            self.refused.labels(t.name).set(t.failed_resources)
            if t.last_success is not None:
                self.target_success.labels(t.name).set(t.last_success.timestamp())

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        # The labelled series of each (route, method, status): looking them up by labels cost
        # more than counting. As many as the series themselves (route templates, not paths).
        series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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
                key = (name, request.method, status)
                found = series.get(key)
                if found is None:
                    found = series[key] = (self.requests.labels(name, request.method, str(status)),
                                           self.latency.labels(name, request.method))
                found[0].inc()
                found[1].observe(time.perf_counter() - started)

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
        names = {t.name for t in request.app.get(TARGETS, ())}
        if names:  # nothing to read (and no query) without targets
            await self._observe_targets(engine, names)
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


class _CacheCollector(Collector):
    def __init__(self, cache: ResponseCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        c = self._cache
        yield CounterMetricFamily("syncsvc_scim_cache_hits", "SCIM reads answered from the cache",
                                  value=c.hits)
        yield CounterMetricFamily("syncsvc_scim_cache_misses",
                                  "SCIM reads the cache could not answer", value=c.misses)
        yield GaugeMetricFamily("syncsvc_scim_cache_bytes", "Bytes the cache holds",
                                value=c.size_bytes)


METRICS = web.AppKey("metrics", Metrics)
ENGINE_FOR_METRICS = web.AppKey("metrics_engine", AsyncEngine)
