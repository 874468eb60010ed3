"""Bytes at equal quality: our variants against IPX's and against our previous settings, and q=auto.

What it measures, per photo, output width and format (WebP, JPEG, AVIF): a quality sweep
per server, each output's bytes and its SSIM on luma (proxy.imaging.quality) against a
reference made the slow, exact way (full decode, EXIF orientation, ICC to sRGB, one
LANCZOS resize: support.images.reference). Two servers are then compared by the bytes
they need for the same SSIM: a Bjontegaard-style average of the log-bytes gap over the
SSIM range both sweeps cover (SSIM as decibels, -10 log10(1 - SSIM), so the top of the
range is not squeezed), as a ratio: 0.90x means 10% fewer bytes for the same look.
The ratio per format is the geometric mean over photos and widths.

Servers:
- `ours`: this tree's render path as a miss runs it (sanitize and working copies as at
  upload, then the working copy or original that proxy.imaging.working picks, render());
- `before`: the same calls on the code of an earlier revision (`--baseline`, default the
  commit before issue 19), extracted with `git archive` into a temporary folder;
- `ipx`: IPX 3 (sharp/libvips) over HTTP, installed like bench/peers.py does (optional:
  skipped when node/npm are missing or with `--no-ipx`). IPX ignores EXIF orientation, so
  for a photo stored sideways it is asked for the transposed size and its output is turned
  upright before scoring (a lossless transpose).

`ours` and `before` run as two worker processes fed request by request in alternation, so
machine load lands on both alike; render time per variant (median of `--runs`) is measured
inside the workers at the default quality. q=auto (`ours` only): bytes and SSIM against q80,
and each output's SSIM against the pixels it was encoded from (the PNG variant of the same
geometry), which is what the target bounds.

Usage: python bench/quality.py [--only GLOB] [--widths 400,1080] [--formats webp,jpeg,avif]
                               [--baseline REV] [--no-ipx] [--runs N] [--scratch DIR] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The tests' helpers (support.*) serve the benchmarks too; the imports below this line may come from there. The
# scoring code (proxy.imaging.quality) is this tree's, whichever tree a worker renders with.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(_ROOT / "tests")] + ([] if "--worker" in sys.argv else [str(_ROOT)])

import httpx
import numpy as np
from PIL import Image

from support.corpus import CORPUS, REPO
from support.images import reference

BASELINE = "57530c3"  # main before issue 19: working copies, encoder settings and colour path as they were
# The corpus's distinct scenes: orientation_2..5, 7 and 8 are orientation_1's scene again
# (kept: 1 and 6, stored sideways).
PHOTOS = (
    "canon_sx60_orientation6.jpg",
    "nokia_8.3_5g_gps_9mp.jpg",
    "orientation_1.jpg",
    "orientation_6.jpg",
    "reconyx_trailcam.jpg",
    "sony_hdr-as300_gps_8mp_mpo.jpg",
)
WIDTHS = (400, 1080)
FORMATS = ("webp", "jpeg", "avif")
SWEEP = (20, 30, 40, 50, 60, 70, 80, 90, 95)  # the same q values for every server; BD needs only overlap
FIXED = 80  # what q=auto is judged against
TARGETS = {"webp": 0.90, "jpeg": 0.90, "avif": 1.0}  # ours / IPX bytes at equal SSIM, at most
AUTO_SAVING = 0.20  # q=auto: at least this much smaller than q80, at equal or better mean SSIM
IPX_TIMEOUT_S = 120


# --------------------------------------------------------------------------- the worker (runs on one code tree)


def worker() -> int:
    """Answer render requests, one JSON line each, with the `proxy` package found first on PYTHONPATH.

    Uses only calls that every revision measured has: sanitize, make_working_copies,
    from_working_copy, plan, RenderJob, render. q "auto" (a tree with q=auto) renders with
    the configured target.
    """
    import dataclasses

    from proxy.config import EncoderSettings, LimitSettings, SanitizeSettings
    from proxy.imaging.decode import configure_pillow
    from proxy.imaging.geometry import plan
    from proxy.imaging.render import RenderJob, default_quality, render
    from proxy.imaging.sanitize import sanitize
    from proxy.imaging.working import from_working_copy, make_working_copies

    configure_pillow(LimitSettings().max_pixels)
    uploads: dict[str, Any] = {}
    encoders = EncoderSettings(**json.loads(os.environ.get("QUALITY_BENCH_ENCODERS", "{}")))
    auto = (
        {"target": getattr(encoders, "auto_target", None)}
        if "target" in {f.name for f in dataclasses.fields(RenderJob)}
        else None
    )
    for line in sys.stdin:
        ask = json.loads(line)
        if ask["photo"] not in uploads:
            clean = sanitize((CORPUS / "photos" / ask["photo"]).read_bytes(), SanitizeSettings(), LimitSettings())
            uploads[ask["photo"]] = (clean, make_working_copies(clean.data, (480, 800, 1280)))
        clean, work = uploads[ask["photo"]]
        g = plan(clean.width, clean.height, ask["width"], None, "inside")
        found = from_working_copy(g, (clean.width, clean.height), tuple((w.width, w.height) for w in work))
        source, geometry = (work[found[0]].data, found[1]) if found else (clean.data, g)
        q, extra = ask["q"], {}
        if q == "auto":
            if auto is None:
                print(json.dumps({"error": "this tree has no q=auto"}), flush=True)
                continue
            q, extra = default_quality(encoders, ask["fmt"]), auto
        job = RenderJob(geometry, ask["fmt"], q, (255, 255, 255), encoders, **extra)
        times = []
        for _ in range(max(1, ask["runs"])):
            started = time.perf_counter()
            body = render(source, job)
            times.append((time.perf_counter() - started) * 1000)
        print(
            json.dumps(
                {"size": [g.width, g.height], "ms": statistics.median(times), "body": base64.b64encode(body).decode()}
            ),
            flush=True,
        )
    return 0


class Worker:
    """A worker process on one code tree."""

    def __init__(self, name: str, tree: Path, encoders: dict[str, Any] | None = None) -> None:
        self.name = name
        env = os.environ | {
            "PYTHONPATH": str(tree),
            "RESIZE_PROXY_CORPUS": str(CORPUS),
            "QUALITY_BENCH_ENCODERS": json.dumps(encoders or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=tree,
            text=True,
        )

    def render(self, photo: str, width: int, fmt: str, q: int | str, runs: int = 1) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"photo": photo, "width": width, "fmt": fmt, "q": q, "runs": runs}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"error": "worker died"}')
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        answer["body"] = base64.b64decode(answer["body"])
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def extract(rev: str, into: Path) -> Path:
    """The `proxy` package of revision `rev`, unpacked under `into` (git archive: the repository is only read)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "proxy"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


