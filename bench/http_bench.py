"""HTTP throughput of the proxy on loopback: cached hits, fresh renders, and a fixed-body ceiling.

Why these three: a hit (variant already in memory) measures our per-request
Python overhead, which a CDN origin pays on every cache revalidation or
regional miss; a miss (variant never rendered) measures the render pipeline
plus storage under concurrency, including memory growth; and a minimal
starlette app returning a fixed body from memory, on the same uvicorn settings
and machine, is the ceiling the hit path is judged against. Absolute req/s
depend on the machine, so the figure to watch is hit req/s / fixed req/s.

Every server is a subprocess on 127.0.0.1 with a fresh temporary data folder;
every phase is bounded by a request count and a time limit; everything started
is stopped. The load generator (wrk when installed, else Python asyncio+httpx)
runs on the same cores as the server, which the output says.

Usage: python bench/http_bench.py [--workers 1,2] [--concurrency 1,4,16] [--quick] [--generator auto|wrk|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The tests' helpers (support.*: servers, processes, uploads, the corpus) serve the benchmarks too;
# the imports below this line may come from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx

from proxy.config import EncoderSettings, VariantSettings
from proxy.imaging.geometry import plan
from proxy.imaging.render import default_quality
from proxy.keys import variant_name
from support.corpus import CORPUS, REPO
from support.processes import HttpProcess, descendants
from support.servers import TEST_TOKEN, local_server
from support.uploads import upload_files

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_phase.lua"
# The cached variant the hit phase requests: 29.9 KB, close to fixed_app's 30 KB body.
HIT_PHOTO, HIT_QUERY = "photos/reconyx_trailcam.jpg", "w=480&fmt=webp"
REQUEST_TIMEOUT_S = 30.0  # above limits.render_timeout_s (20 s), so the server answers first
RSS_INTERVAL_S = 0.1
SEED = 1  # miss order: shuffled so every phase sees a mix of sizes, identical across phases
# The 8-9 MP photos: the memory bound is stated for 16 concurrent misses on these.
LARGEST = ["photos/nokia_8.3_5g_gps_9mp.jpg", "photos/sony_hdr-as300_gps_8mp_mpo.jpg"]


@dataclass(frozen=True)
class Limits:
    """A phase ends at whichever comes first."""

    requests: int
    seconds: float


@dataclass
class Phase:
    """What one load phase measured."""

    target: str  # proxy-hit | fixed | proxy-miss
    workers: int
    concurrency: int
    generator: str
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)  # status code, or the socket error kind
    ms_503: list[float] = field(default_factory=list)  # 503 answers' latencies: overload must be refused fast
    tiers: Counter[str] = field(default_factory=Counter)  # X-Cache-Tier, httpx generator only
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> str:
        bad = {k: v for k, v in self.statuses.items() if k != "200"}
        return ",".join(f"{k}:{v}" for k, v in sorted(bad.items())) or "0"


# --------------------------------------------------------------------------- processes


def rss_kb(pid: int) -> int:
    return _proc_kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages (the interpreter, libvips, forked workers' common memory) counted
    once across a process tree, where summed RSS counts them in every process."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def _proc_kb(path: str, label: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(label):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Peaks of the summed VmRSS and of the summed PSS of a process tree, sampled every 100 ms in a thread."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            tree = descendants(self.root)
            self.peak_kb = max(self.peak_kb, sum(rss_kb(pid) for pid in tree))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(pid) for pid in tree))
            if self._stop.wait(RSS_INTERVAL_S):
                return


def proxy_server(folder: Path, workers: int, render: dict[str, Any] | None = None) -> HttpProcess:
    """The real service as the tests start it, default settings, data in `folder` (fresh per call: nothing cached).

    Rate limits are off: the load generator is one client asking for every variant.
    `render` sets keys of the [render] table (the overload phase shrinks the queue).
    """
    folder.mkdir(parents=True, exist_ok=True)
    return local_server(folder, workers, render=render or {}).process


def fixed_server(folder: Path, workers: int) -> HttpProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return HttpProcess(
        "fixed",
        lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.fixed_app:app",
            "--app-dir",
            str(REPO),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--no-server-header",
        ],
        folder / "fixed.log",
        "/",
        cwd=REPO,
    )


# --------------------------------------------------------------------------- load generators


def percentile(sorted_ms: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(pct / 100 * len(sorted_ms)) - 1))]


def run_wrk(url: str, concurrency: int, limits: Limits) -> Phase:
    """One wrk thread (the cheapest client on shared cores); count bound via wrk_phase.lua."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(limits.seconds))}s",
        f"--timeout={int(REQUEST_TIMEOUT_S)}s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        str(max(1, limits.requests)),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("BENCH-LIMIT"):
                proc.send_signal(signal.SIGINT)  # count reached: make wrk report now, not at -d
        proc.wait(timeout=limits.seconds + REQUEST_TIMEOUT_S + 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return parse_wrk(lines)


def parse_wrk(lines: list[str]) -> Phase:
    phase = Phase("", 0, 0, "wrk")
    for line in lines:
        if line.startswith("BENCH-SUMMARY"):
            values = dict(item.split("=") for item in line.split()[1:])
            phase.requests = int(values["requests"])
            phase.seconds = int(values["elapsed_us"]) / 1e6
            phase.p50_ms, phase.p99_ms = int(values["p50_us"]) / 1000, int(values["p99_us"]) / 1000
            for kind in ("connect", "read", "write", "timeout"):
                if int(values[kind]):
                    phase.statuses[f"sock-{kind}"] += int(values[kind])
        elif line.startswith("BENCH-STATUS"):
            _, status, count = line.split()
            phase.statuses[status] += int(count)
    if not phase.requests and not phase.statuses:
        raise RuntimeError("wrk printed no summary:\n" + "\n".join(lines[-20:]))
    return phase


async def _drive(base: str, paths: Iterator[str], concurrency: int, limits: Limits) -> Phase:
    """`concurrency` keep-alive connections, each sending its next path as soon as the last answer is read.

    One single-connection client per connection: a shared httpx pool at 16
    connections spends more CPU on its own bookkeeping than the server spends
    answering a cached variant.
    """
    phase = Phase("", 0, 0, "httpx")
    latencies: list[float] = []
    deadline = time.monotonic() + limits.seconds
    issued = 0

    async def one_connection() -> None:
        nonlocal issued
        async with httpx.AsyncClient(
            base_url=base,
            timeout=REQUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        ) as client:
            while issued < limits.requests and time.monotonic() < deadline:
                path = next(paths, None)
                if path is None:
                    return
                issued += 1
                start = time.perf_counter()
                try:
                    response = await client.get(path)
                    phase.statuses[str(response.status_code)] += 1
                    phase.tiers[response.headers.get("x-cache-tier", "-")] += 1
                except httpx.HTTPError as exc:
                    phase.statuses[type(exc).__name__] += 1
                    response = None
                latencies.append((time.perf_counter() - start) * 1000)
                if response is not None and response.status_code == 503:
                    phase.ms_503.append(latencies[-1])

    start = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(one_connection() for _ in range(concurrency))), limits.seconds + REQUEST_TIMEOUT_S + 5
    )
    phase.seconds = time.perf_counter() - start
    latencies.sort()
    phase.requests = len(latencies)
    phase.p50_ms, phase.p99_ms = percentile(latencies, 50), percentile(latencies, 99)
    return phase


