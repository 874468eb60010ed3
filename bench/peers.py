"""Side by side on loopback: resize-proxy vs IPX (npm ipx@3: sharp/libvips) vs thumbor (PyPI: Pillow).

Why: our own benchmarks compare the service with itself or with a naive
Pillow pipeline; whether it is fast enough is a question about the tools an
operator would otherwise deploy. So this script runs the three servers on the
same machine in the same run, on the same camera JPEGs, with the same
requests: misses (every request a WebP rendition not rendered before) at 4 and
16 connections, and a hit (one rendition repeated) at 4 connections. Three miss
workloads (`--workloads`):
- `mixed`: the corpus's 12 photos x widths 240-640, q80;
- `400`: every photo (the corpus's and the large ones below) at 400 px, q70-90:
  where working copies help;
- `1600`: the 8-12 MP photos only at 1600 px, q70-90: where they cannot (the
  output is larger than every working copy), so the decode of the original is paid.
The corpus has two 8-12 MP photos; so that the large workloads have enough distinct
originals, the script makes nine more from each (mirrored or not, re-encoded at
q91-99 without metadata: new bytes, same content and cost) in the scratch folder,
which all servers read. Absolute req/s depend on the machine; the ratios printed at
the end are the figures to watch. Memory: peak summed RSS and peak PSS of each
server's process tree (PSS counts pages shared between processes once).

Optional and never run by CI or `make test`: it installs the peers into a
scratch folder (`npm install ipx@3`, and a separate venv with `pip install
thumbor`) and skips a peer, saying why, when that fails. Every server is a
subprocess bound to 127.0.0.1, every phase is bounded by a request count and a
time limit, and everything started is stopped. The building blocks are shared:
starting, polling and stopping servers and uploading come from the tests'
helpers (tests/support), the load generators and RSS sampling from http_bench.py.

Usage: python bench/peers.py [--quick] [--rounds N] [--scratch DIR] [--only ours,ipx,thumbor]
                             [--workloads mixed,400,1600]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

# The tests' helpers (support.*) serve the benchmarks too; the imports below this line may come from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx
from http_bench import (
    HIT_PHOTO,
    REQUEST_TIMEOUT_S,
    SEED,
    Limits,
    Phase,
    measure,
    proxy_server,
    run_httpx,
    run_wrk,
)
from PIL import Image

from proxy.config import EncoderSettings, RenderSettings
from support.corpus import CORPUS, REPO
from support.processes import HttpProcess
from support.servers import TEST_TOKEN
from support.uploads import upload_files

PHOTOS = CORPUS / "photos"
# Every width is on our allow-list and below every photo's width, so 12 photos x 6 widths are 72 distinct outputs.
WIDTHS = (240, 320, 400, 480, 560, 640)
QUALITY = 80
LARGE_QUALITIES = (70, 75, 80, 85, 90)  # the 400 and 1600 workloads: five per photo, all on our allow-list
LARGE_MP = 8.0  # the 1600 workload's photos: at least this many megapixels
COPIES = 9  # extra originals made from each large corpus photo
WARM_WIDTH = 160  # warm-up requests use a width outside the measured set: they never pre-render a miss
HIT_NAME, HIT_WIDTH = HIT_PHOTO.removeprefix("photos/"), 480  # http_bench's hit variant
CHECK_PHOTO = "orientation_6.jpg"  # EXIF orientation 6: shows which servers apply it (upright output is landscape)
NAMES = ("ours", "ipx", "thumbor")
# The figures for the peers on a 2-core machine, mixed real-photo misses, widths 300-500, WebP q80.
REFERENCE = "IPX ~52 req/s, thumbor ~46 req/s (2 processes)"
# Ours / IPX miss req/s per workload, with peak PSS no higher than IPX's (the issues' targets).
TARGET_RATIOS = {"mixed": 1.5, "400": 2.0, "1600": 1.5}
WORKLOADS = tuple(TARGET_RATIOS)
INSTALL_TIMEOUT_S = 600

# IPX's node API behind a bare node:http server on 127.0.0.1, with a /healthz of its own so that
# readiness polling renders nothing. Written into the scratch folder, next to node_modules.
IPX_SERVER_JS = """\
const http = require("node:http");
const { createIPX, ipxFSStorage, createIPXNodeServer } = require("ipx");
const [dir, port] = process.argv.slice(2);
const handler = createIPXNodeServer(createIPX({ storage: ipxFSStorage({ dir }) }));
http.createServer((req, res) => (req.url === "/healthz" ? res.end("ok") : handler(req, res)))
  .listen(Number(port), "127.0.0.1");
