"""A bounded pool for CPU work (decode, resize, encode) off the event loop.

At most `workers` jobs run at once, in threads (Pillow releases the GIL in
its C code, so threads use every core). At most `max_queue` more may wait;
past that `Overloaded` is raised at once, so the HTTP layer answers 503 with
Retry-After instead of queueing without end. A job that outlives `timeout`
gives `WorkTimeout` to its caller; its thread cannot be interrupted, so its
slot stays taken until it really ends, which keeps the bound honest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from proxy.metrics import RENDERS_IN_FLIGHT, RENDERS_QUEUED

T = TypeVar("T")


class Overloaded(Exception):
    """Every render slot is busy and the wait queue is full."""


class WorkTimeout(Exception):
    """A job took longer than the configured limit."""


class WorkPool:
    def __init__(self, workers: int, max_queue: int, timeout: float) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self._slots = asyncio.Semaphore(workers)
        self.running = 0
        self.waiting = 0

    def check_capacity(self) -> None:
        """Raise Overloaded now if a job submitted now would be refused (fail before doing I/O)."""
        if self._slots.locked() and self.waiting >= self.max_queue:
            raise Overloaded(f"{self.running} renders running and {self.waiting} waiting")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        self.check_capacity()
        self.waiting += 1
        RENDERS_QUEUED.inc()
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
            RENDERS_QUEUED.dec()
        self.running += 1
        RENDERS_IN_FLIGHT.inc()
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            raise WorkTimeout(f"render took longer than {self.timeout:g} s") from None

    def _release(self, _: object) -> None:
        self.running -= 1
        RENDERS_IN_FLIGHT.dec()
        self._slots.release()

    def shutdown(self) -> None:
        """Wait for running jobs to finish (graceful shutdown), then stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