def run_httpx(base: str, paths: Iterable[str], concurrency: int, limits: Limits) -> Phase:
    return asyncio.run(_drive(base, iter(paths), concurrency, limits))


# --------------------------------------------------------------------------- the proxy's side


def upload_photos(base: str, photos: list[str]) -> dict[str, dict[str, Any]]:
    """POST each corpus photo with the test servers' token: corpus path -> the service's JSON document."""
    with httpx.Client(base_url=base, timeout=60) as client:
        return upload_files(client, CORPUS, photos, token=TEST_TOKEN)


def warm(base: str, path: str) -> int:
    """Request the hit variant on many fresh connections so every worker has it in memory; return its size."""
    size = 0
    for _ in range(32):
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as client:
            r = client.get(path)
            r.raise_for_status()
            size = len(r.content)
    return size


def miss_paths(uploaded: dict[str, dict[str, Any]], formats: tuple[str, ...] = ("webp",)) -> list[str]:
    """One path per distinct rendered output: image x allowed width x format, folded as the service folds them.

    Widths above an image's own width give the same pixels (no upscaling), so
    they share a variant key and would be cache hits; only the first is kept.
    """
    paths = []
    for image in uploaded.values():
        seen = set()
        for w, fmt in itertools.product(VariantSettings().widths, formats):
            key = variant_name(
                plan(image["width"], image["height"], w, None, "inside"), fmt, default_quality(EncoderSettings(), fmt)
            )
            if key not in seen:
                seen.add(key)
                paths.append(f"/img/{image['id']}?w={w}&fmt={fmt}")
    random.Random(SEED).shuffle(paths)
    return paths


