"""Render speed of the service's render path against a naive Pillow pipeline, in one run.

"Ours" is what the service does on a miss: render from the working copy made at
upload when the output fits in it (proxy.imaging.working), else from the
sanitized original. The working copy's one-off cost at upload is timed and
printed too, so nothing is hidden in the ratio.

Why a baseline in the same run: absolute milliseconds depend on the machine
and on whatever else it is doing, so the figure that means something is the
ratio to a naive pipeline timed right next to ours on the same bytes. The naive
pipeline is what a first implementation would write: decode the whole
original, copy the pixels to shed metadata, `thumbnail()` with Pillow's
defaults, convert, encode.

Animated originals are timed on their first frame, as the naive pipeline
renders them. Quality is checked too, because being fast by decoding small (JPEG draft) and
box-reducing could blur: PSNR of our output against a full-decode LANCZOS
reference of the same size (no draft, no reducing gap).

Usage: python bench/render_bench.py [--runs N] [--only PATTERN]
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The tests' helpers (support.corpus: where the corpus is, what its manifest lists) serve the benchmarks
# too; the imports below this line may come from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from PIL import Image, ImageChops, ImageStat

from proxy.config import EncoderSettings, LimitSettings, RenderSettings, SanitizeSettings
from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import configure_pillow
from proxy.imaging.errors import ImageRejected
from proxy.imaging.geometry import Geometry, plan
from proxy.imaging.render import RenderJob, default_quality, render
from proxy.imaging.sanitize import Sanitized, sanitize
from proxy.imaging.working import WorkingCopy, from_working_copy, make_working_copies
from support.corpus import CORPUS, corpus_rows

FOLDERS = ("photos", "formats")
ENCODERS = EncoderSettings()
RENDER = RenderSettings()
WHITE = (255, 255, 255)
# Per (image, preset, pipeline): stop repeating once this much time went by (at least one timed run).
CELL_BUDGET_S = 10.0
# The headline: 8-9 MP camera JPEGs rendered at 400 px WebP.
HEADLINE_MP = (7.5, 9.5)


@dataclass(frozen=True)
class Preset:
    name: str
    w: int
    h: int | None
    fit: str
    fmt: str


PRESETS = (
    Preset("400 webp", 400, None, "inside", "webp"),  # the headline
    Preset("160x160 cover webp", 160, 160, "cover", "webp"),
    Preset("800 webp", 800, None, "inside", "webp"),
    Preset("400 avif", 400, None, "inside", "avif"),
    Preset("400 jpeg", 400, None, "inside", "jpeg"),
)
HEADLINE = PRESETS[0]


@dataclass(frozen=True)
class Original:
    path: str  # relative to the corpus
    source_format: str  # the upload's format per MANIFEST.tsv (JPEG, MPO, PNG, ...; "-" if Pillow lacks it)
    clean: Sanitized
    work: list[WorkingCopy]  # made once at upload, as the service does
    work_ms: float  # what making them cost at upload

    @property
    def megapixels(self) -> float:
        return self.clean.width * self.clean.height / 1e6


@dataclass(frozen=True)
class Row:
    original: Original
    preset: Preset
    baseline_ms: float
    ours_ms: float
    ours_psnr: float | None  # only for the headline preset
    baseline_psnr: float | None

    @property
    def ratio(self) -> float:
        return self.baseline_ms / self.ours_ms


# --------------------------------------------------------------------------- corpus


def corpus_files(only: str | None) -> dict[str, str]:
    """Manifest path -> source format, for photos/ and formats/, optionally filtered by a glob or substring."""
    rows = {r["path"]: r["format"] for r in corpus_rows() if r["path"].split("/")[0] in FOLDERS}
    return {p: f for p, f in sorted(rows.items()) if not only or fnmatch.fnmatch(p, only) or only in p}


def load_originals(files: dict[str, str]) -> tuple[list[Original], list[str]]:
    """Sanitize each file once (the service stores only sanitized originals); report what it refuses."""
    kept, skipped = [], []
    for path, source_format in files.items():
        try:
            clean = sanitize((CORPUS / path).read_bytes(), SanitizeSettings(), LimitSettings())
            started = time.perf_counter()
            work = make_working_copies(clean.data, RENDER.working_sizes)
            kept.append(Original(path, source_format, clean, work, (time.perf_counter() - started) * 1000))
        except ImageRejected as exc:
            skipped.append(f"{path}: {type(exc).__name__}: {exc}")
    return kept, skipped


# --------------------------------------------------------------------------- pipelines


def geometry(original: Original, preset: Preset) -> Geometry:
    return plan(original.clean.width, original.clean.height, preset.w, preset.h, preset.fit)


def ours(original: Original, preset: Preset) -> bytes:
    g, source = geometry(original, preset), original.clean.data
    levels = tuple((w.width, w.height) for w in original.work)
    found = from_working_copy(g, (original.clean.width, original.clean.height), levels)
    if found is not None:
        source, g = original.work[found[0]].data, found[1]
    return render(source, RenderJob(g, preset.fmt, default_quality(ENCODERS, preset.fmt), WHITE, ENCODERS))


def _rgb_or_rgba(im: Image.Image) -> Image.Image:
    """What the naive code must do before a lossy encoder accepts the image."""
    if im.mode in ("RGB", "RGBA"):
        return im
    alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    return im.convert("RGBA" if alpha else "RGB")


def naive(original: Original, preset: Preset) -> bytes:
    """Full decode, metadata-free pixel copy, thumbnail() with Pillow's defaults, convert, encode.

    Thumbnail targets our output size rather than (w, w): for a landscape image
    that is the same thing, for a portrait (w, w) would make a smaller image
    than ours and flatter the baseline. The cover preset crops first, as a
    naive cover must.
    """
    g = geometry(original, preset)
    im: Image.Image = Image.open(io.BytesIO(original.clean.data))
    im.load()
    im = _rgb_or_rgba(im)  # a palette would not survive the raw copy below
    im = Image.frombytes(im.mode, im.size, im.tobytes())
    if g.crop:
        im = im.crop(g.crop)
    im.thumbnail((g.width, g.height), Image.Resampling.LANCZOS)
    if preset.fmt == "jpeg":
        im = im.convert("RGB")
    out = io.BytesIO()
    im.save(out, preset.fmt.upper(), quality=default_quality(ENCODERS, preset.fmt))
    return out.getvalue()


def reference(original: Original, g: Geometry) -> Image.Image:
    """The best our output could look: full decode, sRGB, one exact LANCZOS pass, no shortcuts."""
    im: Image.Image = Image.open(io.BytesIO(original.clean.data))
    icc = im.info.get("icc_profile")
    im.load()
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F", "1"):
        im = im.convert("L")
    im = to_srgb(_rgb_or_rgba(im), icc)
    box = g.crop or (0, 0, *im.size)
    return im.resize((g.width, g.height), Image.Resampling.LANCZOS, box=box)


# --------------------------------------------------------------------------- measures


def median_ms(fn: Callable[[], bytes], runs: int) -> float:
    """Median wall time of up to `runs` calls after one warm-up; stops early past CELL_BUDGET_S."""
    fn()  # warm-up: first-call costs (codec init, ICC transform cache) are not per-request costs
    times: list[float] = []
    deadline = time.monotonic() + CELL_BUDGET_S
    while len(times) < runs and (not times or time.monotonic() < deadline):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def on_white(im: Image.Image) -> Image.Image:
    """RGB as a viewer sees it: transparent pixels over white (their hidden RGB is meaningless)."""
    im = im.convert("RGBA") if im.mode in ("LA", "PA", "P", "RGBa") else im
    if im.mode != "RGBA":
        return im.convert("RGB")
    flat = Image.new("RGB", im.size, WHITE)
    flat.paste(im, mask=im.getchannel("A"))
    return flat


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR in dB over R, G and B: 10 log10(255^2 / MSE); MSE from ImageStat's per-band RMS."""
    rms = ImageStat.Stat(ImageChops.difference(on_white(a), on_white(b))).rms
    mse = sum(r * r for r in rms) / len(rms)
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def psnr_vs(encoded: bytes, ref: Image.Image) -> float | None:
    """PSNR of decoded `encoded` against `ref`; None when the sizes differ (nothing to compare)."""
    im = Image.open(io.BytesIO(encoded))
    return psnr(im, ref) if im.size == ref.size else None


