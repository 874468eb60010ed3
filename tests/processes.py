"""Stopping the subprocesses tests start (servers, moto, nginx): politely, then for sure."""

from __future__ import annotations

import subprocess
from typing import Any


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
