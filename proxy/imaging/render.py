"""Render one variant from a sanitized original: decode small, resize, convert, encode.

Speed comes from doing less work, not from a faster loop:
- JPEG originals are decoded with `draft()`, which makes libjpeg scale by 1/2,
  1/4 or 1/8 inside the IDCT; a 9 MP photo needed at 400 px wide decodes as a
  0.6 MP image, so most of the decode and resize cost disappears. The scale keeps
  at least 1.5 times the output's pixels each way (`_DRAFT_OVERSAMPLE`; 1/4 scale
  for that 400 px), so the LANCZOS step that follows filters: decoding to just
  above the output and resampling by a factor near 1 blurs (SSIM 0.976-0.987
  against a full-decode reference, 0.998 with room to filter). Where no reduction
  keeps 1.5x, the 1/2 scale is still taken while it covers the output: a 2048 px
  output of a 9 MP photo decodes at half size, never in full (asking 2x there
  made the 8-9 MP miss phase of bench/http_bench.py three times slower).
- `resize(..., reducing_gap=2.0)` shrinks by an integer factor with a cheap box
  reduce first, then LANCZOS does the last step (Pillow documents this as
  indistinguishable from a full LANCZOS at this gap).
- Colour conversion runs before the resize, as the reference does (resampling
  in Adobe RGB or Display P3 and converting afterwards moves colours at
  saturated edges), on the drafted decode; untagged and sRGB images skip it.
  Alpha compositing runs after the resize, on few pixels.
No metadata reaches a variant: `info` is emptied before encoding and no ICC,
EXIF or XMP argument is passed; pixels are converted to sRGB instead.

q=auto (`RenderJob.target` set): the lowest quality whose decoded output keeps
SSIM on luma >= target against the pixels it was encoded from (proxy.imaging
.quality; the target in thousandths), found by a bisection over AUTO_QUALITIES that starts at the format's
default quality: at most AUTO_MAX_ENCODES encodes, deterministic (the same pixels
give the same probes and the same bytes), and never below the target unless even
the highest quality is (then that one is used).

Animated originals (GIF, APNG, animated WebP) become animated WebP or GIF
variants when the job asks for it (the service decides from config); each
frame is composed by Pillow, resized and re-encoded, one source frame in memory
at a time. Other formats get the first frame.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image, ImageSequence

from proxy.config import EncoderSettings
from proxy.formats import FORMATS, OUTPUT_FORMATS
from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import guarded, memory_gate
from proxy.imaging.geometry import Geometry
from proxy.imaging.jpegtables import ssim_tables
from proxy.imaging.modes import eight_bit, widened
from proxy.imaging.quality import luma, ssim

_REDUCING_GAP = 2.0
_DCT_SCALES = (8, 4, 2)  # the reductions libjpeg's IDCT offers, largest first
_DRAFT_OVERSAMPLE = 1.5  # a drafted decode keeps this many times the output's pixels each way (see above)
NO_QUALITY = 100  # what a format that takes no quality (PNG, GIF) is given; its encoder ignores it
AUTO_QUALITIES = range(20, 96)  # what q=auto chooses from
# The bound from any first probe: it and the top of the range, then a bisection of what is left (held by a test).
AUTO_MAX_ENCODES = 2 + math.ceil(math.log2(len(AUTO_QUALITIES)))


@dataclass(frozen=True)
class RenderJob:
    geometry: Geometry
    fmt: str  # one of OUTPUT_FORMATS
    quality: int
    background: tuple[int, int, int]
    encoders: EncoderSettings
    animated: bool = False  # keep every frame (only for formats that animate)
    target: int | None = None  # q=auto: the SSIM to keep, in thousandths (see above); `quality` is the first probe


@dataclass(frozen=True)
class Encoder:
    """Our choices for writing one output format; the facts about the format are in proxy.formats."""

    options: Callable[[RenderJob], dict[str, object]]  # Pillow save options for the job
    default_quality: Callable[[EncoderSettings], int] | None = None  # for formats that take a quality
    colour_only: bool = False  # the encoder takes RGB(A) only: gray widens to it


def _jpeg_options(job: RenderJob) -> dict[str, object]:
    """`quality` becomes tables: ours (proxy.imaging.jpegtables) for "ssim", libjpeg's own for "annex-k"."""
    quality: dict[str, object] = (
        {"qtables": ssim_tables(job.quality)} if job.encoders.jpeg_tables == "ssim" else {"quality": job.quality}
    )
    return quality | {"optimize": True, "progressive": job.encoders.jpeg_progressive}


