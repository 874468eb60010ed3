"""Render one variant from a sanitized original: decode small, resize, convert, encode.

Speed comes from doing less work, not from a faster loop:
- JPEG originals are decoded with `draft()`, which makes libjpeg scale by 1/2,
  1/4 or 1/8 inside the IDCT; a 9 MP photo needed at 400 px wide decodes as a
  0.6 MP image, so most of the decode and resize cost disappears.
- `resize(..., reducing_gap=2.0)` shrinks by an integer factor with a cheap box
  reduce first, then LANCZOS does the last step (Pillow documents this as
  indistinguishable from a full LANCZOS at this gap).
- Colour conversion and alpha compositing run after the resize, on few pixels.
No metadata reaches a variant: `info` is emptied before encoding and no ICC,
EXIF or XMP argument is passed; pixels are converted to sRGB instead.

Animated originals (GIF, APNG, animated WebP) become animated WebP or GIF
variants when the job asks for it (the service decides from config); each
frame is composed by Pillow, resized and re-encoded, one source frame in memory
at a time. Other formats get the first frame.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

from PIL import Image, ImageSequence

from proxy.config import EncoderSettings
from proxy.formats import FORMATS, OUTPUT_FORMATS
from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import guarded, memory_gate
from proxy.imaging.geometry import Geometry
from proxy.imaging.modes import eight_bit, widened

_REDUCING_GAP = 2.0
NO_QUALITY = 100  # what a format that takes no quality (PNG, GIF) is given; its encoder ignores it


@dataclass(frozen=True)
class RenderJob:
    geometry: Geometry
    fmt: str  # one of OUTPUT_FORMATS
    quality: int
    background: tuple[int, int, int]
    encoders: EncoderSettings
    animated: bool = False  # keep every frame (only for formats that animate)


@dataclass(frozen=True)
class Encoder:
    """Our choices for writing one output format; the facts about the format are in proxy.formats."""

    options: Callable[[RenderJob], dict[str, object]]  # Pillow save options for the job
    default_quality: Callable[[EncoderSettings], int] | None = None  # for formats that take a quality
    colour_only: bool = False  # the encoder takes RGB(A) only: gray widens to it


ENCODERS: dict[str, Encoder] = {
    "jpeg": Encoder(lambda job: {"quality": job.quality, "optimize": True}, lambda e: e.jpeg_quality),
    "webp": Encoder(lambda job: {"quality": job.quality, "method": job.encoders.webp_method},
                    lambda e: e.webp_quality, colour_only=True),
    "avif": Encoder(lambda job: {"quality": job.quality, "speed": job.encoders.avif_speed},
                    lambda e: e.avif_quality, colour_only=True),
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
        im = Image.open(io.BytesIO(original))
        icc = im.info.get("icc_profile")
        if job.animated:
            return _render_animation(im, icc, job)
        box = _reduce_on_decode(im, job.geometry)
        with memory_gate(im.width * im.height):
            im.load()
            im = _resize(resizable(im), job.geometry, box)
        im = _output_mode(padded(to_srgb(im, icc), job.geometry), job.fmt, job.background)
        return _encode(im, job)


def _reduce_on_decode(im: Image.Image, g: Geometry) -> tuple[float, float, float, float]:
    """Set JPEG decoding to the smallest DCT scale that still covers the output; the crop box in decoded pixels."""
    src_w, src_h = im.size
    box: tuple[float, float, float, float] = g.crop or (0, 0, src_w, src_h)
    if im.format == "JPEG":
        factor = min((box[2] - box[0]) / g.width, (box[3] - box[1]) / g.height)
        if factor >= 2:
            im.draft(None, (math.ceil(src_w / factor), math.ceil(src_h / factor)))
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
        resized = padded(to_srgb(_resize(rgba, g, g.crop or (0, 0, *rgba.size)), icc), g)
        # Frames keep RGBA where the format has an alpha channel; the others reduce it as for a still.
        keeps_alpha = FORMATS[job.fmt].transparency == "alpha"
        frames.append(resized if keeps_alpha else _output_mode(resized, job.fmt, job.background))
    animation = {"save_all": True, "append_images": frames[1:], "duration": durations,
                 "loop": int(im.info.get("loop", 0) or 0)}
    return _encode(frames[0], job, animation)


def _encode(im: Image.Image, job: RenderJob, animation: dict[str, object] | None = None) -> bytes:
    im.info = {}
    out = io.BytesIO()
    im.save(out, FORMATS[job.fmt].pil_save, **ENCODERS[job.fmt].options(job), **(animation or {}))
    return out.getvalue()
