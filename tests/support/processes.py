"""For the subprocesses tests start (servers, moto, nginx): a free loopback port, and stopping them."""

from __future__ import annotations

import socket
import subprocess
from typing import Any


def free_port() -> int:
    """A port free on 127.0.0.1 right now, for a server the test is about to start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any] | None, grace_s: float = 10) -> None:
    """SIGTERM, wait up to `grace_s` for a clean exit (servers finish in-flight work), then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
