"""Operational endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers. (Storage reachability belongs to /readyz.)"""
    return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})
