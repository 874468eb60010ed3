"""Token buckets for the expensive requests: writes, and renders of new variants.

Cached hits cost almost nothing and are never limited, so a page full of images
keeps loading while a client that asks for endless new variants (or a token that
uploads in a loop) gets 429 with Retry-After. What a bucket belongs to is the
caller's choice (README: the rate-limit model): a token for writes, a real client
address for misses; no bucket at all (None) for requests from a trusted proxy that
named no client, which are many clients, bounded only by the render slots and queue.
Buckets live in each worker process (no shared state, in keeping with stateless
instances); their number is bounded by an LRU, so a flood of addresses cannot grow memory.
"""

from __future__ import annotations

import math
import time

from cachetools import LRUCache


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: float) -> None:
        self.retry_after = retry_after  # seconds until a token is due
        super().__init__(f"too many {what}; retry in {self.retry_after_s} s")

    @property
    def retry_after_s(self) -> int:
        """Whole seconds to wait, as Retry-After says it (at least 1: "0" would invite an instant retry)."""
        return max(1, math.ceil(self.retry_after))


class TokenBuckets:
    def __init__(self, what: str, per_minute: float, burst: int, clients: int = 100_000) -> None:
        self.what = what
        self.rate = per_minute / 60.0  # tokens per second; 0 disables
        self.burst = float(burst)
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(maxsize=clients)

    def take(self, client: str | None) -> None:
        """Spend one token of `client`'s bucket, or raise RateLimited saying when one is due.
        None: no bucket applies."""
        if self.rate <= 0 or client is None:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            raise RateLimited(self.what, (1.0 - tokens) / self.rate)
        self._buckets[client] = (tokens - 1.0, now)
