"""Images for the imaging unit tests: encoding and decoding in memory, pixel comparisons, and the
colour references (an Adobe RGB profile from the corpus, LittleCMS's own sRGB conversion).

The references are deliberately other code paths than the ones under test: ImageCms.profileToProfile
instead of the module's cached transforms, a full decode and one LANCZOS resize instead of draft
decoding and reducing gaps.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

import proxy.imaging.decode  # noqa: F401 - registers the HEIF opener, so reference() reads HEIC as the service does
from support.corpus import CORPUS

# The corpus file whose ICC profile is Adobe RGB (1998): Pillow can build no RGB profile but sRGB.
ADOBE_RGB_SAMPLE = CORPUS / "formats/jpeg_icc_adobe_rgb.jpg"
SRGB = ImageCms.createProfile("sRGB")


def encoded(im: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    """The image in `data`, decoded (its first frame)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def max_difference(a: Image.Image, b: Image.Image) -> int:
    """The largest difference of any channel of any pixel."""
    return max(high for _, high in ImageChops.difference(a, b).getextrema())


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference over all channels: small for the same picture after lossy steps."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def adobe_rgb_icc() -> bytes:
    """The Adobe RGB (1998) profile's bytes; skips the calling test, saying why, without the corpus."""
    if not ADOBE_RGB_SAMPLE.is_file():
        pytest.skip(
            f"corpus file {ADOBE_RGB_SAMPLE} not found (set RESIZE_PROXY_CORPUS): "
            "it provides the Adobe RGB (1998) profile"
        )
    with Image.open(ADOBE_RGB_SAMPLE) as im:
        icc: bytes = im.info["icc_profile"]
    assert "Adobe RGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    return icc


def srgb_reference(im: Image.Image, icc: bytes) -> Image.Image:
    """`im`'s pixels read under `icc` and converted to sRGB by LittleCMS (perceptual intent)."""
    return ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB, outputMode="RGB")


def reference(data: bytes, size: tuple[int, int], box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """What a variant of `data` at `size` should look like, made the slow, exact way: a full decode,
    EXIF orientation applied, ICC profile (RGB or CMYK) to sRGB by LittleCMS (perceptual), then one
    LANCZOS resize of `box` (default: the whole upright image), in RGB or RGBA. The yardstick of the
    quality and colour measurements (bench/quality.py, bench/render_bench.py, the colour tests)."""
    im = Image.open(io.BytesIO(data))
    icc = im.info.get("icc_profile")
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F", "1"):
        im = im.convert("L")
    alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    base = im if im.mode == "CMYK" else im.convert("RGB")
    try:
        base = ImageCms.profileToProfile(base, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, TypeError):  # no profile, or one that does not fit: as the browser shows it
        base = base.convert("RGB")
    if alpha:
        base.putalpha(im.convert("RGBA").getchannel("A"))
    return base.resize(size, Image.Resampling.LANCZOS, box=box or (0, 0, *base.size))
