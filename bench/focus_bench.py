"""What g=auto costs: the focal-point search per upload, and a render with g=auto against the centre crop.

Upload: the service's whole upload job (proxy.service.prepare: sanitize, working copies, focal
point) is timed on the 8-9 MP camera photos of the corpus, with the focal point's share timed
on its own: find_focus on the working copy prepare picks (detection_level), as prepare runs it.
Render: a 400x400 cover WebP from the working copy, planned at the centre and at the stored
focal point (plan_request, as the service plans it), alternated run by run so load hits both
alike. The two should cost the same: the point is read from the metadata, nothing is searched
at render time; only the crop's position differs.

Usage: python bench/focus_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from proxy.config import Settings
from proxy.imaging.decode import configure_pillow
from proxy.imaging.focus import find_focus
from proxy.imaging.render import RenderJob, render
from proxy.service import ImageMeta, detection_level, plan_request, prepare, source_for
from proxy.variants import parse_query
from support.corpus import CORPUS, corpus_rows

HEADLINE_MP = (7.5, 9.5)


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def photos() -> list[Path]:
    found = []
    for row in corpus_rows():
        w, _, h = row["size"].partition("x")
        if (
            row["path"].startswith("photos/")
            and row["format"] in ("JPEG", "MPO")
            and HEADLINE_MP[0] <= int(w) * int(h) / 1e6 <= HEADLINE_MP[1]
        ):
            found.append(CORPUS / row["path"])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    settings = Settings()
    configure_pillow(settings.limits.max_pixels)
    print(
        "| photo | size | upload job ms | of it: focal point ms | share | found by | render centre ms "
        "| render g=auto ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in photos():
        data = path.read_bytes()
        clean, work, focus = prepare(data, settings)
        upload_ms = median_ms(lambda data=data: prepare(data, settings), args.runs)
        level = detection_level(tuple((w.width, w.height) for w in work), settings.focus)
        searched = clean.data if level is None else work[level].data
        focus_ms = median_ms(lambda searched=searched: find_focus(searched, settings.focus), args.runs)
        meta = ImageMeta.of("0" * 32, (clean, work, focus), created=0.0)
        blobs = {f"{(w.width, w.height)}": w.data for w in work}
        timings: dict[str, list[float]] = {"center": [], "auto": []}
        jobs = {}
        for gravity in timings:
            request = parse_query([("w", "400"), ("h", "400"), ("fit", "cover"), ("g", gravity)], settings.variants)
            key, geometry = source_for(meta, plan_request(meta, request, focus, None))
            size = key.rsplit(".work-", 1)[-1].split("x")
            source = blobs.get(f"({size[0]}, {size[1]})", clean.data) if ".work-" in key else clean.data
            jobs[gravity] = (source, RenderJob(geometry, "webp", 80, settings.render.background, settings.encoders))
        for _ in range(args.runs):
            for gravity, (source, job) in jobs.items():
                started = time.perf_counter()
                render(source, job)
                timings[gravity].append((time.perf_counter() - started) * 1000)
        centre, auto = (statistics.median(timings[g]) for g in ("center", "auto"))
        print(
            f"| {path.name} | {clean.width}x{clean.height} | {upload_ms:.0f} | {focus_ms:.1f} | "
            f"{focus_ms / upload_ms:.0%} | {focus.by} | {centre:.2f} | {auto:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