ENCODERS: dict[str, Encoder] = {
    "jpeg": Encoder(_jpeg_options, lambda e: e.jpeg_quality),
    "webp": Encoder(
        lambda job: {"quality": job.quality, "method": job.encoders.webp_method},
        lambda e: e.webp_quality,
        colour_only=True,
    ),
    "avif": Encoder(
        lambda job: {
            "quality": job.quality,
            "speed": job.encoders.avif_speed,
            "subsampling": job.encoders.avif_subsampling,
        },
        lambda e: e.avif_quality,
        colour_only=True,
    ),
    "png": Encoder(lambda job: {"compress_level": job.encoders.png_compress_level}),
    "gif": Encoder(lambda job: {"disposal": 2}),  # disposal 2: transparent frames do not smear
}
# Every output has an encoder, and exactly the formats that take a quality have a default one.
assert set(ENCODERS) == set(OUTPUT_FORMATS)
assert all((e.default_quality is not None) == FORMATS[name].quality for name, e in ENCODERS.items())


def default_quality(encoders: EncoderSettings, fmt: str) -> int:
    """The q a request without q= renders at (from [encoders]; NO_QUALITY for lossless formats)."""
    quality = ENCODERS[fmt].default_quality
    return NO_QUALITY if quality is None else quality(encoders)


def render(original: bytes, job: RenderJob) -> bytes:
    """Return the encoded variant; any Pillow failure becomes an ImageRejected."""
    with guarded():
        im: Image.Image = Image.open(io.BytesIO(original))
        icc = im.info.get("icc_profile")
        if job.animated:
            return _render_animation(im, icc, job)
        box = _reduce_on_decode(im, job.geometry)
        with memory_gate(im.width * im.height):
            im.load()
            im = _resize(to_srgb(resizable(im), icc), job.geometry, box)
        im = _output_mode(padded(im, job.geometry), job.fmt, job.background)
        if job.target is not None and FORMATS[job.fmt].quality:
            return _auto_encoded(im, job, job.target)
        return _encode(im, job)


def _auto_encoded(im: Image.Image, job: RenderJob, target: int) -> bytes:
    """The encode at the lowest quality of AUTO_QUALITIES that keeps `target` (see the module's doc)."""
    reference = luma(im)
    tried: dict[int, bytes] = {}

    def keeps(quality: int) -> bool:
        body = tried[quality] = _encode(im, replace(job, quality=quality))
        with Image.open(io.BytesIO(body)) as decoded:
            return ssim(reference, luma(decoded)) * 1000 >= target

    lowest, highest = AUTO_QUALITIES[0], AUTO_QUALITIES[-1]
    start = min(max(job.quality, lowest), highest)
    if keeps(start):
        failed, kept = lowest - 1, start
    elif start == highest or not keeps(highest):
        return tried[highest]
    else:
        failed, kept = start, highest
    while kept - failed > 1:  # invariant: `kept` keeps the target, `failed` does not (or is below the range)
        middle = (failed + kept) // 2
        if keeps(middle):
            kept = middle
        else:
            failed = middle
    return tried[kept]


def draft_scale(factor: float) -> int:
    """The DCT reduction (1, 2, 4 or 8) to decode at when the output is `factor` times smaller than the
    source: the largest that keeps _DRAFT_OVERSAMPLE times the output, else 1/2 while that covers it."""
    return next((s for s in _DCT_SCALES if factor / s >= _DRAFT_OVERSAMPLE), 2 if factor >= 2 else 1)