# --------------------------------------------------------------------------- IPX


class Ipx:
    """IPX over HTTP on loopback, asked as its users spell a resize: /w_400,f_webp,q_80/<photo>."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=IPX_TIMEOUT_S)

    def render(self, photo: str, size: tuple[int, int], fmt: str, q: int) -> bytes:
        """Upright output of `size`; IPX reads the stored pixels, so a sideways photo is asked for its height."""
        turn = orientation(photo)
        side = f"h_{size[0]}" if turn >= 5 else f"w_{size[0]}"
        r = self.client.get(f"{self.url}/{side},f_{fmt},q_{q}/{photo}")
        r.raise_for_status()
        return r.content


def orientation(photo: str) -> int:
    with Image.open(CORPUS / "photos" / photo) as im:
        value = im.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def ipx_server(scratch: Path, log: Path) -> Any | None:
    """The IPX server bench/peers.py installs and runs (None when it cannot be installed)."""
    from peers import install_ipx
    from peers import ipx_server as make_ipx

    folder = install_ipx(scratch)
    return make_ipx(folder)(log.parent, False) if folder else None


# --------------------------------------------------------------------------- scoring


@dataclass
class Point:
    q: int | str
    bytes: int
    ssim: float
    ms: float = 0.0


@dataclass
class Curve:
    points: list[Point] = field(default_factory=list)

    def sorted_db(self) -> tuple[np.ndarray, np.ndarray]:
        """(SSIM in dB, log bytes), increasing in SSIM, one point per distinct SSIM."""
        pts = sorted((to_db(p.ssim), math.log(p.bytes)) for p in self.points if isinstance(p.q, int))
        xs, ys = [], []
        for x, y in pts:  # a sweep is monotonic up to noise; keep the cheapest point per quality level
            if xs and x <= xs[-1]:
                ys[-1] = min(ys[-1], y)
                continue
            xs.append(x)
            ys.append(y)
        return np.array(xs), np.array(ys)


def to_db(ssim: float) -> float:
    return -10 * math.log10(max(1e-6, 1 - ssim))


def bd_ratio(ours: Curve, other: Curve) -> float | None:
    """exp(mean log-bytes gap) over the common SSIM range: ours' bytes / other's at equal SSIM."""
    (xa, ya), (xb, yb) = ours.sorted_db(), other.sorted_db()
    if len(xa) < 2 or len(xb) < 2:
        return None
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if hi - lo < 0.5:  # under half a dB in common: nothing to compare
        return None
    grid = np.linspace(lo, hi, 64)
    return float(math.exp(np.mean(np.interp(grid, xa, ya) - np.interp(grid, xb, yb))))


def score(body: bytes, ref: np.ndarray, turn: int = 1) -> float:
    from proxy.imaging.quality import luma, ssim

    with Image.open(io.BytesIO(body)) as im:
        im = upright(im.convert("RGB"), turn)
        return ssim(ref, luma(im)) if luma(im).shape == ref.shape else float("nan")


def upright(im: Image.Image, turn: int) -> Image.Image:
    """Pixels stored with EXIF orientation `turn`, turned as a viewer shows them (exact: a transpose)."""
    from PIL.ImageOps import exif_transpose

    im.getexif()[0x0112] = turn
    return exif_transpose(im)


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else float("nan")


# --------------------------------------------------------------------------- the run


@dataclass
class Plan:
    photos: tuple[str, ...]
    widths: tuple[int, ...]
    formats: tuple[str, ...]
    runs: int


Cell = tuple[str, int, str]  # photo, width, format


def cells(plan: Plan) -> Iterator[Cell]:
    for photo in plan.photos:
        for width in plan.widths:
            for fmt in plan.formats:
                yield photo, width, fmt


def sweep(plan: Plan, workers: list[Worker], ipx: Ipx | None) -> tuple[dict[str, dict[Cell, Curve]], dict[Cell, Any]]:
    """Every server's curve per cell; ours also at q=auto and as PNG (the pixels it encodes)."""
    from proxy.imaging.quality import luma

    curves: dict[str, dict[Cell, Curve]] = {w.name: {} for w in workers} | ({"ipx": {}} if ipx else {})
    auto: dict[Cell, Any] = {}
    refs: dict[tuple[str, int], np.ndarray] = {}
    for cell in cells(plan):
        photo, width, fmt = cell
        print(f"  {photo} w{width} {fmt} ...", flush=True)
        for q in SWEEP:
            timed = plan.runs if q == FIXED else 1
            order = workers if SWEEP.index(q) % 2 == 0 else workers[::-1]  # alternate who goes first
            for w in order:
                out = w.render(photo, width, fmt, q, timed)
                size = tuple(out["size"])
                if (photo, width) not in refs:
                    refs[(photo, width)] = luma(reference((CORPUS / "photos" / photo).read_bytes(), size))
                ref = refs[(photo, width)]
                curves[w.name].setdefault(cell, Curve()).points.append(
                    Point(q, len(out["body"]), score(out["body"], ref), out["ms"] if timed > 1 else 0.0)
                )
            if ipx:
                body = ipx.render(photo, size, fmt, q)
                curves["ipx"].setdefault(cell, Curve()).points.append(
                    Point(q, len(body), score(body, refs[(photo, width)], orientation(photo)))
                )
        try:
            out = workers[0].render(photo, width, fmt, "auto", plan.runs)
        except RuntimeError:
            continue
        encoded_from = luma(Image.open(io.BytesIO(workers[0].render(photo, width, "png", 100)["body"])))
        auto[cell] = {
            "bytes": len(out["body"]),
            "ssim": score(out["body"], refs[(photo, width)]),
            "ssim_encoded": score(out["body"], encoded_from),
            "ms": out["ms"],
        }
    return curves, auto