def measure(original: Original, preset: Preset, runs: int) -> Row:
    baseline_ms = median_ms(lambda: naive(original, preset), runs)
    ours_ms = median_ms(lambda: ours(original, preset), runs)
    ours_psnr = baseline_psnr = None
    if preset == HEADLINE:
        ref = reference(original, geometry(original, preset))
        ours_psnr = psnr_vs(ours(original, preset), ref)
        baseline_psnr = psnr_vs(naive(original, preset), ref)
    return Row(original, preset, baseline_ms, ours_ms, ours_psnr, baseline_psnr)


# --------------------------------------------------------------------------- report


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def is_headline(row: Row) -> bool:
    """Camera JPEGs (an MPO is one) as uploaded; a HEIC stored as JPEG is not what the target was set for."""
    lo, hi = HEADLINE_MP
    camera_jpeg = row.original.source_format in ("JPEG", "MPO") and row.original.clean.format == "jpeg"
    return row.preset == HEADLINE and camera_jpeg and lo <= row.original.megapixels <= hi


def print_table(rows: list[Row]) -> None:
    print(
        f"{'image':<38} {'MP':>5}  {'preset':<19} {'baseline ms':>11} {'ours ms':>8} {'ratio':>7}"
        f"  {'PSNR dB ours/naive':>18}"
    )
    for r in rows:
        print(
            f"{r.original.path:<38} {r.original.megapixels:>5.2f}  {r.preset.name:<19} "
            f"{r.baseline_ms:>11.1f} {r.ours_ms:>8.1f} {r.ratio:>6.1f}x  {_psnr_cell(r):>18}"
        )


