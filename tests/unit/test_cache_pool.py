"""proxy.cache (ByteLRU, SingleFlight) and proxy.workpool (WorkPool): bounds, coalescing, overload
and timeout behaviour, with real asyncio loops and real threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from proxy.cache import ByteLRU, Entry, SingleFlight
from proxy.workpool import Overloaded, WorkPool, WorkTimeout

T = TypeVar("T")


def entry(size: int, tag: str = "x") -> Entry:
    return Entry(tag.encode()[:1] * size, "image/webp", f'"{tag}"')


# --------------------------------------------------------------------------- ByteLRU


def test_entry_size_is_the_body_length() -> None:
    """Entry.size is computed from the body, so the LRU's budget counts real bytes."""
    assert entry(7).size == 7


def test_bounded_by_bytes_evicting_least_recently_used() -> None:
    """Past the byte budget the least recently *used* (not inserted) entry goes first."""
    lru = ByteLRU(10)
    a, b, c = entry(4, "a"), entry(4, "b"), entry(4, "c")
    lru.put(("img", "a"), a)
    lru.put(("img", "b"), b)
    assert lru.bytes_used == 8
    assert lru.get(("img", "a")) is a  # touch a: b is now the oldest
    lru.put(("img", "c"), c)
    assert lru.get(("img", "b")) is None
    assert lru.get(("img", "a")) is a
    assert lru.get(("img", "c")) is c
    assert lru.bytes_used == 8


def test_many_small_entries_fit_where_few_large_do_not() -> None:
    """The bound is on bytes, not on the number of entries."""
    lru = ByteLRU(100)
    for i in range(100):
        lru.put(("img", str(i)), entry(1))
    assert lru.bytes_used == 100
    assert all(lru.get(("img", str(i))) is not None for i in range(100))
    lru.put(("img", "big"), entry(60))
    assert lru.bytes_used <= 100
    assert lru.get(("img", "big")) is not None
    assert sum(lru.get(("img", str(i))) is not None for i in range(100)) == 40  # the 40 newest small ones


def test_entry_larger_than_the_budget_is_not_stored_and_evicts_nothing() -> None:
    """A variant bigger than the whole cache is simply not cached; what is cached stays."""
    lru = ByteLRU(10)
    small = entry(3)
    lru.put(("img", "small"), small)
    lru.put(("img", "huge"), entry(11))
    assert lru.get(("img", "huge")) is None
    assert lru.get(("img", "small")) is small
    assert lru.bytes_used == 3


def test_entry_exactly_the_budget_is_stored() -> None:
    """An entry of exactly max_bytes fits (and pushes everything else out)."""
    lru = ByteLRU(10)
    lru.put(("img", "a"), entry(5))
    lru.put(("img", "full"), entry(10))
    assert lru.get(("img", "full")) is not None
    assert lru.get(("img", "a")) is None
    assert lru.bytes_used == 10


def test_replacing_a_key_counts_only_the_new_size() -> None:
    """Re-putting a key replaces its bytes instead of adding to them."""
    lru = ByteLRU(10)
    lru.put(("img", "a"), entry(6))
    lru.put(("img", "a"), entry(2))
    assert lru.bytes_used == 2


def test_drop_image_removes_only_that_images_entries() -> None:
    """After a delete, every variant of that id is gone and other images keep theirs."""
    lru = ByteLRU(1000)
    for image in ("aaa", "bbb"):
        for variant in ("64x64.webp", "128x128.webp", "320x240-q80.jpg"):
            lru.put((image, variant), entry(10))
    lru.put(("aaa-not-a-prefix-match", "64x64.webp"), entry(10))
    lru.drop_image("aaa")
    assert all(lru.get(("aaa", v)) is None for v in ("64x64.webp", "128x128.webp", "320x240-q80.jpg"))
    assert all(lru.get(("bbb", v)) is not None for v in ("64x64.webp", "128x128.webp", "320x240-q80.jpg"))
    assert lru.get(("aaa-not-a-prefix-match", "64x64.webp")) is not None
    assert lru.bytes_used == 40
    lru.drop_image("never-cached")  # harmless
    assert lru.bytes_used == 40


@pytest.mark.parametrize("budget", [0, -1])
def test_zero_budget_disables_the_cache(budget: int) -> None:
    """cache.memory_bytes = 0 turns the memory tier off: nothing is kept, nothing fails."""
    lru = ByteLRU(budget)
    lru.put(("img", "a"), entry(1))
    assert lru.get(("img", "a")) is None
    assert lru.bytes_used == 0
    lru.drop_image("img")


# --------------------------------------------------------------------------- SingleFlight


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_concurrent_callers_share_one_run() -> None:
    """10 concurrent callers of one key run the work once, all get its result, exactly one leads."""
    flight: SingleFlight[str] = SingleFlight()
    calls = 0

    async def work() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "rendered"

    async def scenario() -> list[tuple[str, bool]]:
        results = await asyncio.gather(*(flight.run("k", work) for _ in range(10)))
        assert len(flight) == 0  # forgotten once done
        return results

    results = run(scenario())
    assert calls == 1
    assert [r for r, _ in results] == ["rendered"] * 10
    assert sum(leader for _, leader in results) == 1


def test_different_keys_run_separately_and_a_finished_key_runs_again() -> None:
    """Only concurrent callers of the *same* key coalesce; a later call starts fresh work."""
    flight: SingleFlight[str] = SingleFlight()
    calls: list[str] = []

    def work_for(key: str) -> Callable[[], Awaitable[str]]:
        async def work() -> str:
            calls.append(key)
            await asyncio.sleep(0.01)
            return key

        return work

    async def scenario() -> None:
        a, b = await asyncio.gather(flight.run("a", work_for("a")), flight.run("b", work_for("b")))
        assert a == ("a", True) and b == ("b", True)
        assert await flight.run("a", work_for("a")) == ("a", True)

    run(scenario())
    assert calls == ["a", "b", "a"]