def report(plan: Plan, curves: dict[str, dict[Cell, Curve]], auto: dict[Cell, Any]) -> None:
    print()
    print(
        f"{'photo':<34} {'w':>5} {'fmt':<5} "
        + " ".join(f"{n + ' bytes@q80':>18}" for n in curves)
        + " "
        + " ".join(f"{n + ' SSIM@q80':>16}" for n in curves)
    )
    for cell in cells(plan):
        at80 = [next((p for p in curves[n][cell].points if p.q == FIXED), None) for n in curves]
        print(
            f"{cell[0]:<34} {cell[1]:>5} {cell[2]:<5} "
            + " ".join(f"{p.bytes if p else 0:>18}" for p in at80)
            + " "
            + " ".join(f"{p.ssim if p else math.nan:>16.4f}" for p in at80)
        )
    print()
    pairs = [(a, b) for a, b in (("ours", "ipx"), ("ours", "before"), ("before", "ipx")) if a in curves and b in curves]
    for a, b in pairs:
        for fmt in plan.formats:
            per = {(c[0], c[1]): bd_ratio(curves[a][c], curves[b][c]) for c in cells(plan) if c[2] == fmt}
            found = [v for v in per.values() if v]
            by_width = ", ".join(
                f"w{w} {geomean([v for (p, pw), v in per.items() if pw == w and v]):.3f}x" for w in plan.widths
            )
            target = TARGETS[fmt] if (a, b) == ("ours", "ipx") else None
            verdict = (
                f"  [target <= {target:.2f}x: {'met' if geomean(found) <= target else 'MISSED'}]" if target else ""
            )
            print(
                f"bytes at equal SSIM, {a} / {b}, {fmt:<4}: {geomean(found):.3f}x over {len(found)} of "
                f"{len(per)} cells ({by_width}){verdict}"
            )
    if "before" in curves:
        print()
        for fmt in plan.formats:
            for width in plan.widths:
                ms = {
                    n: [
                        p.ms
                        for c in cells(plan)
                        if c[1:] == (width, fmt)
                        for p in curves[n][c].points
                        if p.q == FIXED and p.ms
                    ]
                    for n in ("before", "ours")
                }
                if ms["ours"] and ms["before"]:
                    ratio = geomean([o / b for o, b in zip(ms["ours"], ms["before"])])
                    print(
                        f"render ms per variant at q{FIXED}, {fmt:<4} w{width:<5}: "
                        f"before {statistics.median(ms['before']):7.1f}"
                        f", ours {statistics.median(ms['ours']):7.1f} (median over photos; ours/before {ratio:.2f}x)"
                    )
    if auto:
        report_auto(plan, curves["ours"], auto)


