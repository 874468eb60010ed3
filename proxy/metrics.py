"""Prometheus metrics, safe with several uvicorn workers.

`python -m proxy serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder
before any worker imports prometheus_client, so every worker writes its
samples to memory-mapped files there and /metrics (answered by any one worker)
aggregates all of them. Gauges use `livesum`: a dead worker's in-flight count
drops out. Without that folder (the app built in-process, e.g. by a test), the
default single-process registry is used.

Hot-path cost is a few microseconds per request: label children are resolved
once and cached here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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

REQUESTS = Counter(
    "proxy_http_requests_total",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
RESPONSE_BYTES = Counter("proxy_http_response_bytes_total", "Response body bytes sent, by route", ["route"])
CACHE_RESULTS = Counter(
    "proxy_cache_results_total",
    "Where image answers came from: memory, store, render or coalesced (joined a render)",
    ["tier"],
)
RENDER_SECONDS = Histogram(
    "proxy_render_seconds",
    "Time to render one variant (in the render thread), by format",
    ["format"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
)
RENDERS_IN_FLIGHT = Gauge(
    "proxy_renders_in_flight", "Renders and upload sanitizes running now", multiprocess_mode="livesum"
)
RENDERS_QUEUED = Gauge(
    "proxy_renders_queued", "Renders and upload sanitizes waiting for a slot", multiprocess_mode="livesum"
)
STORAGE_ERRORS = Counter(
    "proxy_storage_errors_total", "Failed store operations (answered 503 or logged)", ["operation"]
)
UPLOADS = Counter(
    "proxy_uploads_total", "Uploads accepted: created (new image) or existing (same bytes again)", ["result"]
)
UPLOADS_REJECTED = Counter("proxy_uploads_rejected_total", "Uploads refused, by error code", ["reason"])


@lru_cache(maxsize=4096)
def request_counter(route: str, method: str, status: int) -> Counter:
    return REQUESTS.labels(route, method, str(status))


@lru_cache(maxsize=64)
def bytes_counter(route: str) -> Counter:
    return RESPONSE_BYTES.labels(route)


@lru_cache(maxsize=16)
def cache_counter(tier: str) -> Counter:
    return CACHE_RESULTS.labels(tier)


def exposition(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """The text format for a scrape: all workers' samples when running multi-process."""
    if multiprocess_dir is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int, multiprocess_dir: Path | None) -> None:
    """Drop a finished worker's live gauges (its counters stay: they are history)."""
    if multiprocess_dir is not None:
        multiprocess.mark_process_dead(pid, str(multiprocess_dir))
