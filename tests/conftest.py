"""Shared fixtures: the corpus, and real servers (uvicorn subprocesses on loopback ports).

End-to-end tests talk to `python -m proxy serve` over real HTTP with httpx, exactly
as a user would run it; each server gets its own config file and data folder.
Every test that uses `server` or `make_server` runs once per storage backend:
local disk, and S3 over HTTP on two implementations, moto's standalone server
("s3") and Ceph's radosgw ("rgw"), each started once per test session, with a
fresh key prefix per service. `Server.stored_files()`/`stored()` read what
the service really wrote, from disk or from the bucket. The helpers themselves
live in tests/support/ (importable as `support.*`, also from bench/).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.corpus import CORPUS, corpus_rows
from support.radosgw import CEPH_BINARIES, RadosCluster
from support.s3server import AWS_ENV, MotoServer, S3Server, StoppableS3
from support.servers import S3_BACKENDS, Server, ServerFactory, new_server
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


@pytest.fixture(scope="session")
def shared_rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadosCluster]:
    """One radosgw cluster for the whole session (about 2 s to start); each service gets its own
    key prefix, and a test that stops S3 stops a gateway of its own (`shared_rgw.gateway()`)."""
    missing = [name for name in CEPH_BINARIES if shutil.which(name) is None]
    if missing:
        why = f"radosgw tests need Debian's ceph-mon ceph-osd radosgw ceph-common (missing: {missing})"
        if os.environ.get("CI") == "true":
            pytest.fail(why + ": .ci/run installs them")  # in CI a skip would hide the S3 tests on radosgw
        pytest.skip(why)
    cluster = RadosCluster(tmp_path_factory.mktemp("rgw")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials where a store's standard chain finds them first (for stores the test process
    builds itself; servers get AWS_ENV in their environment); no profile of the developer's."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(params=list(S3_BACKENDS))
def shared_s3(request: pytest.FixtureRequest) -> S3Server:
    """Each session-wide S3 server in turn (never stop it: other tests use it; see own_s3)."""
    server: S3Server = request.getfixturevalue(S3_BACKENDS[request.param])
    return server


@pytest.fixture(scope="module", params=list(S3_BACKENDS))
def own_s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoppableS3]:
    """Each S3 implementation as a server one test module may stop and start: a moto of its own
    (back empty after a restart), or a gateway of its own on the session's radosgw cluster (back
    with its data: radosgw keeps none itself)."""
    server: StoppableS3
    if request.param == "rgw":
        server = request.getfixturevalue("shared_rgw").gateway(f"own-{uuid.uuid4().hex[:8]}")
    else:
        server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["local", *S3_BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
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
def token_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """A default-config server with the app token of support.tokens, shared by one test module."""
    srv = new_server(tmp_path_factory.mktemp("token-server"), backend, request, auth=APP_AUTH).start()
    yield srv
    srv.stop()
