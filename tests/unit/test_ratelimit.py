"""proxy.ratelimit: per-client token buckets, on a clock the test moves by hand.

The module reads `time.monotonic()`; the tests replace the module's `time` with a fake clock, so
refill is exact and instant, and nothing else in the process sees a changed clock.
"""

from __future__ import annotations

import pytest

from proxy import ratelimit
from proxy.ratelimit import RateLimited, TokenBuckets


class FakeClock:
    """Stands in for the `time` module inside proxy.ratelimit: monotonic() is whatever the test set."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def spend(buckets: TokenBuckets, client: str | None, count: int) -> None:
    for _ in range(count):
        buckets.take(client)


def test_a_full_burst_then_a_refusal_saying_when_to_retry(clock: FakeClock) -> None:
    buckets = TokenBuckets("uploads", per_minute=60, burst=3)  # one token a second
    spend(buckets, "10.0.0.1", 3)
    with pytest.raises(RateLimited) as refused:
        buckets.take("10.0.0.1")
    assert refused.value.retry_after == pytest.approx(1.0)
    assert "too many uploads" in str(refused.value)


def test_tokens_come_back_at_the_configured_rate(clock: FakeClock) -> None:
    buckets = TokenBuckets("renders", per_minute=30, burst=2)  # one token every 2 s
    spend(buckets, "a", 2)
    clock.advance(1.5)
    with pytest.raises(RateLimited) as refused:  # three quarters of a token so far
        buckets.take("a")
    assert refused.value.retry_after == pytest.approx(0.5)
    # Half a second away is said as the whole second Retry-After sends, never "retry in 0 s".
    assert refused.value.retry_after_s == 1 and "retry in 1 s" in str(refused.value)
    clock.advance(0.5)
    buckets.take("a")  # a whole token now
    with pytest.raises(RateLimited):
        buckets.take("a")


def test_an_idle_client_refills_to_the_burst_and_no_further(clock: FakeClock) -> None:
    buckets = TokenBuckets("uploads", per_minute=60, burst=4)
    spend(buckets, "a", 4)
    clock.advance(3600)  # an hour idle earns 3600 tokens, but the bucket holds 4
    spend(buckets, "a", 4)
    with pytest.raises(RateLimited):
        buckets.take("a")


def test_zero_per_minute_disables_the_limit(clock: FakeClock) -> None:
    buckets = TokenBuckets("uploads", per_minute=0, burst=1)
    spend(buckets, "a", 10_000)  # never refused, without the clock moving


def test_no_bucket_means_no_limit_and_no_memory(clock: FakeClock) -> None:
    """None: requests a trusted proxy forwarded without naming the client, which are many
    clients; only the global render bound applies to them, and nothing is tracked."""
    buckets = TokenBuckets("renders", per_minute=60, burst=1, clients=1)
    buckets.take("a")
    spend(buckets, None, 1000)
    with pytest.raises(RateLimited):
        buckets.take("a")  # still tracked: None took no place in the LRU


def test_clients_have_buckets_of_their_own(clock: FakeClock) -> None:
    buckets = TokenBuckets("uploads", per_minute=60, burst=2)
    spend(buckets, "a", 2)
    with pytest.raises(RateLimited):
        buckets.take("a")
    spend(buckets, "b", 2)  # b's bucket is full although a's is empty
    with pytest.raises(RateLimited):
        buckets.take("b")


def test_tracked_clients_are_bounded_least_recently_used_first(clock: FakeClock) -> None:
    """A flood of addresses cannot grow memory: past `clients`, the oldest bucket is forgotten
    (that client starts again with a full burst, the price of the bound)."""
    buckets = TokenBuckets("uploads", per_minute=60, burst=1, clients=2)
    buckets.take("old")
    buckets.take("recent")
    with pytest.raises(RateLimited):
        buckets.take("recent")  # still tracked: refused, and now the most recently used
    buckets.take("newcomer")  # a third client: "old" is evicted
    buckets.take("old")  # forgotten, so a full bucket again
    with pytest.raises(RateLimited):
        buckets.take("newcomer")  # the two most recent are still tracked and empty
    with pytest.raises(RateLimited):
        buckets.take("old")
