"""Prometheus metrics.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by them (``make serve`` does): each process writes its values
there and ``/metrics`` aggregates them, so any worker can answer a scrape.
"""

import os
import time

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Imported for its counters: a scrape lists them from the start, at zero, in every process.
from buckets.core import metrics as core_metrics  # noqa: F401

REQUESTS = Counter("kvsite_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "kvsite_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
WATCHERS = Gauge("kvsite_watchers_connected", "Open watch WebSockets", multiprocess_mode="livesum")
EVENTS_DELIVERED = Counter("kvsite_watch_events_delivered_total", "Change events sent to watchers")
EVENTS_DROPPED = Counter(
    "kvsite_watch_events_dropped_total", "Change events not delivered because a slow watcher was closed (4008)"
)


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


class RequestMetricsMiddleware:
    """Counts requests and their latency by route pattern (not by raw path: bounded labels)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = match.route if match is not None else "unmatched"
        LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        return response