def _psnr_cell(r: Row) -> str:
    """PSNR is measured for the headline preset only; '-' where the naive output's size differs from ours."""
    if r.preset != HEADLINE:
        return ""
    return "/".join("-" if v is None else f"{v:.1f}" for v in (r.ours_psnr, r.baseline_psnr))


def print_ratios(rows: list[Row]) -> None:
    headline = [r for r in rows if is_headline(r)]
    if headline:
        gm = geomean([r.ratio for r in headline])
        verdict = "meets" if gm >= 15 else "MISSES"
        names = ", ".join(r.original.path for r in headline)
        print(
            f"geomean ratio, 8-9 MP JPEG photos at {HEADLINE.name} ({names}): {gm:.1f}x ({verdict} the >= 15x target)"
        )
    else:
        print("geomean ratio, 8-9 MP JPEG photos: none selected (see --only)")
    for preset in PRESETS:
        subset = [r.ratio for r in rows if r.preset == preset]
        if subset:
            print(f"geomean ratio, all images, {preset.name:<19}: {geomean(subset):.1f}x")
    print(f"geomean ratio, overall ({len(rows)} renders): {geomean([r.ratio for r in rows]):.1f}x")
    made = {r.original.path: r.original for r in rows if r.original.work}
    if made:
        costs = ", ".join(
            f"{Path(o.path).stem} {o.work_ms:.0f} ms" for o in made.values() if o.megapixels >= HEADLINE_MP[0]
        )
        print(
            f"working copies made at upload for {len(made)} of {len({r.original.path for r in rows})} images; "
            f"one-off cost for the 8-9 MP photos: {costs}"
        )


def print_psnr(rows: list[Row]) -> None:
    """Min/mean PSNR of the headline outputs; the naive pipeline's, as a yardstick, where sizes match."""
    for label, values in (
        ("ours ", [r.ours_psnr for r in rows if r.ours_psnr is not None]),
        ("naive", [r.baseline_psnr for r in rows if r.baseline_psnr is not None]),
    ):
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            print(
                f"PSNR {HEADLINE.name} {label} vs full-decode LANCZOS reference: min {min(finite):.1f} dB, "
                f"mean {statistics.fmean(finite):.1f} dB over {len(finite)} images"
            )
    worst = sorted((r for r in rows if r.ours_psnr is not None), key=lambda r: r.ours_psnr or 0)[:3]
    print("lowest (ours): " + ", ".join(f"{r.original.path} {r.ours_psnr:.1f} dB" for r in worst))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per cell, median reported (default 5)")
    parser.add_argument("--only", help="only corpus paths matching this glob or containing this text")
    args = parser.parse_args(argv)
    if not (CORPUS / "MANIFEST.tsv").is_file():
        print(f"corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS)", file=sys.stderr)
        return 2
    start_load = os.getloadavg()[0]
    configure_pillow(LimitSettings().max_pixels)  # as the service does at start (limits, extra openers)
    originals, skipped = load_originals(corpus_files(args.only))
    if not originals:
        print("no image selected", file=sys.stderr)
        return 2
    print(
        f"render_bench: {len(originals)} images from {CORPUS}, median of {max(1, args.runs)} runs "
        f"(after 1 warm-up); baseline = full decode + pixel copy + thumbnail(LANCZOS, default reducing_gap) "
        f"+ encode at the same quality"
    )
    for line in skipped:
        print(f"skipped (sanitize refuses it): {line}")
    rows = [measure(o, p, max(1, args.runs)) for o in originals for p in PRESETS]
    print_table(rows)
    print()
    print_ratios(rows)
    print_psnr(rows)
    print(f"machine load (1-min load average): {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