def report_auto(plan: Plan, ours: dict[Cell, Curve], auto: dict[Cell, Any]) -> None:
    from proxy.config import EncoderSettings

    target = EncoderSettings().auto_target
    print()
    print(f"q=auto (target SSIM {target} against the pixels encoded) vs q{FIXED}, ours:")
    for fmt in plan.formats:
        found = [(c, a) for c, a in auto.items() if c[2] == fmt]
        if not found:
            continue
        fixed = [next(p for p in ours[c].points if p.q == FIXED) for c, _ in found]
        saving = 1 - sum(a["bytes"] for _, a in found) / sum(p.bytes for p in fixed)
        mean_auto, mean_fixed = statistics.fmean(a["ssim"] for _, a in found), statistics.fmean(p.ssim for p in fixed)
        lowest = min(a["ssim_encoded"] for _, a in found)
        ok = saving >= AUTO_SAVING and mean_auto >= mean_fixed and lowest >= target
        print(
            f"  {fmt:<4}: bytes {1 - saving:.3f}x of q{FIXED} ({saving:+.1%} saved), mean SSIM vs reference "
            f"{mean_auto:.4f} (q{FIXED}: {mean_fixed:.4f}), lowest SSIM vs encoded pixels {lowest:.4f}, render ms "
            f"median {statistics.median(a['ms'] for _, a in found):.1f}  [targets: {'met' if ok else 'MISSED'}]"
        )
        ceiling = equal_ssim_ceiling([ours[c] for c, _ in found], fixed, mean_fixed)
        if ceiling is not None:
            print(
                f"        ceiling: every variant at exactly q{FIXED}'s mean SSIM ({mean_fixed:.4f}), from the sweeps: "
                f"{ceiling:.3f}x the bytes of q{FIXED} ({1 - ceiling:+.1%}): what any per-image target matching "
                f"q{FIXED}'s mean can save on these photos"
            )


