"""Shared fixtures: the corpus, and real servers (uvicorn subprocesses on loopback ports).

End-to-end tests talk to `python -m proxy serve` over real HTTP with httpx, exactly
as a user would run it; each server gets its own config file and data folder.
Every test that uses `server` or `make_server` runs once per storage backend:
local disk, and S3 over HTTP (moto's standalone server, one per test session,
a fresh key prefix per service). `Server.stored_files()`/`stored()` read what
the service really wrote, from disk or from the bucket.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from processes import free_port, stop_process
from s3server import AWS_ENV, MotoServer

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("RESIZE_PROXY_CORPUS", REPO.parent / "shared" / "corpus"))
ARTIFACTS = REPO / "test-artifacts"


# --------------------------------------------------------------------------- corpus


def corpus_rows() -> list[dict[str, str]]:
    """MANIFEST.tsv rows, or [] when the corpus is absent (tests using it then skip)."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def corpus_files(folder: str) -> list[str]:
    return sorted(r["path"] for r in corpus_rows() if r["path"].startswith(folder + "/"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"image corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS to its path)")
    return CORPUS


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> dict[str, dict[str, str]]:
    return {row["path"]: row for row in corpus_rows()}


# --------------------------------------------------------------------------- servers


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def write_config(folder: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Server:
    """One `python -m proxy serve` process; `start()` again after `stop()` reuses the same data."""

    folder: Path
    config: Path
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    s3: Any = None  # a boto3 client when the service stores in S3
    bucket: str = ""
    prefix: str = ""
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self, timeout: float = 30.0) -> Server:
        self.port = free_port()
        log = (self.folder / "server.log").open("ab")
        cmd = [sys.executable, "-m", "proxy", "serve", "--config", str(self.config), "--port", str(self.port),
               "--workers", str(self.workers)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                     env=os.environ | self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.proc, grace_s=15)
        self.proc = None

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/healthz", timeout=5).json()

    def stored_versions(self) -> dict[str, str]:
        """Every stored key with a token that changes when the object is rewritten."""
        if self.s3 is not None:
            found = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(self.prefix):]] = f"{obj['ETag']}@{obj['LastModified'].isoformat()}"
            return found
        if not self.data.exists():
            return {}
        return {str(p.relative_to(self.data)): str(p.stat().st_mtime_ns) for p in self.data.rglob("*") if p.is_file()}

    def stored_files(self) -> set[str]:
        """Every stored key (originals/<id>, variants/<id>/...), for 'nothing was written' checks."""
        return set(self.stored_versions())

    def stored(self, key: str) -> bytes:
        if self.s3 is not None:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read())
        return (self.data / key).read_bytes()

    def variant_files(self, image_id: str) -> list[str]:
        start = f"variants/{image_id}/"
        return sorted(k[len(start):] for k in self.stored_files() if k.startswith(start))


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="session")
def shared_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the whole session; each service gets its own key prefix."""
    moto = MotoServer(tmp_path_factory.mktemp("moto-shared") / "moto.log").start()
    yield moto
    moto.stop()


@pytest.fixture(scope="module", params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_server(folder: Path, backend: str, request: pytest.FixtureRequest, workers: int = 1,
               env: dict[str, str] | None = None, prefix: str | None = None, **sections: dict[str, Any]) -> Server:
    """A not-yet-started Server on `backend` (explicit `storage=` sections win).

    On S3 each server gets a fresh key prefix unless `prefix` names one to share.
    Rate limits are off unless a test sets them: tests upload in bulk on purpose.
    """
    sections = {"rate_limits": {"uploads_per_minute": 0, "misses_per_minute": 0}} | sections
    if backend == "s3" and "storage" not in sections:
        moto: MotoServer = request.getfixturevalue("shared_moto")
        prefix = prefix or f"e2e-{uuid.uuid4().hex[:12]}"
        s3 = {"bucket": moto.bucket, "prefix": prefix, "endpoint_url": moto.endpoint,
              "connect_timeout_s": 1.0, "read_timeout_s": 5.0}
        sections = {"storage": {"backend": "s3", "s3": s3}} | sections
        return Server(folder, write_config(folder, sections), workers=workers, env=AWS_ENV | (env or {}),
                      s3=moto.client(), bucket=moto.bucket, prefix=prefix + "/")
    sections = {"storage": {"path": "data"}} | sections
    return Server(folder, write_config(folder, sections), workers=workers, env=env or {})


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
