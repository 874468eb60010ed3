"""Entry point for uvicorn workers: each worker process builds its app from the same config.

`python -m proxy serve` validates the config first (so errors surface before
any worker starts), then passes its path down in PROXY_CONFIG, and the shared
metrics folder in PROMETHEUS_MULTIPROC_DIR. This module and the CLI are the
only places that read the environment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.applications import Starlette

from proxy.app import create_app
from proxy.config import CONFIG_ENV, METRICS_ENV, Settings, load_settings


def configure_logging(settings: Settings) -> None:
    """Service logs as plain lines on stderr (access logs are JSON lines on stdout: proxy.http.accesslog)."""
    logging.basicConfig(level=settings.logging.level.upper(), format="%(levelname)s:     %(name)s: %(message)s")


def app_from_env() -> Starlette:
    settings = load_settings(Path(os.environ.get(CONFIG_ENV, "config.toml")), os.environ)
    configure_logging(settings)
    folder = os.environ.get(METRICS_ENV)
    return create_app(settings, Path(folder) if folder else None)
