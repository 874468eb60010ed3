"""The access log: one JSON object per request, written to a stream in batches.

Why batches: a line written and flushed per request costs a syscall on every
cached hit, about a quarter of the hit path's throughput (measured: 6.4k vs
4.8k req/s). Like nginx's `access_log ... buffer= flush=`, lines are collected
in memory and written together, at most `FLUSH_S` seconds after the first one
of a batch or as soon as `MAX_LINES` wait, and once more at shutdown. A worker
killed hard can lose up to that much of its log; nothing else is delayed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TextIO

FLUSH_S = 0.1
MAX_LINES = 512


class AccessLog:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record; called on the event loop (the timer needs it)."""
        self._lines.append(json.dumps(record, separators=(",", ":")))
        if len(self._lines) >= MAX_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            self.stream.write(text)
            self.stream.flush()
