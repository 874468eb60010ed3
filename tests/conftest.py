"""Shared fixtures: the corpus, and real servers (uvicorn subprocesses on loopback ports).

End-to-end tests talk to `python -m proxy serve` over real HTTP with httpx, exactly
as a user would run it; each server gets its own config file and data folder.
Every test that uses `server` or `make_server` runs once per storage backend:
local disk, and S3 over HTTP (moto's standalone server, one per test session,
a fresh key prefix per service). `Server.stored_files()`/`stored()` read what
the service really wrote, from disk or from the bucket. The helpers themselves
live in tests/support/ (importable as `support.*`, also from bench/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from support.corpus import CORPUS, corpus_rows
from support.s3server import MotoServer
from support.servers import Server, ServerFactory, new_server
from support.tokens import APP_AUTH


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"image corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS to its path)")
    return CORPUS


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> dict[str, dict[str, str]]:
    return {row["path"]: row for row in corpus_rows()}


@pytest.fixture(scope="session")
def shared_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the whole session; each service gets its own key prefix."""
    moto = MotoServer(tmp_path_factory.mktemp("moto-shared") / "moto.log").start()
    yield moto
    moto.stop()


@pytest.fixture(scope="module", params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory, backend: str,
                request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """Start servers with config overrides: make_server(limits={"max_frames": 5})."""
    started: list[Server] = []

    def factory(workers: int = 1, env: dict[str, str] | None = None, **sections: dict[str, Any]) -> Server:
        server = new_server(tmp_path_factory.mktemp("server"), backend, request, workers, env, **sections)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A default-config server shared by one test module (per backend)."""
    srv = new_server(tmp_path_factory.mktemp("shared-server"), backend, request).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory, backend: str,
                 request: pytest.FixtureRequest) -> Iterator[Server]:
    """A default-config server with the app token of support.tokens, shared by one test module."""
    srv = new_server(tmp_path_factory.mktemp("token-server"), backend, request, auth=APP_AUTH).start()
    yield srv
    srv.stop()
