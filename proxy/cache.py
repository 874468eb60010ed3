"""In-process caching: a byte-bounded LRU of rendered variants, and single-flight.

Both live on the event loop thread only, so they need no locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cachetools import LRUCache

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """A variant ready to send: its bytes and the header values computed once when it was cached."""

    body: bytes
    content_type: str
    etag: str
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.body))


class ByteLRU:
    """LRU bounded by the total size of the cached bodies, not by their number."""

    def __init__(self, max_bytes: int) -> None:
        self._cache: LRUCache[tuple[str, str], Entry] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda e: e.size) if max_bytes > 0 else None
        )

    def get(self, key: tuple[str, str]) -> Entry | None:
        return self._cache.get(key) if self._cache is not None else None

    def put(self, key: tuple[str, str], entry: Entry) -> None:
        if self._cache is not None and entry.size <= self._cache.maxsize:
            self._cache[key] = entry

    def drop_image(self, image_id: str) -> None:
        """Forget every variant of one image (after a delete)."""
        if self._cache is not None:
            for key in [k for k in self._cache.keys() if k[0] == image_id]:
                self._cache.pop(key, None)

    @property
    def bytes_used(self) -> int:
        return int(self._cache.currsize) if self._cache is not None else 0


class SingleFlight(Generic[T]):
    """Run one task per key at a time; concurrent callers for that key share its result.

    The work runs as its own task, so a caller that goes away (client
    disconnect) does not cancel the render the other callers are waiting for.
    """

    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[T]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Return (result, leader): leader is False for callers that joined a task already running."""
        task = self._tasks.get(key)
        leader = task is None
        if task is None:
            task = asyncio.ensure_future(work())
            self._tasks[key] = task
            task.add_done_callback(lambda t: self._finished(key, t))
        return await asyncio.shield(task), leader

    def _finished(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: callers that went away must not cause a warning

    def __len__(self) -> int:
        return len(self._tasks)
