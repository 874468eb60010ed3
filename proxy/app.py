"""create_app(settings): wire routes, middleware, error handlers and the lifespan (store, pool, service)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from proxy import credentials, metrics
from proxy.config import Settings
from proxy.http import errors
from proxy.http.accesslog import AccessLog
from proxy.http.clients import RealClient
from proxy.http.demo import demo_asset, demo_page
from proxy.http.images import delete_image, delete_reference, get_image, get_meta
from proxy.http.observe import Observe
from proxy.http.ops import healthz, metrics_page, readyz
from proxy.http.upload import upload
from proxy.imaging.decode import configure_pillow
from proxy.service import ImageService
from proxy.storage import create_store
from proxy.workpool import WorkPool

log = logging.getLogger("proxy")


def create_app(settings: Settings, metrics_dir: Path | None = None) -> Starlette:
    """The ASGI app. `metrics_dir`: the prometheus multi-process folder shared by all workers.

    With no `auth.tokens`, the app runs with the generated admin token (proxy.credentials),
    made here if `serve` has not made it already; `ConfigError` if it cannot be kept.
    """
    token_file = credentials.token_path(settings)
    settings, created = credentials.ensure(settings)
    if created:
        log.warning("generated an admin token in %s: uploads and deletes need it", token_file)
    configure_pillow(settings.limits.max_pixels, settings.render.large_image_pixels)
    access_log = AccessLog(sys.stdout) if settings.logging.access_log else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = create_store(settings.storage, settings.render_slots)
        pool = WorkPool(settings.render_slots, settings.render.max_queue, settings.limits.render_timeout_s)
        app.state.service = ImageService(settings, store, pool)
        try:
            yield
        finally:
            # uvicorn has stopped accepting and let in-flight requests finish; renders still
            # queued in the pool run to completion here before the store closes.
            pool.shutdown()
            await app.state.service.fetcher.close()
            await store.close()
            metrics.worker_exited(os.getpid(), metrics_dir)
            if access_log is not None:
                access_log.flush()

    # The image route first: starlette tries routes in order, and it takes almost every request.
    # The paths are the metric labels too (observe.RouteTemplates), hence `{id}`.
    routes = [
        Route("/img/{id}", get_image, methods=["GET"]),  # HEAD is added by starlette
        Route("/img/{id}", delete_image, methods=["DELETE"]),
        Route("/", demo_page, methods=["GET"]),
        Route("/static/{name}", demo_asset, methods=["GET"]),
        Route("/img", upload, methods=["POST"]),
        Route("/img/{id}/meta", get_meta, methods=["GET"]),
        Route("/img/{id}/refs/{ref}", delete_reference, methods=["DELETE"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(errors.RULES, errors.handle),
        middleware=[
            Middleware(RealClient, server=settings.server),  # first: Observe logs its client
            Middleware(Observe, access_log=access_log, routes=routes),
        ],
    )
    app.state.settings = settings
    app.state.metrics_dir = metrics_dir
    return app
