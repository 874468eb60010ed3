"""The memory gate: decodes above render.large_image_pixels run one at a time; small ones never wait."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from proxy.imaging import decode


def peak_inside(pixels: int, workers: int = 4) -> int:
    """How many threads were inside memory_gate(pixels) at once."""
    inside = peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal inside, peak
        with decode.memory_gate(pixels):
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(job) for _ in range(workers)]:
            future.result()
    return peak


def test_large_decodes_are_serialised_small_ones_are_not() -> None:
    decode.configure_pillow(50_000_000, large_pixels=1_000)
    try:
        assert peak_inside(5_000) == 1
        assert peak_inside(500) == 4
    finally:
        decode.configure_pillow(50_000_000)
