"""Entry point for uvicorn workers: each worker process builds its app from the same config.

`python -m proxy serve` validates the config first (so errors surface before
any worker starts), then passes its path down in PROXY_CONFIG. This module and
the CLI are the only places that read the environment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.applications import Starlette

from proxy.app import create_app
from proxy.config import load_settings

CONFIG_ENV = "PROXY_CONFIG"


def app_from_env() -> Starlette:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    return create_app(load_settings(Path(os.environ.get(CONFIG_ENV, "config.toml")), os.environ))
