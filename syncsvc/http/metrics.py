"""Prometheus metrics: sync runs, SCIM requests and response cache, store size, push targets. One registry per app,
no globals."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from itertools import accumulate
from typing import Any, Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
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
        # Requests and their latency: plain numbers the middleware bumps, read at scrape time.
        self.http = _HttpCollector()
        r.register(self.http)
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
        http = self.http

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
                http.observe(route.canonical if route is not None else "unmatched",
                             request.method, status, time.perf_counter() - started)

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


_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _HttpCollector(Collector):
    """``syncsvc_http_requests_total`` by route, method and status, and the
    ``syncsvc_http_request_duration_seconds`` histogram by route and method.

    The middleware runs on every request: a prometheus_client Counter and Histogram took a
    lock per update and walked the buckets one by one (some 3 us a request); these are plain
    numbers, updated and read on the event loop's thread only (the /metrics handler runs there).
    Series are route templates, never paths, so there are as many as routes.
    """

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        # Per (route, method): a count per bucket (the last one +Inf, not cumulative), the sum.
        self._latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        series = self._latency.get((route, method))
        if series is None:
            series = self._latency[(route, method)] = ([0] * (len(_LATENCY_BUCKETS) + 1), [0.0])
        # The first bucket whose bound is at least ``seconds``, as Histogram.observe.
        series[0][bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        series[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("syncsvc_http_requests", "HTTP requests",
                                       labels=["route", "method", "status"])
        for (route, method, status), count in self._requests.items():
            requests.add_metric([route, method, str(status)], count)
        yield requests
        latency = HistogramMetricFamily("syncsvc_http_request_duration_seconds",
                                        "HTTP request latency", labels=["route", "method"])
        bounds = [*(floatToGoString(b) for b in _LATENCY_BUCKETS), "+Inf"]
        for (route, method), (counts, total) in self._latency.items():
            cumulative = list(accumulate(counts))
            latency.add_metric([route, method], list(zip(bounds, cumulative, strict=True)),
                               total[0])
        yield latency


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
