"""Real service processes for the tests: `python -m proxy serve` on a loopback port, one config file
and data folder each, on local disk or on S3 (moto or radosgw over HTTP), with helpers to read what was stored."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy import keys
from support.corpus import REPO
from support.processes import HttpProcess
from support.s3server import AWS_ENV
from support.uploads import upload

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


def proxy_command(config: Path, port: int, workers: int = 1) -> list[str]:
    """`python -m proxy serve` as a user runs it, with this interpreter (the tests' and bench's)."""
    return [
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


@dataclass
class Server:
    """One `python -m proxy serve` process; `start()` again after `stop()` reuses the same data and port.

    `token`: the bearer token `client()` and `upload()` send unless told otherwise (every write
    needs one); None for a server whose test configured its own `auth`.
    """

    folder: Path
    config: Path
    workers: int = 1
    token: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    s3: Any = None  # a boto3 client when the service stores in S3
    bucket: str = ""
    prefix: str = ""
    process: HttpProcess = field(init=False)

    def __post_init__(self) -> None:
        self.process = HttpProcess(
            "server",
            lambda port: proxy_command(self.config, port, self.workers),
            self.folder / "server.log",
            "/healthz",
            cwd=REPO,
            env=self.env,
        )

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self, timeout: float = 30.0) -> Server:
        self.process.start(timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        """Everything the server printed (the JSON access log included), across restarts."""
        path = self.process.log
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, anonymous: bool = False, **kwargs: Any) -> httpx.Client:
        """A client of this server sending `token` (none when `anonymous`)."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token and not anonymous else {}
        return httpx.Client(**{"base_url": self.url, "timeout": 60, "headers": headers, **kwargs})

    def upload(self, image: bytes | Path, **options: Any) -> dict[str, Any]:
        """`support.uploads.upload` on a client of its own (options: expect, token, content_type)."""
        with self.client() as c:
            return upload(c, image, **options)

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/healthz", timeout=5).json()

    def stored_versions(self) -> dict[str, str]:
        """Every stored key with a token that changes when the object is rewritten."""
        if self.s3 is not None:
            found = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(self.prefix) :]] = f"{obj['ETag']}@{obj['LastModified'].isoformat()}"
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

    def put_stored(self, key: str, data: bytes) -> None:
        """Write an object behind the service's back (a store another version or a crash left)."""
        if self.s3 is not None:
            self.s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
            return
        (self.data / key).parent.mkdir(parents=True, exist_ok=True)
        (self.data / key).write_bytes(data)

    def delete_stored(self, key: str) -> None:
        if self.s3 is not None:
            self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + key)
            return
        (self.data / key).unlink()

    def image_keys(self, image_id: str) -> set[str]:
        """Every stored key of one image: original, working copies, metadata, variants, references."""
        return {k for k in self.stored_files() if image_id in k}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m proxy <args> --config <this server's config>`, as an operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "proxy", *args, "--config", str(self.config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ | self.env,
        )

    def variant_files(self, image_id: str) -> list[str]:
        start = keys.variant_prefix(image_id)
        return sorted(k[len(start) :] for k in self.stored_files() if k.startswith(start))


ServerFactory = Callable[..., Server]


NO_RATE_LIMITS = {"rate_limits": {"uploads_per_minute": 0, "misses_per_minute": 0}}
TEST_TOKEN = "tests-admin-token-0123456789"  # the admin token of every test server that configures no auth
TEST_AUTH = {"auth": {"tokens": {"tests": TEST_TOKEN}, "admins": ["tests"]}}


def _defaults(sections: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """`sections` over the test defaults (no rate limits, the test admin token), and the token the
    server's clients send: TEST_TOKEN unless `sections` configure auth themselves."""
    return NO_RATE_LIMITS | TEST_AUTH | sections, None if "auth" in sections else TEST_TOKEN


def local_server(
    folder: Path, workers: int = 1, env: dict[str, str] | None = None, **sections: dict[str, Any]
) -> Server:
    """A not-yet-started Server storing in `folder`/data (explicit sections win).

    Rate limits are off unless `sections` set them: tests and benchmarks upload in
    bulk from one client on purpose. Writes use TEST_TOKEN unless `sections` set `auth`.
    """
    sections, token = _defaults({"storage": {"path": "data"}} | sections)
    return Server(folder, write_config(folder, sections), workers=workers, env=env or {}, token=token)


def s3_storage(s3server: Any, prefix: str, endpoint: str | None = None, **options: Any) -> dict[str, Any]:
    """A `[storage]` section on `s3server`'s bucket under `prefix`, path-style; `endpoint` replaces the
    server's own (a fault proxy in front of it), `options` add [storage.s3] keys (timeouts, attempts)."""
    s3 = {
        "bucket": s3server.bucket,
        "prefix": prefix,
        "endpoint_url": endpoint or s3server.endpoint,
        "addressing_style": "path",
    }
    return {"backend": "s3", "s3": s3 | options}


def new_server(
    folder: Path,
    backend: str,
    request: pytest.FixtureRequest,
    workers: int = 1,
    env: dict[str, str] | None = None,
    prefix: str | None = None,
    **sections: dict[str, Any],
) -> Server:
    """A not-yet-started Server on `backend` (explicit `storage=` sections win), rate limits off and
    the test token as above.

    On S3 each server gets a fresh key prefix unless `prefix` names one to share.
    """
    if backend in S3_BACKENDS and "storage" not in sections:
        s3server = request.getfixturevalue(S3_BACKENDS[backend])
        prefix = prefix or f"e2e-{uuid.uuid4().hex[:12]}"
        storage = s3_storage(s3server, prefix, connect_timeout_s=1.0, read_timeout_s=5.0)
        sections, token = _defaults({"storage": storage} | sections)
        return Server(
            folder,
            write_config(folder, sections),
            workers=workers,
            env=AWS_ENV | (env or {}),
            token=token,
            s3=s3server.client(),
            bucket=s3server.bucket,
            prefix=prefix + "/",
        )
    return local_server(folder, workers, env, **sections)
