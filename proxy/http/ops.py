"""Operational endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy import metrics
from proxy.http.errors import api_headers, error_response
from proxy.storage import StorageError

_NO_STORE = api_headers("no-store")


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers, with this worker's render and cache counters."""
    service = request.app.state.service
    body = {
        "status": "ok",
        "renders": service.renders,
        "store_write_errors": service.store_write_errors,
        "memory_cache_bytes": service.variants.bytes_used,
        "renders_running": service.pool.running,
        "renders_waiting": service.pool.waiting,
    }
    return JSONResponse(body, headers=_NO_STORE)


async def metrics_page(request: Request) -> Response:
    """Prometheus text format, aggregated over every worker process."""
    body, content_type = metrics.exposition(request.app.state.metrics_dir)
    return Response(body, media_type=content_type, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    """Readiness for a load balancer: the store answers and the render queue is not full.

    An instance that cannot reach its bucket, or is saturated, is taken out of
    rotation instead of answering 503s to real traffic.
    """
    service = request.app.state.service
    try:
        await service.store.ping()
    except StorageError as exc:
        return error_response(
            503, "storage_unavailable", f"the image store is not reachable: {exc}", {"retry-after": "5"}
        )
    if service.pool.waiting >= service.pool.max_queue > 0:
        return error_response(503, "overloaded", "the render queue is full", {"retry-after": "1"})
    return JSONResponse({"status": "ready", "storage": service.settings.storage.backend}, headers=_NO_STORE)
