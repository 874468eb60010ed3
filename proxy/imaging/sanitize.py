"""Turn an untrusted upload into the sanitized original we store exactly once.

Policy (also in the README):
- Upright: the EXIF orientation is applied to the pixels, so every later path
  (our variants, a browser, a CDN transform) sees the same upright image.
- No metadata: EXIF (with GPS and device data), XMP, IPTC, comments, text
  chunks and MPO preview frames are removed. The ICC profile is kept, so the
  stored original shows the same colours as the upload.
- Smallest generation loss: when no pixel has to change (orientation 1) JPEG,
  PNG, WebP and GIF are rewritten losslessly at the container level (the
  compressed pixel data is copied byte for byte). Only a rotation, an AVIF
  upload (whose metadata lives in boxes we do not rewrite) or a fallback for an
  odd container re-encodes: JPEG at sanitize.jpeg_quality with the source's
  chroma subsampling, WebP losslessly when the source was lossless, AVIF at
  sanitize.avif_quality and sanitize.avif_speed. BMP and TIFF are stored as lossless PNG. HEIC (iPhone)
  is stored as a JPEG at q100 4:4:4 with its ICC profile (Display P3), so its colours survive:
  every browser and every later render reads it, and variants then profit from
  JPEG's reduced-scale decoding instead of a full HEVC decode per render.

What is stored is what was validated, and validated completely: every pixel that
is kept comes from a decode of fresh bytes by code that lets every error through
(`decode.decoded`), never from an image another call touched first. On the lossless
path the stripped bytes themselves are decoded, so a container our parser reads
differently from the decoder can never leave an undecodable original behind (it
falls back to a re-encode of the decoded original, or to a refusal).

Pages and frames: MPO previews, HEIF collections and TIFF pages are not animation;
the first image is stored (formats.Format.single_frame). A GIF is stored at the size
browsers draw it: its logical screen, widened to hold the first frame; later frames
that reach past it are clipped, where Pillow alone would grow the picture.
Every decoded mode has a stored one (imaging.modes): LAB, YCbCr, PA, 32-bit and float
TIFFs are stored as PNG like the others.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageSequence, JpegImagePlugin

from proxy.config import LimitSettings, SanitizeSettings
from proxy.formats import FORMATS
from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import (
    decoded,
    decoded_pixels,
    format_name,
    frame_count,
    guarded,
    has_alpha,
    memory_gate,
    open_checked,
    orientation,
)
from proxy.imaging.errors import InvalidImage
from proxy.imaging.modes import widened
from proxy.imaging.strip import STRIPPERS, MalformedContainer

# EXIF orientation -> the transpose that makes the pixels upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# (quality, chroma subsampling) of the JPEG a HEIC is stored as, so that a Display P3 photo's
# colours survive: at q95 4:2:0 the iPhone sample's largest CIEDE2000 against its own decode was 10.6
# at 400 px, at q95 4:4:4 8.5 at full size, at q100 4:4:4 4.6 (tests/e2e/test_quality.py holds every
# size under 5). The price: 4.8 MB stored for an 833 KB, 8.5 MP HEIC (2.2 MB at q95); renders up to
# 853 px come from the working copies, larger ones decode the JPEG at reduced DCT scale.
_HEIC_AS_JPEG = (100, 0)


@dataclass(frozen=True)
class Sanitized:
    data: bytes
    format: str  # jpeg | png | webp | gif | avif
    width: int
    height: int
    frames: int
    has_alpha: bool


def sanitize(data: bytes, policy: SanitizeSettings, limits: LimitSettings) -> Sanitized:
    """Validate `data` and return the bytes to store; raises ImageRejected subclasses."""
    probe = open_checked(data, policy.formats, limits.max_pixels, limits.max_frames)
    with memory_gate(decoded_pixels(probe)):  # a re-encoded animation holds every frame at once
        return _sanitize_opened(probe, data, policy, limits)


def _sanitize_opened(probe: Image.Image, data: bytes, policy: SanitizeSettings, limits: LimitSettings) -> Sanitized:
    # The probe answers from the header; reading its EXIF may decode it (see decode.orientation),
    # so no pixel of it is ever kept.
    fmt, frames, alpha = format_name(probe), frame_count(probe), has_alpha(probe)
    canvas = probe.size  # for a GIF: its logical screen widened to the first frame, as browsers draw it
    if fmt in STRIPPERS and orientation(probe) == 1:
        stripped = _stripped(data, fmt, canvas, policy, limits)
        if stripped is not None:
            return Sanitized(stripped, fmt, *canvas, frames, alpha)
    im = decoded(data, policy.formats, limits.max_pixels, limits.max_frames)  # corrupt or truncated: fails here
    # Read after decoding: Pillow's TIFF reader turns the pixels itself while decoding and drops
    # the tag, so the probe's value would turn the picture twice.
    turn = orientation(im)
    width, height = canvas if turn < 5 else canvas[::-1]
    with guarded():
        out, stored = _reencode(im, data, fmt, frames, turn, alpha, canvas, policy)
    # The frames as stored: GIF's writer merges frames that became identical (a clipped one).
    frames = _verify(out, stored, width, height)
    return Sanitized(out, stored, width, height, frames, alpha)


def _stripped(
    data: bytes, fmt: str, canvas: tuple[int, int], policy: SanitizeSettings, limits: LimitSettings
) -> bytes | None:
    """The losslessly stripped file, decoded in full from its own bytes; None when it does not hold up."""
    try:
        out = STRIPPERS[fmt](data)
        check = decoded(out, policy.formats, limits.max_pixels, limits.max_frames)
    except (MalformedContainer, InvalidImage, IndexError, ValueError, struct.error):
        return None  # the caller decodes the original and re-encodes (or refuses it)
    # A GIF whose later frames reach past its canvas decodes larger (Pillow grows the picture
    # for them): it is re-encoded at the canvas instead.
    return out if format_name(check) == fmt and check.size == canvas else None


def _verify(data: bytes, fmt: str, width: int, height: int) -> int:
    """Re-open what Pillow encoded: right format and size, or refuse the upload; its frame count."""
    with guarded():
        check = Image.open(io.BytesIO(data))
        ok = format_name(check) == fmt and check.size == (width, height)
    if not ok:
        raise InvalidImage("the image could not be sanitized consistently")
    return frame_count(check)


def _upright(im: Image.Image, turn: int) -> Image.Image:
    return im.transpose(_TRANSPOSE[turn]) if turn in _TRANSPOSE else im


def _on_canvas(im: Image.Image, canvas: tuple[int, int]) -> Image.Image:
    """The frame clipped to the canvas (only a GIF's frames ever reach past it)."""
    return im if im.size == canvas else im.crop((0, 0, *canvas))


def _png_ready(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """A frame in a mode PNG stores (imaging.modes), with the profile that still describes its pixels."""
    if im.mode == "CMYK":
        return to_srgb(im, icc), None
    if im.mode == "LAB":  # device-independent: converted to sRGB, so no profile applies
        return widened(im), None
    return widened(im), icc


def _reencode(
    im: Image.Image,
    data: bytes,
    fmt: str,
    frames: int,
    turn: int,
    alpha: bool,
    canvas: tuple[int, int],
    policy: SanitizeSettings,
) -> tuple[bytes, str]:
    target = _stored_format(fmt, alpha, canvas)
    icc = im.info.get("icc_profile")
    transparency = im.info.get("transparency")  # read first: `frame` may be `im` itself
    out = io.BytesIO()
    if frames > 1:
        _save_animation(im, target, turn, canvas, out, policy)
        return out.getvalue(), target
    frame = _upright(_on_canvas(im, canvas), turn)
    frame.info = {}  # Pillow's writers copy comments and more from info; only what we pass may go
    options: dict[str, object] = {"icc_profile": icc}
    if target == "jpeg":
        sampling = JpegImagePlugin.get_sampling(im) if fmt == "jpeg" else -1
        quality, sampling = _HEIC_AS_JPEG if fmt == "heic" else (policy.jpeg_quality, sampling)
        options.update(quality=quality, subsampling=sampling if sampling >= 0 else 2, optimize=True)
    elif target == "png":
        frame, options["icc_profile"] = _png_ready(frame, icc)
        if transparency is not None and frame.mode in ("P", "L", "RGB"):
            options.update(transparency=transparency)
    elif target == "webp":
        frame = frame.convert("RGBA" if alpha else "RGB")
        options.update(_webp_options(data, policy))
    elif target == "avif":
        frame = frame.convert("RGBA" if alpha else "RGB")
        options.update(quality=policy.avif_quality, speed=policy.avif_speed)
    else:  # gif: has no EXIF orientation, so only the container fallback or a clipped canvas lands here
        options = {"transparency": transparency} if transparency is not None else {}
    frame.save(out, FORMATS[target].pil_save, **options)
    return out.getvalue(), target


def _stored_format(fmt: str, alpha: bool, size: tuple[int, int]) -> str:
    """Where a re-encode puts an upload: its stored-as format, or PNG rather than lose transparency
    or exceed what the format holds (a HEIC wider than JPEG's 65500 pixels)."""
    target = FORMATS[fmt].store_format
    keeps = not alpha or FORMATS[target].transparency != "none"
    return target if keeps and FORMATS[target].holds(*size) else "png"


def _webp_options(data: bytes, policy: SanitizeSettings) -> dict[str, object]:
    """Keep a lossless WebP lossless; re-encode a lossy one at high quality."""
    lossless = b"VP8L" in data and b"VP8 " not in data
    return {"lossless": True} if lossless else {"quality": policy.webp_quality}


def _save_animation(
    im: Image.Image, target: str, turn: int, canvas: tuple[int, int], out: io.BytesIO, policy: SanitizeSettings
) -> None:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(im):
        durations.append(int(frame.info.get("duration", 100) or 100))
        frames.append(_upright(_on_canvas(frame.convert("RGBA"), canvas), turn))
    options: dict[str, object] = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations,
        "loop": int(im.info.get("loop", 0) or 0),
    }
    if target == "webp":
        options.update(lossless=True)
    elif target == "avif":
        options.update(quality=policy.avif_quality, speed=policy.avif_speed)
    frames[0].save(out, FORMATS[target].pil_save, **options)