def test_an_exception_reaches_every_caller() -> None:
    """When the shared work fails, every waiting caller gets the error (none hangs, none gets None)."""
    flight: SingleFlight[str] = SingleFlight()
    calls = 0

    async def work() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise ValueError("decoder exploded")

    async def scenario() -> list[object]:
        results = await asyncio.gather(*(flight.run("k", work) for _ in range(10)), return_exceptions=True)
        assert len(flight) == 0
        return results

    results = run(scenario())
    assert calls == 1
    assert len(results) == 10
    assert all(isinstance(r, ValueError) and str(r) == "decoder exploded" for r in results)


def test_cancelling_one_waiter_does_not_cancel_the_shared_work() -> None:
    """A client that disconnects (even the one that started the work) leaves the render running for the rest."""
    flight: SingleFlight[str] = SingleFlight()
    finished = 0

    async def work() -> str:
        nonlocal finished
        await asyncio.sleep(0.05)
        finished += 1
        return "done"

    async def scenario() -> None:
        leader = asyncio.create_task(flight.run("k", work))
        await asyncio.sleep(0)  # the leader has started the work
        followers = [asyncio.create_task(flight.run("k", work)) for _ in range(3)]
        await asyncio.sleep(0.01)
        leader.cancel()
        followers[0].cancel()
        results = await asyncio.gather(*followers[1:])
        assert results == [("done", False), ("done", False)]
        assert leader.cancelled() and followers[0].cancelled()

    run(scenario())
    assert finished == 1


# --------------------------------------------------------------------------- WorkPool


def test_runs_functions_in_worker_threads() -> None:
    """Work runs off the event loop thread, with its arguments, and returns its result."""

    async def scenario() -> tuple[int, str]:
        pool = WorkPool(workers=2, max_queue=4, timeout=5)
        try:
            return await pool.run(lambda a, b: a * b, 6, 7), await pool.run(lambda: threading.current_thread().name)
        finally:
            pool.shutdown()

    product, thread = run(scenario())
    assert product == 42
    assert thread != threading.main_thread().name
    assert thread.startswith("render")


def test_exceptions_from_the_job_reach_the_caller_and_free_the_slot() -> None:
    """A job that raises gives its exception to the caller, and its slot is released."""

    def boom() -> None:
        raise RuntimeError("bad pixels")

    async def scenario() -> None:
        pool = WorkPool(workers=1, max_queue=0, timeout=5)
        try:
            with pytest.raises(RuntimeError, match="bad pixels"):
                await pool.run(boom)
            await asyncio.sleep(0)
            assert pool.running == 0
            assert await pool.run(lambda: "next") == "next"
        finally:
            pool.shutdown()

    run(scenario())


def test_full_pool_with_no_queue_refuses_at_once() -> None:
    """workers=1, max_queue=0: a second job while the first runs raises Overloaded immediately."""
    release = threading.Event()

    async def scenario() -> None:
        pool = WorkPool(workers=1, max_queue=0, timeout=10)
        try:
            first = asyncio.create_task(pool.run(release.wait, 5))
            await asyncio.sleep(0.02)
            assert pool.running == 1
            started = time.monotonic()
            with pytest.raises(Overloaded):
                await pool.run(lambda: "second")
            assert time.monotonic() - started < 0.5
            release.set()
            assert await first is True
            await asyncio.sleep(0)
            assert pool.running == 0
            assert await pool.run(lambda: "after") == "after"  # the slot is free again
        finally:
            release.set()
            pool.shutdown()

    run(scenario())


def test_queue_holds_max_queue_waiters_then_refuses() -> None:
    """workers=1, max_queue=1: one job runs, one waits (and later runs), a third is refused."""
    release = threading.Event()

    async def scenario() -> None:
        pool = WorkPool(workers=1, max_queue=1, timeout=10)
        try:
            first = asyncio.create_task(pool.run(release.wait, 5))
            await asyncio.sleep(0.02)
            second = asyncio.create_task(pool.run(lambda: "queued"))
            await asyncio.sleep(0.02)
            assert (pool.running, pool.waiting) == (1, 1)
            with pytest.raises(Overloaded):
                await pool.run(lambda: "third")
            release.set()
            assert await first is True
            assert await second == "queued"
        finally:
            release.set()
            pool.shutdown()

    run(scenario())


def test_timeout_raises_and_the_slot_stays_busy_until_the_thread_ends() -> None:
    """A job past the timeout gives WorkTimeout, but its thread keeps the slot (running == 1, new jobs
    refused) until it really finishes; then the slot is free again."""
    release = threading.Event()

    async def scenario() -> None:
        pool = WorkPool(workers=1, max_queue=0, timeout=0.05)
        try:
            started = time.monotonic()
            with pytest.raises(WorkTimeout):
                await pool.run(release.wait, 5)
            assert time.monotonic() - started < 1
            await asyncio.sleep(0.1)
            assert pool.running == 1  # the thread is still blocked in release.wait
            with pytest.raises(Overloaded):
                await pool.run(lambda: "refused")
            release.set()
            deadline = time.monotonic() + 2
            while pool.running and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert pool.running == 0
            assert await pool.run(lambda: "free") == "free"
        finally:
            release.set()
            pool.shutdown()

    run(scenario())
