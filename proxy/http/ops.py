"""Operational endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse


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
    return JSONResponse(body, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})