def _reduce_on_decode(im: Image.Image, g: Geometry) -> tuple[float, float, float, float]:
    """Set JPEG decoding to the DCT scale draft_scale() picks; the crop box in decoded pixels."""
    src_w, src_h = im.size
    box: tuple[float, float, float, float] = g.crop or (0, 0, src_w, src_h)
    if im.format == "JPEG":
        scale = draft_scale(min((box[2] - box[0]) / g.width, (box[3] - box[1]) / g.height))
        if scale > 1:
            im.draft(None, (math.ceil(src_w / scale), math.ceil(src_h / scale)))
            sx, sy = im.size[0] / src_w, im.size[1] / src_h
            box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    return box


def resizable(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to one LANCZOS and the encoders handle (L, LA, RGB, RGBA, CMYK; see imaging.modes)."""
    return eight_bit(widened(im))


def _resize(im: Image.Image, g: Geometry, box: tuple[float, float, float, float]) -> Image.Image:
    if im.size == (g.width, g.height) and box == (0, 0, *im.size):
        return im
    return im.resize((g.width, g.height), Image.Resampling.LANCZOS, box=box, reducing_gap=_REDUCING_GAP)


def padded(im: Image.Image, g: Geometry) -> Image.Image:
    """The resized image centred on fit=pad's canvas: opaque in its colour (the image's own
    transparency composited onto it), or transparent, keeping the image's alpha."""
    if g.pad is None:
        return im
    colour = g.pad.colour
    canvas = Image.new("RGBA", g.output, (0, 0, 0, 0) if colour is None else (*colour, 255))
    rgba = im.convert("RGBA")
    canvas.alpha_composite(rgba, g.offset)
    return canvas if colour is None else canvas.convert("RGB")


def _flatten(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _output_mode(im: Image.Image, fmt: str, background: tuple[int, int, int]) -> Image.Image:
    """Drop alpha that is fully opaque; composite real alpha where the format keeps none (and
    partly where it keeps on/off transparency only); widen gray for colour-only encoders."""
    if im.mode in ("RGBA", "LA") and im.getchannel("A").getextrema() == (255, 255):
        im = im.convert(im.mode[:-1])
    transparency = FORMATS[fmt].transparency
    if transparency == "none" and im.mode in ("RGBA", "LA"):
        return _flatten(im, background)
    if transparency == "binary" and im.mode in ("RGBA", "LA"):
        # On/off transparency only (GIF): blend partial alpha onto the background, then cut at half.
        flat = _flatten(im, background).convert("RGBA")
        flat.putalpha(im.getchannel("A").point(lambda a: 255 if a >= 128 else 0))
        return flat
    if ENCODERS[fmt].colour_only and im.mode in ("L", "LA"):
        return im.convert("RGB" if im.mode == "L" else "RGBA")
    return im


def _render_animation(im: Image.Image, icc: bytes | None, job: RenderJob) -> bytes:
    g = job.geometry
    frames, durations = [], []
    for frame in ImageSequence.Iterator(im):
        durations.append(int(frame.info.get("duration") or 100))
        rgba = frame.convert("RGBA")
        resized = padded(_resize(to_srgb(rgba, icc), g, g.crop or (0, 0, *rgba.size)), g)
        # Frames keep RGBA where the format has an alpha channel; the others reduce it as for a still.
        keeps_alpha = FORMATS[job.fmt].transparency == "alpha"
        frames.append(resized if keeps_alpha else _output_mode(resized, job.fmt, job.background))
    animation = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations,
        "loop": int(im.info.get("loop", 0) or 0),
    }
    return _encode(frames[0], job, animation)


def _encode(im: Image.Image, job: RenderJob, animation: dict[str, object] | None = None) -> bytes:
    im.info = {}
    out = io.BytesIO()
    im.save(out, FORMATS[job.fmt].pil_save, **ENCODERS[job.fmt].options(job), **(animation or {}))
    return out.getvalue()
