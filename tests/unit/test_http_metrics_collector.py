"""The HTTP request series on /metrics: what a Prometheus scrape of syncsvc shows."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from syncsvc.http.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class TestHttpSeries:
    def test_requests_are_counted_by_route_method_and_status(self) -> None:
        """Each (route template, method, status) is its own counter."""
        metrics = Metrics()
        for status in (200, 200, 404):
            metrics.http.observe("/scim/v2/{endpoint}/{id}", "GET", status, 0.002)

        samples = _samples(metrics)

        route = ("route", "/scim/v2/{endpoint}/{id}")
        assert 2 == samples[("syncsvc_http_requests_total",
                             frozenset({route, ("method", "GET"), ("status", "200")}))]
        assert 1 == samples[("syncsvc_http_requests_total",
                             frozenset({route, ("method", "GET"), ("status", "404")}))]

    def test_latency_buckets_are_cumulative_with_count_and_sum(self) -> None:
        """A 3 ms and a 5 s request: le=0.001 holds none, le=0.005 one, +Inf both."""
        metrics = Metrics()
        metrics.http.observe("/healthz", "GET", 200, 0.003)
        metrics.http.observe("/healthz", "GET", 200, 5.0)

        samples = _samples(metrics)

        def bucket(le: str) -> float:
            return samples[("syncsvc_http_request_duration_seconds_bucket",
                            frozenset({("route", "/healthz"), ("method", "GET"), ("le", le)}))]

        labels = frozenset({("route", "/healthz"), ("method", "GET")})
        assert (0, 1, 1, 2) == (bucket("0.001"), bucket("0.005"), bucket("2.5"), bucket("+Inf"))
        assert 2 == samples[("syncsvc_http_request_duration_seconds_count", labels)]
        assert 5.003 == samples[("syncsvc_http_request_duration_seconds_sum", labels)]

    def test_a_bound_is_inclusive(self) -> None:
        """A request of exactly 10 ms counts in le=0.01, as Prometheus' own histograms."""
        metrics = Metrics()
        metrics.http.observe("/healthz", "GET", 200, 0.01)

        samples = _samples(metrics)

        key = frozenset({("route", "/healthz"), ("method", "GET"), ("le", "0.01")})
        assert 1 == samples[("syncsvc_http_request_duration_seconds_bucket", key)]
