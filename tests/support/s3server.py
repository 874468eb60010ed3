"""S3 servers over real sockets for the tests: moto's standalone server, a black hole, a full backlog.

(The real S3 implementation, radosgw, is in support.radosgw; the fault proxy in support.faultproxy.)

The S3 store is tested over HTTP against a separate process, as it talks to a
real bucket: the botocore timeouts, retries and connection errors it must turn
into StorageError only happen on a real network path, not with in-process mocks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import boto3
import httpx
from botocore.config import Config

from support.processes import free_port, listens_on, stop_process

# The store reads credentials from the standard chain; these make it find dummy ones in the
# environment and keep a developer's own ~/.aws files (profiles, endpoints) out of the tests.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class S3Server(Protocol):
    """What tests use of any S3 server (MotoServer, radosgw's RadosCluster and RadosGateway)."""

    @property
    def endpoint(self) -> str: ...

    @property
    def bucket(self) -> str: ...

    def client(self) -> Any: ...


class StoppableS3(S3Server, Protocol):
    """An S3 server a test may take away and bring back (MotoServer, RadosGateway)."""

    @property
    def running(self) -> bool: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


def s3_client(endpoint: str) -> Any:
    """A plain boto3 client on `endpoint` with AWS_ENV's keys, for setup and for checking what a
    store wrote. Path-style addressing: loopback servers have no per-bucket host names."""
    return boto3.session.Session(
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
    ).client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


class S3Process:
    """What an S3 server process on a loopback port has, whatever the implementation
    (MotoServer here, support.radosgw.RadosGateway). stop() then start() reuses the port, so a
    store configured with `endpoint` sees an outage and a recovery."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> Any:
        return s3_client(self.endpoint)

    def wait_until_answering(self, timeout: float, log: Callable[[], str]) -> None:
        """Until the process answers HTTP; if it exits or stays silent, stop it and raise with its `log()`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{type(self).__name__} exited early:\n{log()}")
            try:
                httpx.get(self.endpoint, timeout=1)
                assert self.proc is not None
                if listens_on(self.proc.pid, self.port):  # not another process that took the port first
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{type(self).__name__} did not answer within {timeout}s:\n{log()}")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


class MotoServer(S3Process):
    """`python -m moto.server` on a loopback port, with one bucket. moto keeps state in memory:
    a restart empties the bucket (start() creates it again)."""

    def __init__(self, log: Path, bucket: str = "test-bucket") -> None:
        super().__init__(bucket)
        self.log = log

    def start(self, timeout: float = 30.0) -> MotoServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | AWS_ENV,
            )
        self.wait_until_answering(timeout, lambda: self.log.read_text(errors="replace"))
        self.client().create_bucket(Bucket=self.bucket)
        return self


class BlackHole:
    """A TCP server that accepts connections and never answers: every read from it times out.

    The kernel completes the handshake and buffers a request, so a client gets past connect
    and then waits on the response; that is the read-timeout path, which a refused port
    never reaches. Use it as a context manager: leaving closes every socket and the thread.
    """

    def __init__(self, max_connections: int = 64) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=max_connections)
        self._listener.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._max = max_connections
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            if len(self._held) >= self._max:  # bounded: past this, clients wait in the backlog
                time.sleep(0.05)
                continue
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._held.append(conn)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._listener.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class FullBacklog:
    """A listener whose accept queue is full and never drained: the kernel drops further SYNs,
    so a client's connect() times out. That is an unreachable host's connect-timeout path, on
    loopback and deterministic (a stopped server refuses at once and never reaches it)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        self._fillers: list[socket.socket] = []
        while len(self._fillers) < 8:  # the queue holds one or two; bounded in case it holds more
            try:
                self._fillers.append(socket.create_connection(self._listener.getsockname(), timeout=0.2))
            except TimeoutError:
                return
        self.close()
        raise RuntimeError("the accept queue did not fill: this kernel does not drop SYNs on overflow")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        for conn in self._fillers:
            conn.close()
        self._listener.close()

    def __enter__(self) -> FullBacklog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
