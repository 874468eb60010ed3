"""Per-client token buckets for the expensive requests: uploads and renders of new variants.

Cached hits cost almost nothing and are never limited, so a page full of
images keeps loading while a client that asks for endless new variants (or
uploads in a loop) gets 429 with Retry-After. Buckets live in each worker
process (no shared state, in keeping with stateless instances); the number of
clients tracked is bounded by an LRU, so a flood of addresses cannot grow memory.
"""

from __future__ import annotations

import time

from cachetools import LRUCache


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(f"too many {what} from this client; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class TokenBuckets:
    def __init__(self, what: str, per_minute: float, burst: int, clients: int = 100_000) -> None:
        self.what = what
        self.rate = per_minute / 60.0  # tokens per second; 0 disables
        self.burst = float(burst)
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(maxsize=clients)

    def take(self, client: str) -> None:
        """Spend one token of `client`'s bucket, or raise RateLimited saying when one is due."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            raise RateLimited(self.what, (1.0 - tokens) / self.rate)
        self._buckets[client] = (tokens - 1.0, now)
