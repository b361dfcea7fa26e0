"""Prometheus metrics of one app: requests by route and status, latency, caches, phases.

Each app has its own registry (two apps in one test process do not share counters).
Requests are labelled by route template (``/jobs/{name}``), never by the path itself,
so a flood of unknown names cannot grow the label set; cache sizes and executions by
phase are read from the cache at scrape time.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from overseer_api import cache as cache_

MAX_SERIES = 1024
"""Labelled series the middleware keeps at hand."""
UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404 or 405)."""


class CacheCollector(Collector):
    """Objects held per kind and namespace, and executions per phase, at scrape time."""

    def __init__(self, store: cache_.Cache) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        sizes = GaugeMetricFamily(
            "overseer_api_cache_objects",
            "Objects held in the API's watch caches.",
            labels=["kind", "namespace"],
        )
        for (kind, namespace), count in sorted(self._store.sizes().items()):
            sizes.add_metric([kind, namespace], count)
        yield sizes
        phases = GaugeMetricFamily(
            "overseer_api_executions",
            "Executions in the cache by phase (Unknown before the operator sets one).",
            labels=["namespace", "phase"],
        )
        for namespace in self._store.namespaces:
            counted = collections.Counter(
                (body.get("status") or {}).get("phase") or "Unknown"
                for body in self._store.all_executions(namespace)
            )
            for phase, count in sorted(counted.items()):
                phases.add_metric([namespace, phase], count)
        yield phases
        ready = GaugeMetricFamily("overseer_api_ready", "1 once every cache holds a full list.")
        ready.add_metric([], 1.0 if self._store.ready else 0.0)
        yield ready


class Metrics:
    """The app's registry and its request metrics."""

    def __init__(self, store: cache_.Cache) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "overseer_api_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "overseer_api_request_duration_seconds",
            "Time to answer a request (to its last byte), by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(CacheCollector(store))

    def series(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram of one (method, route, status)."""
        return (
            self.requests.labels(method, route, str(status)),
            self.latency.labels(method, route),
        )


class RequestMetrics:
    """ASGI middleware: counts and times each HTTP request under its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        """The labelled series of each (method, route, status) seen: ``labels()`` once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or UNMATCHED
            key = (str(scope.get("method", "")), template, status)
            series = self._series.get(key)
            if series is None:
                series = self.metrics.series(*key)
                if len(self._series) < MAX_SERIES:  # methods are the client's to choose
                    self._series[key] = series
            series[0].inc()
            series[1].observe(time.perf_counter() - started)
