"""Open and validate untrusted image bytes with every guard in front of Pillow.

Order matters: the format is sniffed from the bytes against an allow-list
(Pillow is told which plugins it may try, so a BLP or SGI never reaches its
decoder), then the pixel count from the header is checked before any pixel is
decoded, then the frame count, and only then is anything decoded. Pillow raises
many exception types on hostile files (OSError, SyntaxError, ValueError,
TypeError, EOFError, struct.error, MemoryError...); each becomes an
`ImageRejected`, never an unexpected error.

Pixels that are kept are decoded by `decoded()`, on an image object nothing else
has touched: Pillow marks an image loaded even when its decode failed, so an
image some other call decoded first (and whose error it swallowed) would hand
over half a picture without complaint.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pillow_heif
from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError

from proxy.formats import FORMATS, from_pil
from proxy.imaging.errors import ImageRejected, InvalidImage, TooManyFrames, TooManyPixels, UnsupportedFormat

_LARGE_DECODES = threading.BoundedSemaphore(1)
_large_pixels = 16_000_000


@contextmanager
def memory_gate(pixels: int) -> Iterator[None]:
    """Let only one decode larger than `large_pixels` run at a time in this process.

    Pillow holds 4 bytes per RGB pixel, so the largest allowed image (50 MP by
    default) needs about 200 MB decoded, plus copies while it is sanitized or
    resized (about 550 MB peak measured for a 49 MP PNG upload). Several of
    those at once would multiply; smaller decodes are not held up.
    """
    if pixels <= _large_pixels:
        yield
        return
    with _LARGE_DECODES:
        yield


def configure_pillow(max_pixels: int, large_pixels: int = _large_pixels) -> None:
    """Make Pillow's own bomb check use our limit and fail hard instead of warning.

    Pillow checks the header size at open and at every seek (so a GIF whose
    second frame claims 4 Gpx is caught), but by default only *warns* between
    1x and 2x its limit; BMP bombs live in that gap. Process-wide, set once at start.
    """
    global _large_pixels
    Image.MAX_IMAGE_PIXELS = max_pixels
    _large_pixels = large_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # Pillow's default, stated: a short read is an error, never grey rows


# Pillow's plugin registry is process-wide; HEIF joins it on import, like Pillow's own plugins.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


@contextmanager
def guarded() -> Iterator[None]:
    """Turn any exception raised by Pillow inside the block into an ImageRejected."""
    try:
        yield
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixels("image (or one of its frames) declares more pixels than limits.max_pixels allows") from None
    except UnidentifiedImageError:
        raise UnsupportedFormat("not an image in an accepted format") from None
    except MemoryError:
        raise TooManyPixels("image needs more memory than is available to decode") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises arbitrary types on hostile input
        raise InvalidImage(f"corrupt or truncated image ({type(exc).__name__}: {exc})") from None


def format_name(im: Image.Image) -> str:
    """Our name for the image's format (MPO, a camera JPEG with a preview frame, is 'jpeg')."""
    return from_pil(im.format).name


def frame_count(im: Image.Image) -> int:
    """Animation frames; MPO previews and HEIF image collections are not animation: they count as 1."""
    if from_pil(im.format).single_frame:
        return 1
    with guarded():
        return int(getattr(im, "n_frames", 1))


def open_checked(data: bytes, formats: tuple[str, ...], max_pixels: int, max_frames: int) -> Image.Image:
    """Open `data` lazily (header only) after the format, pixel and frame checks.

    Raises UnsupportedFormat for empty or non-accepted data, TooManyPixels,
    TooManyFrames or InvalidImage; the returned image has not decoded a pixel yet.
    """
    if not data:
        raise UnsupportedFormat("empty body: no image data")
    allowed = [pil for name in formats for pil in FORMATS[name].pil]
    try:
        with guarded():
            im = Image.open(io.BytesIO(data), formats=allowed)
    except UnsupportedFormat:
        raise UnsupportedFormat(f"not an image in an accepted format (accepted: {', '.join(formats)})") from None
    width, height = im.size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise TooManyPixels(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    frames = frame_count(im)
    if frames > max_frames:
        raise TooManyFrames(f"image has {frames} frames; the limit is {max_frames}")
    if width * height * frames > max_pixels:
        raise TooManyPixels(
            f"animation is {frames} frames of {width}x{height} = {width * height * frames} pixels; "
            f"the limit for all frames together is {max_pixels}"
        )
    return im


def decoded(data: bytes, formats: tuple[str, ...], max_pixels: int, max_frames: int) -> Image.Image:
    """`data` opened afresh (with every check of open_checked) and every frame decoded in full.

    Afresh on purpose: Pillow's ImageFile.load() marks an image loaded before it raises, and
    some reads decode pixels as a side effect and swallow the error (PNG's getexif() decodes
    the whole image to find an eXIf chunk after the pixels). An object any other code has
    touched could therefore hold a half-decoded picture that a second load() no longer
    questions; this one is decoded first by code that lets every error through.
    """
    im = open_checked(data, formats, max_pixels, max_frames)
    with guarded():
        if frame_count(im) == 1:
            im.load()
            return im
        for frame in ImageSequence.Iterator(im):
            frame.load()
        im.seek(0)
    return im


def decoded_pixels(im: Image.Image) -> int:
    """Pixels held when every frame is decoded at once (as a re-encoded animation is), for memory_gate."""
    return im.width * im.height * frame_count(im)


def orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8; anything absent, invalid or unreadable counts as 1 (upright).

    May decode the pixels and swallow a decode error (PNG): call it on a throwaway image or
    on one `decoded()` returned, never on one whose pixels are still to be trusted.
    """
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - corrupt EXIF must not fail the upload
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def has_alpha(im: Image.Image) -> bool:
    """Whether the image carries transparency (alpha channel or palette/tRNS transparency)."""
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