# --------------------------------------------------------------------------- phases


@dataclass(frozen=True)
class BenchPlan:
    workers: tuple[int, ...]
    concurrency: tuple[int, ...]
    hit: Limits
    miss: Limits
    use_wrk: bool


def measure(server: HttpProcess, phase_of: Callable[[], Phase], target: str, workers: int, concurrency: int) -> Phase:
    """Run one phase while sampling the server tree's RSS; label the result."""
    assert server.proc is not None
    with RssSampler(server.proc.pid) as rss:
        phase: Phase = phase_of()
    phase.target, phase.workers, phase.concurrency = target, workers, concurrency
    phase.peak_rss_mb = rss.peak_kb / 1024
    phase.peak_pss_mb = rss.peak_pss_kb / 1024
    return phase


def hit_phases(bench: BenchPlan, workers: int, tmp: Path) -> list[Phase]:
    """Proxy hits and the fixed app, alternating per concurrency so drift hits both alike."""
    phases = []
    folder = tmp / f"hit-w{workers}"
    with proxy_server(folder, workers) as proxy, fixed_server(folder, workers) as fixed:
        image = upload_photos(proxy.url, [HIT_PHOTO])[HIT_PHOTO]
        hit_path = f"/img/{image['id']}?{HIT_QUERY}"
        size = warm(proxy.url, hit_path)
        print(
            f"  hit variant {HIT_PHOTO}?{HIT_QUERY}: {size} bytes; fixed app body: "
            f"{len(httpx.get(fixed.url + '/', timeout=5).content)} bytes"
        )
        for c in bench.concurrency:
            for server, path, target in ((proxy, hit_path, "proxy-hit"), (fixed, "/", "fixed")):
                phases.append(measure(server, lambda: drive_hits(bench, server.url, path, c), target, workers, c))
    return phases


def drive_hits(bench: BenchPlan, base: str, path: str, concurrency: int) -> Phase:
    if bench.use_wrk:
        return run_wrk(base + path, concurrency, bench.hit)
    return run_httpx(base, itertools.repeat(path), concurrency, bench.hit)


def miss_phase(
    bench: BenchPlan,
    workers: int,
    concurrency: int,
    tmp: Path,
    target: str = "proxy-miss",
    photos: list[str] | None = None,
    min_width: int = 0,
    render: dict[str, Any] | None = None,
    formats: tuple[str, ...] = ("webp",),
) -> Phase:
    """A fresh server and data folder per phase: no variant exists, and RSS starts from scratch.

    `photos` and `min_width` narrow the workload (e.g. only 8-9 MP photos at widths
    larger than every working copy, the heaviest renders); `render` tunes the server.
    """
    photos = photos or sorted(f"photos/{p.name}" for p in (CORPUS / "photos").iterdir())
    with proxy_server(tmp / f"{target}-w{workers}-c{concurrency}", workers, render) as proxy:
        paths = [
            p
            for p in miss_paths(upload_photos(proxy.url, photos), formats)
            if int(p.split("w=")[1].split("&")[0]) >= min_width
        ]
        phase = measure(
            proxy, lambda: run_httpx(proxy.url, paths, concurrency, bench.miss), target, workers, concurrency
        )
    if phase.requests < bench.miss.requests and phase.requests == len(paths):
        phase.note = f"all {len(paths)} distinct variants rendered"
    return phase


# --------------------------------------------------------------------------- report


