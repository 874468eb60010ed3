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

from PIL import Image, ImageSequence

from proxy.config import EncoderSettings
from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import guarded, memory_gate
from proxy.imaging.geometry import Geometry

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif",
                 "gif": "image/gif"}
_REDUCING_GAP = 2.0


@dataclass(frozen=True)
class RenderJob:
    geometry: Geometry
    fmt: str  # jpeg | png | webp | avif | gif
    quality: int
    background: tuple[int, int, int]
    encoders: EncoderSettings
    animated: bool = False  # keep every frame (only for webp and gif)


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
        im = _output_mode(to_srgb(im, icc), job.fmt, job.background)
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
    """Bring exotic modes to ones LANCZOS and the encoders handle (palette -> RGB(A), 16-bit -> 8-bit)."""
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "PA":
        return im.convert("RGBA")
    if im.mode in ("1", "I;16", "I;16B", "I;16L", "I", "F"):
        return im.convert("L")
    return im


def _resize(im: Image.Image, g: Geometry, box: tuple[float, float, float, float]) -> Image.Image:
    if im.size == (g.width, g.height) and box == (0, 0, *im.size):
        return im
    return im.resize((g.width, g.height), Image.Resampling.LANCZOS, box=box, reducing_gap=_REDUCING_GAP)


def _flatten(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _output_mode(im: Image.Image, fmt: str, background: tuple[int, int, int]) -> Image.Image:
    """Drop alpha that is fully opaque; composite real alpha for JPEG (and partly for GIF); widen gray."""
    if im.mode in ("RGBA", "LA") and im.getchannel("A").getextrema() == (255, 255):
        im = im.convert(im.mode[:-1])
    if fmt == "jpeg" and im.mode in ("RGBA", "LA"):
        return _flatten(im, background)
    if fmt == "gif" and im.mode in ("RGBA", "LA"):
        # GIF has on/off transparency only: blend partial alpha onto the background, then cut at half.
        flat = _flatten(im, background).convert("RGBA")
        flat.putalpha(im.getchannel("A").point(lambda a: 255 if a >= 128 else 0))
        return flat
    if fmt in ("webp", "avif") and im.mode in ("L", "LA"):
        return im.convert("RGB" if im.mode == "L" else "RGBA")
    return im


def _render_animation(im: Image.Image, icc: bytes | None, job: RenderJob) -> bytes:
    g = job.geometry
    frames, durations = [], []
    for frame in ImageSequence.Iterator(im):
        durations.append(int(frame.info.get("duration") or 100))
        rgba = frame.convert("RGBA")
        resized = to_srgb(_resize(rgba, g, g.crop or (0, 0, *rgba.size)), icc)
        frames.append(_output_mode(resized, job.fmt, job.background) if job.fmt == "gif" else resized)
    animation = {"save_all": True, "append_images": frames[1:], "duration": durations,
                 "loop": int(im.info.get("loop", 0) or 0)}
    return _encode(frames[0], job, animation)


def _encode(im: Image.Image, job: RenderJob, animation: dict[str, object] | None = None) -> bytes:
    im.info = {}
    out = io.BytesIO()
    e = job.encoders
    extra = animation or {}
    if job.fmt == "jpeg":
        im.save(out, "JPEG", quality=job.quality, optimize=True)
    elif job.fmt == "webp":
        im.save(out, "WEBP", quality=job.quality, method=e.webp_method, **extra)
    elif job.fmt == "avif":
        im.save(out, "AVIF", quality=job.quality, speed=e.avif_speed)
    elif job.fmt == "gif":
        im.save(out, "GIF", disposal=2, **extra)  # disposal 2: transparent frames do not smear
    else:
        im.save(out, "PNG", compress_level=e.png_compress_level)
    return out.getvalue()
