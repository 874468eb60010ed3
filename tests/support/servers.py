"""Real service processes for the tests: `python -m proxy serve` on a loopback port, one config file
and data folder each, on local disk or on S3 (moto or radosgw over HTTP), with helpers to read what was stored."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from support.corpus import REPO
from support.processes import free_port, stop_process
from support.s3server import AWS_ENV

# The S3 backends the tests run on, each with the session fixture that serves it (tests/conftest.py).
S3_BACKENDS = {"s3": "shared_moto", "rgw": "shared_rgw"}


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


def new_server(folder: Path, backend: str, request: pytest.FixtureRequest, workers: int = 1,
               env: dict[str, str] | None = None, prefix: str | None = None, **sections: dict[str, Any]) -> Server:
    """A not-yet-started Server on `backend` (explicit `storage=` sections win).

    On S3 each server gets a fresh key prefix unless `prefix` names one to share.
    Rate limits are off unless a test sets them: tests upload in bulk on purpose.
    """
    sections = {"rate_limits": {"uploads_per_minute": 0, "misses_per_minute": 0}} | sections
    if backend in S3_BACKENDS and "storage" not in sections:
        s3server = request.getfixturevalue(S3_BACKENDS[backend])
        prefix = prefix or f"e2e-{uuid.uuid4().hex[:12]}"
        s3 = {"bucket": s3server.bucket, "prefix": prefix, "endpoint_url": s3server.endpoint,
              "addressing_style": "path", "connect_timeout_s": 1.0, "read_timeout_s": 5.0}
        sections = {"storage": {"backend": "s3", "s3": s3}} | sections
        return Server(folder, write_config(folder, sections), workers=workers, env=AWS_ENV | (env or {}),
                      s3=s3server.client(), bucket=s3server.bucket, prefix=prefix + "/")
    sections = {"storage": {"path": "data"}} | sections
    return Server(folder, write_config(folder, sections), workers=workers, env=env or {})