def print_phases(phases: list[Phase]) -> None:
    print(
        f"{'target':<10} {'wk':>2} {'conc':>4} {'gen':<5} {'reqs':>6} {'secs':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'errors':<10} {'peak RSS MB':>11}  tiers / note"
    )
    for p in phases:
        tiers = ",".join(f"{k}:{v}" for k, v in sorted(p.tiers.items()))
        print(
            f"{p.target:<10} {p.workers:>2} {p.concurrency:>4} {p.generator:<5} {p.requests:>6} {p.seconds:>6.2f} "
            f"{p.rps:>8.1f} {p.p50_ms:>8.2f} {p.p99_ms:>8.2f} {p.errors:<10} {p.peak_rss_mb:>11.1f}  "
            f"{' '.join(x for x in (tiers, p.note) if x)}"
        )


def print_ratios(phases: list[Phase]) -> None:
    fixed = {(p.workers, p.concurrency): p for p in phases if p.target == "fixed"}
    ratios = []
    for p in phases:
        ceiling = fixed.get((p.workers, p.concurrency))
        if p.target == "proxy-hit" and ceiling and ceiling.rps:
            ratio = p.rps / ceiling.rps
            ratios.append(ratio)
            verdict = "ok" if ratio >= 0.5 else "BELOW target"
            print(
                f"hit/fixed req/s, workers {p.workers}, concurrency {p.concurrency:>2}: "
                f"{p.rps:8.1f} / {ceiling.rps:8.1f} = {ratio:.2f} ({verdict}, target >= 0.5)"
            )
    if ratios:
        gm = statistics.geometric_mean(ratios)
        print(f"hit/fixed req/s, geometric mean over {len(ratios)} pairs: {gm:.2f}")
    for p in phases:
        if p.target == "overload":
            fast = sorted(p.ms_503) or [0.0]
            print(
                f"overload, workers {p.workers}: {len(p.ms_503)} of {p.requests} answered 503 in "
                f"p50 {percentile(fast, 50):.0f} ms / max {fast[-1]:.0f} ms (other outcomes: {p.errors})"
            )


def parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def make_plan(args: argparse.Namespace) -> BenchPlan:
    wrk = shutil.which("wrk") is not None
    if args.generator == "wrk" and not wrk:
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install wrk)")
    hit, miss = (Limits(300, 2), Limits(20, 5)) if args.quick else (Limits(4000, 8), Limits(300, 20))
    return BenchPlan(
        parse_ints(args.workers), parse_ints(args.concurrency), hit, miss, use_wrk=wrk and args.generator != "httpx"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts (default 1,2)")
    parser.add_argument("--concurrency", default="1,4,16", help="client connections (default 1,4,16)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="hit-path load generator; auto: wrk when installed (misses always use httpx)",
    )
    args = parser.parse_args(argv)
    if not (CORPUS / "photos").is_dir():
        print(f"corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS)", file=sys.stderr)
        return 2
    bench = make_plan(args)
    start_load = os.getloadavg()[0]
    hit_gen = "wrk (1 thread)" if bench.use_wrk else "python asyncio+httpx"
    print(
        f"http_bench: {os.cpu_count()} CPU cores shared by server(s) AND load generator; "
        f"hits and fixed app: {hit_gen}, misses: python asyncio+httpx. Absolute req/s are lower bounds "
        f"for this machine; compare the ratios."
    )
    print(
        f"limits per phase: hits {bench.hit.requests} requests or {bench.hit.seconds:g} s; "
        f"misses {bench.miss.requests} requests or {bench.miss.seconds:g} s (or until distinct variants run out)"
    )
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="resize-proxy-bench-") as tmp:
        for workers in bench.workers:
            print(f"workers={workers}: hit path and fixed app ...", flush=True)
            phases += hit_phases(bench, workers, Path(tmp))
            for c in bench.concurrency:
                print(f"workers={workers}: miss path, concurrency {c} (fresh server) ...", flush=True)
                phases.append(miss_phase(bench, workers, c, Path(tmp)))
            print(f"workers={workers}: 16 concurrent misses on the 8-9 MP photos, from the originals ...", flush=True)
            phases.append(
                miss_phase(
                    bench, workers, 16, Path(tmp), "miss-8mp", LARGEST, min_width=1440, formats=("webp", "jpeg", "avif")
                )
            )
            print(f"workers={workers}: overload: 32 concurrent misses, render queue of 4 ...", flush=True)
            phases.append(miss_phase(bench, workers, 32, Path(tmp), "overload", render={"max_queue": 4}))
    print()
    print_phases(phases)
    print()
    print_ratios(phases)
    print(f"machine load (1-min load average): {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