"""


@dataclass(frozen=True)
class Variant:
    """One requested output: a photo (file name in the bench's photo folder) at a width and quality, WebP."""

    photo: str
    width: int
    quality: int = QUALITY


@dataclass(frozen=True)
class Workload:
    """A miss phase's requests, and the photos a server must hold for them."""

    name: str
    variants: list[Variant]

    @property
    def photos(self) -> list[str]:
        return sorted({v.photo for v in self.variants})


PathOf = Callable[[Variant], str]
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """One server kind at one process count: how to start it and how it spells a variant as a URL path."""

    name: str
    processes: int
    make_server: Callable[[Path, bool], HttpProcess]  # (fresh folder, keep rendered results?) -> a stopped server
    prepare: Callable[[HttpProcess, list[str]], PathOf]  # once the server answers (ours uploads these photos here)
    hit_kind: str  # what a repeated request costs this target

    @property
    def label(self) -> str:
        return f"{self.name} x{self.processes}"


@dataclass(frozen=True)
class Plan:
    rounds: int
    concurrency: tuple[int, ...]
    workloads: tuple[Workload, ...]
    miss: Limits
    hit: Limits
    use_wrk: bool


# --------------------------------------------------------------------------- installing the peers


def run_step(cmd: list[str], cwd: Path, log: Path) -> bool:
    """Run an install step with its output in `log`; on failure print the log's tail, so the skip says why."""
    with log.open("ab") as out:
        try:
            ok = (
                subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.write(f"\n{exc}\n".encode())
            ok = False
    if not ok:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        print(f"  failed: {' '.join(cmd)} (log: {log})\n{tail}")
    return ok


def install_ipx(scratch: Path) -> Path | None:
    """`npm install ipx@3` into scratch/ipx unless there already; the folder holding its server script, or None.

    sharp arrives as prebuilt libvips binaries inside npm packages (@img/sharp-*),
    so nothing is fetched from outside the npm registry.
    """
    if not (shutil.which("node") and shutil.which("npm")):
        print("  ipx: skipped, node/npm not installed (apt-get install nodejs npm)")
        return None
    folder = scratch / "ipx"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "node_modules" / "ipx" / "package.json"
    if not manifest.exists():
        if not (folder / "package.json").exists():
            (folder / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        print(f"  ipx: npm install ipx@3 in {folder} ...", flush=True)
        if not run_step(["npm", "install", "--no-audit", "--no-fund", "ipx@3"], folder, scratch / "ipx-install.log"):
            print("  ipx: skipped, npm install failed")
            return None
    version = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    probe = subprocess.run(
        ["node", "-p", "const v = require('sharp').versions; `sharp ${v.sharp}, libvips ${v.vips}`"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if not version.startswith("3.") or probe.returncode != 0:
        print(f"  ipx: skipped, ipx {version} (want 3.x) or sharp does not load:\n{probe.stderr[-1500:]}")
        return None
    (folder / "ipx_server.cjs").write_text(IPX_SERVER_JS, encoding="utf-8")
    print(f"  ipx: ipx {version}, {probe.stdout.strip()} (node {node_version()})")
    return folder


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()


def install_thumbor(scratch: Path) -> Path | None:
    """A separate venv with `pip install thumbor` unless there already; its thumbor executable, or None.

    Separate because thumbor pins its own Pillow and tornado, which must not
    touch the project's environment.
    """
    venv = scratch / "thumbor-venv"
    exe = venv / "bin" / "thumbor"
    if not exe.exists():
        print(f"  thumbor: venv + pip install thumbor in {venv} ...", flush=True)
        log = scratch / "thumbor-install.log"
        if not (
            run_step([sys.executable, "-m", "venv", str(venv)], scratch, log)
            and run_step([str(venv / "bin" / "pip"), "install", "thumbor"], scratch, log)
        ):
            print(
                "  thumbor: skipped, install failed (if pycurl failed to build: apt-get update && "
                "apt-get install -y libcurl4-openssl-dev libssl-dev, or pin an older thumbor)"
            )
            return None
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import thumbor, PIL; print(f'thumbor {thumbor.__version__}, Pillow {PIL.__version__}')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        print(f"  thumbor: skipped, it does not import:\n{probe.stderr[-1500:]}")
        return None
    print(f"  thumbor: {probe.stdout.strip()}")
    return exe


# --------------------------------------------------------------------------- the three targets


def ours_targets(photos: Path, large_only: bool) -> list[Target]:
    """The service as deployed (default settings, a fresh data folder per server), and once without working copies.

    By default an upload also stores downscaled working copies, and a miss
    renders from the smallest that contains the output: the peers have no
    upload step and decode the original on every miss. "ours-orig" turns the
    working copies off, so its misses decode the original too: the like-for-like
    render figure next to the as-deployed one.
    """
    kept = "served from its memory cache"
    upload = uploader(photos)
    return [
        Target("ours", 1, ours_server(1), upload, kept),
        Target("ours", 2, ours_server(2), upload, kept),
        *([] if large_only else [Target("ours-orig", 1, ours_server(1, {"working_sizes": []}), upload, kept)]),
    ]


def ours_server(workers: int, render: dict[str, Any] | None = None) -> Callable[[Path, bool], HttpProcess]:
    """http_bench's proxy_server; it always keeps what it renders, so `keep` changes nothing."""

    def make(folder: Path, _keep: bool) -> HttpProcess:
        return proxy_server(folder, workers, render)

    return make


def uploader(photos: Path) -> Callable[[HttpProcess, list[str]], PathOf]:
    """Ours' prepare step: upload the named photos from `photos` (not part of any timed phase, but printed)
    and spell variants by the ids the service returns."""

    def upload_all(server: HttpProcess, names: list[str]) -> PathOf:
        start = time.perf_counter()
        with httpx.Client(base_url=server.url, timeout=120) as client:
            uploaded = upload_files(client, photos, names, token=TEST_TOKEN)
        print(f"    upload of {len(uploaded)} photos: {time.perf_counter() - start:.2f} s", flush=True)
        ids = {name: doc["id"] for name, doc in uploaded.items()}
        return lambda v: f"/img/{ids[v.photo]}?w={v.width}&fmt=webp&q={v.quality}"

    return upload_all


def ipx_targets(folder: Path, photos: Path) -> list[Target]:
    """One node process (libvips threads inside it): IPX has no multi-process mode of its own."""
    renders = "a re-render (IPX keeps no results)"
    return [Target("ipx", 1, ipx_server(folder, photos), lambda _server, _names: ipx_path, renders)]


def ipx_server(folder: Path, photos: Path = PHOTOS) -> Callable[[Path, bool], HttpProcess]:
    """The server script written by install_ipx; IPX keeps no results, so `keep` changes nothing."""

    def make(data: Path, _keep: bool) -> HttpProcess:
        data.mkdir(parents=True, exist_ok=True)
        return HttpProcess(
            "ipx",
            lambda port: ["node", str(folder / "ipx_server.cjs"), str(photos), str(port)],
            data / "ipx.log",
            "/healthz",
            cwd=REPO,
        )

    return make


def ipx_path(v: Variant) -> str:
    return f"/w_{v.width},f_webp,q_{v.quality}/{v.photo}"


def thumbor_targets(exe: Path, photos: Path) -> list[Target]:
    """thumbor with its file loader on the photos; result storage only for the hit phase (`keep`)."""
    return [
        Target(
            "thumbor",
            n,
            thumbor_server(exe, n, photos),
            lambda _server, _names: thumbor_path,
            "served from its file result storage",
        )
        for n in (1, 2)
    ]


def thumbor_server(exe: Path, processes: int, photos: Path) -> Callable[[Path, bool], HttpProcess]:
    """`--processes N` forks N servers on one socket; the conf file lives in the server's fresh folder."""

    def make(data: Path, keep: bool) -> HttpProcess:
        data.mkdir(parents=True, exist_ok=True)
        conf = data / "thumbor.conf"
        conf.write_text(thumbor_conf(data, keep, photos), encoding="utf-8")
        return HttpProcess(
            "thumbor",
            lambda port: [
                str(exe),
                "--port",
                str(port),
                "--ip",
                "127.0.0.1",
                "-c",
                str(conf),
                "--processes",
                str(processes),
            ],
            data / "thumbor.log",
            "/healthcheck",
            cwd=REPO,
        )

    return make


def thumbor_path(v: Variant) -> str:
    """Width only (height 0: from the aspect), WebP at q80 through filters: thumbor's spelling of ours' w=&fmt=&q=."""
    return f"/unsafe/{v.width}x0/filters:format(webp):quality({v.quality})/{v.photo}"


def thumbor_conf(data: Path, keep_results: bool, photos: Path) -> str:
    """File loader on the corpus, no original storage (the file is already local), unsafe URLs on."""
    lines = [
        "LOADER = 'thumbor.loaders.file_loader'",
        f"FILE_LOADER_ROOT_PATH = {str(photos)!r}",
        "STORAGE = 'thumbor.storages.no_storage'",
        "ALLOW_UNSAFE_URL = True",
    ]
    if keep_results:
        lines += [
            "RESULT_STORAGE = 'thumbor.result_storages.file_storage'",
            "RESULT_STORAGE_STORES_UNSAFE = True",
            f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {str(data / 'results')!r}",
        ]
    else:
        lines.append("RESULT_STORAGE = None")
    return "\n".join(lines) + "\n"


def targets(only: set[str], scratch: Path, photos: Path, large_only: bool) -> list[Target]:
    """The targets asked for, peers installed on the way (a peer that cannot be installed is left out).
    `large_only`: only the 400/1600 workloads run, which the issue states against IPX for ours as
    deployed; ours-orig (working copies off) is then left out."""
    found = ours_targets(photos, large_only) if "ours" in only else []
    if "ipx" in only and (folder := install_ipx(scratch)):
        found += ipx_targets(folder, photos)
    if "thumbor" in only and (exe := install_thumbor(scratch)):
        found += thumbor_targets(exe, photos)
    return found


# --------------------------------------------------------------------------- phases


def make_bench_photos(scratch: Path) -> Path:
    """scratch/photos: the corpus photos (links) and COPIES more of each 8-12 MP one (made once, then kept).

    A copy is mirrored (odd numbers) and re-encoded at q91-99, 4:2:0, without metadata: its bytes
    and pixels are new, so every server decodes it afresh, and its cost is the original's."""
    folder = scratch / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(PHOTOS.glob("*.jpg")):
        link = folder / source.name
        if not link.exists():
            link.symlink_to(source)
        missing = [k for k in range(1, COPIES + 1) if not (folder / f"{source.stem}-copy{k}.jpg").exists()]
        if not (missing and is_large(source)):
            continue
        with Image.open(source) as im:
            pixels_once = im.convert("RGB")  # decoded once for all its copies
        for k in missing:
            copy = folder / f"{source.stem}-copy{k}.jpg"
            pixels = pixels_once.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if k % 2 else pixels_once
            pixels.save(copy.with_suffix(".tmp"), "JPEG", quality=90 + k, subsampling=2)
            copy.with_suffix(".tmp").rename(copy)
    return folder


def is_large(path: Path) -> bool:
    """At least LARGE_MP megapixels (read from the header: nothing is decoded)."""
    with Image.open(path) as im:
        return im.width * im.height >= LARGE_MP * 1e6


def corpus_names() -> list[str]:
    return sorted(p.name for p in PHOTOS.glob("*.jpg"))


def large_names(photos: Path) -> list[str]:
    """The bench folder's 8-12 MP photos (the corpus's and their copies)."""
    return [path.name for path in sorted(photos.glob("*.jpg")) if is_large(path)]


def workload(name: str, photos: Path) -> Workload:
    """The requests of a miss workload (see the module's doc), in a fixed shuffled order, so each stretch of
    requests mixes photos (and, for `mixed`, 2 and 9 MP ones)."""
    if name == "mixed":
        work = [Variant(photo, w) for photo in corpus_names() for w in WIDTHS]
    else:
        names = large_names(photos) if name == "1600" else sorted({*corpus_names(), *large_names(photos)})
        work = [Variant(photo, int(name), q) for photo in names for q in LARGE_QUALITIES]
    random.Random(SEED).shuffle(work)
    return Workload(name, work)


def warm_up(server: HttpProcess, path: str) -> None:
    """A few requests on fresh connections before timing: lazy imports, sharp's loading, thumbor's first request."""
    for _ in range(4):
        httpx.get(server.url + path, timeout=REQUEST_TIMEOUT_S).raise_for_status()


def miss_phase(target: Target, work: Workload, concurrency: int, plan: Plan, tmp: Path, round_no: int) -> Phase:
    """A fresh server per phase: no variant exists yet, and peak memory starts from a new process tree."""
    folder = tmp / f"{target.name}{target.processes}-{work.name}-c{concurrency}-r{round_no}"
    with target.make_server(folder, False) as server:
        path_of = target.prepare(server, sorted({*work.photos, HIT_NAME}))
        warm_up(server, path_of(Variant(HIT_NAME, WARM_WIDTH)))
        paths = [path_of(v) for v in work.variants]
        limits = Limits(min(plan.miss.requests, len(paths)), plan.miss.seconds)
        phase = measure(
            server,
            lambda: run_httpx(server.url, paths, concurrency, limits),
            target.name,
            target.processes,
            concurrency,
        )
    phase.note = f"{work.name} r{round_no}"
    return phase


def hit_phase(target: Target, plan: Plan, tmp: Path) -> tuple[Phase, list[str]]:
    """One rendition repeated at 4 connections; also what each server answers for two check variants."""
    folder = tmp / f"{target.name}{target.processes}-hit"
    with target.make_server(folder, True) as server:
        path_of = target.prepare(server, sorted({HIT_NAME, CHECK_PHOTO}))
        path = path_of(Variant(HIT_NAME, HIT_WIDTH))
        warm_up(server, path)
        time.sleep(0.5)  # thumbor writes its result storage after answering
        checks = [describe(server, path), describe(server, path_of(Variant(CHECK_PHOTO, 400)))]
        phase = measure(server, lambda: drive_hits(server.url, path, plan), target.name, target.processes, 4)
    phase.note = f"hit: {target.hit_kind}"
    return phase, checks


def drive_hits(base: str, path: str, plan: Plan) -> Phase:
    """wrk when installed: ours answers hits faster than a Python client can ask."""
    if plan.use_wrk:
        return run_wrk(base + path, 4, plan.hit)
    return run_httpx(base, itertools.repeat(path), 4, plan.hit)


def describe(server: HttpProcess, path: str) -> str:
    """Bytes, format and pixel size of one answer: the outputs compared must be alike for req/s to compare."""
    r = httpx.get(server.url + path, timeout=REQUEST_TIMEOUT_S)
    if r.status_code != 200:
        return f"{path}: HTTP {r.status_code}"
    with Image.open(BytesIO(r.content)) as image:
        return f"{image.format} {image.width}x{image.height} {len(r.content) / 1024:.1f} KB"


# --------------------------------------------------------------------------- running and reporting


@dataclass(frozen=True)
class Result:
    target: Target
    kind: str  # miss-<workload> | hit
    phase: Phase


def attempt(what: str, run: Callable[[], T]) -> T | None:
    """One phase; a server that fails to start or answers badly loses that phase, not the whole run."""
    try:
        return run()
    except (RuntimeError, AssertionError, httpx.HTTPError, OSError) as exc:  # AssertionError: an upload refused
        print(f"    {what}: FAILED: {exc}", flush=True)
        return None


def run_all(found: list[Target], plan: Plan, tmp: Path) -> list[Result]:
    """Misses interleaved round by round (each round starting with the next target), then the hits.

    Interleaving puts every target's phases next to the others', so load from
    elsewhere on a shared machine lands on all of them alike.
    """
    results = []
    for round_no in range(1, plan.rounds + 1):
        shift = (round_no - 1) % len(found)
        for work in plan.workloads:
            for c in plan.concurrency:
                for target in found[shift:] + found[:shift]:
                    if work.name != "mixed" and target.name == "ours-orig":
                        continue
                    print(f"  round {round_no}: {target.label} {work.name} miss c{c} (fresh server) ...", flush=True)
                    phase = attempt(target.label, lambda: miss_phase(target, work, c, plan, tmp, round_no))
                    if phase:
                        results.append(Result(target, f"miss-{work.name}", phase))
    for target in found:
        print(f"  {target.label} hit c4 ...", flush=True)
        outcome = attempt(target.label, lambda: hit_phase(target, plan, tmp))
        if outcome:
            phase, checks = outcome
            print(f"    {target.label} answers {HIT_NAME} w{HIT_WIDTH}: {checks[0]}; {CHECK_PHOTO} w400: {checks[1]}")
            results.append(Result(target, "hit", phase))
    return results


def print_rows(results: list[Result]) -> None:
    print(
        f"{'target':<12} {'load':<10} {'conc':>4} {'gen':<5} {'reqs':>5} {'secs':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'errors':<10} {'peak RSS MB':>11} {'peak PSS MB':>11}  note"
    )
    for r in results:
        p = r.phase
        tiers = ",".join(f"{k}:{v}" for k, v in sorted(p.tiers.items()) if k != "-")
        print(
            f"{r.target.label:<12} {r.kind:<10} {p.concurrency:>4} {p.generator:<5} {p.requests:>5} {p.seconds:>6.2f} "
            f"{p.rps:>8.1f} {p.p50_ms:>8.1f} {p.p99_ms:>8.1f} {p.errors:<10} {p.peak_rss_mb:>11.1f} "
            f"{p.peak_pss_mb:>11.1f}  "
            f"{' '.join(x for x in (p.note, tiers) if x)}"
        )


@dataclass(frozen=True)
class Summary:
    """A target's phases of one load and concurrency over the rounds: medians, summed errors, the largest peak."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: str
    peak_rss_mb: float
    peak_pss_mb: float
    rounds: int


def summarize(results: list[Result]) -> dict[tuple[str, str, int], Summary]:
    groups: dict[tuple[str, str, int], list[Phase]] = {}
    for r in results:
        groups.setdefault((r.target.label, r.kind, r.phase.concurrency), []).append(r.phase)
    summary = {}
    for key, phases in groups.items():
        merged = Phase("", 0, 0, "")
        for p in phases:
            merged.statuses.update(p.statuses)
        summary[key] = Summary(
            statistics.median(p.rps for p in phases),
            statistics.median(p.p50_ms for p in phases),
            statistics.median(p.p99_ms for p in phases),
            merged.errors,
            max(p.peak_rss_mb for p in phases),
            max(p.peak_pss_mb for p in phases),
            len(phases),
        )
    return summary


def print_summary(summary: dict[tuple[str, str, int], Summary]) -> None:
    print(
        f"{'target':<12} {'load':<10} {'conc':>4} {'rounds':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':<10} {'peak RSS MB':>11} {'peak PSS MB':>11}   (medians over rounds; errors summed; "
        "memory: the largest peak)"
    )
    for (label, kind, c), s in summary.items():
        print(
            f"{label:<12} {kind:<10} {c:>4} {s.rounds:>6} {s.rps:>8.1f} {s.p50_ms:>8.1f} {s.p99_ms:>8.1f} "
            f"{s.errors:<10} {s.peak_rss_mb:>11.1f} {s.peak_pss_mb:>11.1f}"
        )


def print_ratios(summary: dict[tuple[str, str, int], Summary], plan: Plan) -> None:
    """Ours against each peer per workload and concurrency; the IPX pairs are judged against the issues' targets
    (req/s ratio, and peak PSS of ours' process tree no higher than IPX's)."""
    pairs = [
        ("ours x1", "ipx x1"),
        ("ours x2", "ipx x1"),
        ("ours-orig x1", "ipx x1"),
        ("ours x1", "thumbor x1"),
        ("ours x2", "thumbor x2"),
        ("ours-orig x1", "thumbor x1"),
    ]
    for work in plan.workloads:
        kind = f"miss-{work.name}"
        for c in plan.concurrency:
            for ours, peer in pairs:
                a, b = summary.get((ours, kind, c)), summary.get((peer, kind, c))
                if not (a and b and b.rps):
                    continue
                ratio = a.rps / b.rps
                verdict = ""
                if peer.startswith("ipx"):
                    wanted = TARGET_RATIOS[work.name]
                    problems = [f"req/s below {wanted}x"] if ratio < wanted else []
                    if a.peak_pss_mb > b.peak_pss_mb:
                        problems.append("peak PSS above IPX's")
                    verdict = f"  [target {wanted}x: {'MISSED: ' + '; '.join(problems) if problems else 'met'}]"
                print(
                    f"{work.name:>5} c{c:<2} {ours:<12} / {peer:<10}: {a.rps:6.1f} / {b.rps:6.1f} req/s = "
                    f"{ratio:4.2f}x;  peak PSS {a.peak_pss_mb:6.1f} vs {b.peak_pss_mb:6.1f} MB "
                    f"(RSS {a.peak_rss_mb:.0f} vs {b.peak_rss_mb:.0f}){verdict}"
                )


def make_plan(args: argparse.Namespace, names: list[str], photos: Path) -> Plan:
    quick = args.quick
    return Plan(
        rounds=args.rounds or (1 if quick else 5),
        concurrency=(4, 16),
        workloads=tuple(workload(name, photos) for name in names),
        miss=Limits(12, 5) if quick else Limits(10_000, 30),
        hit=Limits(100, 2) if quick else Limits(2000, 8),
        use_wrk=shutil.which("wrk") is not None,
    )


def print_header(plan: Plan, photos: Path) -> None:
    print(
        f"peers: {os.cpu_count()} CPU cores shared by the servers AND the load generator; loopback only. "
        f"Misses: python asyncio+httpx; hits: {'wrk (1 thread)' if plan.use_wrk else 'python asyncio+httpx'}."
    )
    print(
        f"photos in {photos} (the corpus's, and {COPIES} copies of each >= {LARGE_MP:g} MP one); "
        f"miss phases: every variant once or {plan.miss.seconds:g} s, fresh server each, {plan.rounds} round(s):"
    )
    for work in plan.workloads:
        widths = sorted({v.width for v in work.variants})
        qualities = sorted({v.quality for v in work.variants})
        print(
            f"  {work.name}: {len(work.photos)} photos x widths {','.join(map(str, widths))} x WebP q "
            f"{','.join(map(str, qualities))} = {len(work.variants)} variants, shuffled"
        )
    print(f"hit: {HIT_PHOTO} w{HIT_WIDTH} at c4, {plan.hit.requests} requests or {plan.hit.seconds:g} s")
    print(
        f"encoders at their defaults: ours WebP method {EncoderSettings().webp_method}; sharp (IPX) effort 4; "
        f"Pillow (thumbor) method 4. IPX and thumbor (RESPECT_ORIENTATION off) ignore EXIF orientation."
    )
    sizes = "/".join(map(str, RenderSettings().working_sizes))
    print(
        f"ours stores working copies (long sides {sizes}) at upload, outside the timed misses, and renders "
        "misses from them; ours-orig turns them off, so its misses decode the original like the peers' do."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts and one round: a smoke run")
    parser.add_argument("--rounds", type=int, default=0, help="miss rounds per target (default 5, --quick 1)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path("/tmp/resize-proxy-peers"),
        help="where the peers are installed (default /tmp/resize-proxy-peers)",
    )
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated subset of ours,ipx,thumbor")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}"
    )
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only or only - set(NAMES):
        parser.error(f"--only takes names from {','.join(NAMES)}")
    names = [name.strip() for name in args.workloads.split(",") if name.strip()]
    if not names or set(names) - set(WORKLOADS):
        parser.error(f"--workloads takes names from {','.join(WORKLOADS)}")
    if not PHOTOS.is_dir():
        print(f"corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS)", file=sys.stderr)
        return 2
    args.scratch.mkdir(parents=True, exist_ok=True)
    photos = make_bench_photos(args.scratch)
    plan = make_plan(args, names, photos)
    start_load = os.getloadavg()[0]
    print_header(plan, photos)
    print(f"peers in {args.scratch}:")
    found = targets(only, args.scratch, photos, "mixed" not in names)
    if not found:
        print("nothing to run", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="resize-proxy-peers-") as tmp:
        results = run_all(found, plan, Path(tmp))
    print()
    print_rows(results)
    print()
    summary = summarize(results)
    print_summary(summary)
    print()
    print(
        f"reference (the issue, 2 cores): {REFERENCE}; targets: ours >= "
        f"{', '.join(f'{r}x ({w})' for w, r in TARGET_RATIOS.items())} IPX miss req/s with peak PSS no higher "
        "than IPX's"
    )
    print_ratios(summary, plan)
    print(f"machine load (1-min load average): {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