def equal_ssim_ceiling(curves: list[Curve], fixed: list[Point], ssim: float) -> float | None:
    """Bytes of all cells at exactly `ssim` (interpolated on each sweep in dB / log bytes) over their q80 bytes:
    a target-based q=auto with a continuous q and a target of `ssim` needs this much, so no target that keeps
    q80's mean SSIM saves more than this on the photos measured."""
    total = 0.0
    for curve in curves:
        xs, ys = curve.sorted_db()
        if len(xs) < 2 or not xs[0] <= to_db(ssim) <= xs[-1]:
            return None
        total += math.exp(float(np.interp(to_db(ssim), xs, ys)))
    return total / sum(p.bytes for p in fixed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="photos matching this glob (default: the distinct scenes)")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument(
        "--baseline", default=BASELINE, help=f"revision compared as 'before' (default {BASELINE}; 'none' to skip)"
    )
    parser.add_argument("--no-ipx", action="store_true", help="skip IPX")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an [encoders] setting for ours (a TOML value), e.g. --set webp_method=6",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed renders per variant at q80 (median)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path("/tmp/resize-proxy-peers"),
        help="where IPX is installed (shared with bench/peers.py)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        return worker()
    photos = (
        tuple(sorted(p.name for p in (CORPUS / "photos").glob("*.jpg") if fnmatch.fnmatch(p.name, args.only)))
        if args.only
        else PHOTOS
    )
    if not photos or not (CORPUS / "photos" / photos[0]).is_file():
        print(f"no photos found in {CORPUS / 'photos'} (set RESIZE_PROXY_CORPUS)", file=sys.stderr)
        return 2
    plan = Plan(photos, tuple(int(w) for w in args.widths.split(",")), tuple(args.formats.split(",")), args.runs)
    start_load = os.getloadavg()[0]
    print(
        f"quality: {len(photos)} photos x widths {plan.widths} x {plan.formats}, q sweep {SWEEP}; SSIM on luma vs "
        f"full decode + sRGB + LANCZOS; baseline {args.baseline}"
    )
    with tempfile.TemporaryDirectory(prefix="resize-proxy-quality-") as tmp:
        workers = [
            Worker(
                "ours",
                REPO,
                {k: tomllib.loads(f"v = {v}")["v"] for k, _, v in (item.partition("=") for item in args.set)},
            )
        ]
        if args.baseline != "none":
            workers.append(Worker("before", extract(args.baseline, Path(tmp) / "before")))
        server = None if args.no_ipx else ipx_server(args.scratch, Path(tmp) / "ipx.log")
        try:
            if server is not None:
                server.start()
            curves, auto = sweep(plan, workers, Ipx(server.url) if server else None)
        finally:
            for w in workers:
                w.close()
            if server is not None:
                server.stop()
    report(plan, curves, auto)
    print(f"machine load (1-min load average): {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
