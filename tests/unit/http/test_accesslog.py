"""The batched access log: lines arrive whole, in order, within FLUSH_S, and at once when MAX_LINES wait."""

from __future__ import annotations

import asyncio
import io
import json

from proxy.http import accesslog
from proxy.http.accesslog import AccessLog


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def records(stream: CountingStream) -> list[dict[str, int]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_batched_and_written_within_the_flush_delay() -> None:
    async def scenario() -> tuple[list[dict[str, int]], list[dict[str, int]], int]:
        stream = CountingStream()
        log = AccessLog(stream)
        for n in range(3):
            log.write({"n": n})
        before = records(stream)
        await asyncio.sleep(accesslog.FLUSH_S * 3)
        return before, records(stream), stream.flushes

    before, after, flushes = asyncio.run(scenario())
    assert before == []
    assert after == [{"n": 0}, {"n": 1}, {"n": 2}] and flushes == 1


def test_a_full_batch_is_written_at_once_and_flush_empties_the_rest() -> None:
    async def scenario() -> tuple[int, int]:
        stream = CountingStream()
        log = AccessLog(stream)
        for n in range(accesslog.MAX_LINES + 5):
            log.write({"n": n})
        written = len(records(stream))
        log.flush()  # as at shutdown
        assert [r["n"] for r in records(stream)] == list(range(accesslog.MAX_LINES + 5))
        return written, stream.flushes

    assert asyncio.run(scenario()) == (accesslog.MAX_LINES, 2)
