"""Colour management: bring any decoded image to plain sRGB before it goes to a browser.

Variants carry no ICC profile (it can be larger than a thumbnail: one corpus
JPEG has 400 KB of profile), so pixels in a wide-gamut space (Adobe RGB,
Display P3) are converted to sRGB with LittleCMS; untagged pixels are assumed to
be sRGB already, as browsers do. Transforms are built once per distinct profile
and reused; NOCACHE makes one transform safe to apply from several threads.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageCms

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=64)
def _transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from `icc` to sRGB for `in_mode`, or None when none is needed or possible."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in (ImageCms.getProfileDescription(profile) or "").lower():
            return None
        return ImageCms.buildTransform(profile, _SRGB, in_mode, "RGB", flags=ImageCms.Flags.NOCACHE)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # an unreadable profile is ignored, as browsers ignore it


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Return `im` in L, LA, RGB or RGBA with sRGB pixels; CMYK and profiled RGB are converted."""
    alpha = im.getchannel("A") if im.mode == "RGBA" else None
    base = im.convert("RGB") if alpha is not None else im
    transform = _transform(icc, base.mode) if icc and base.mode in ("RGB", "CMYK") else None
    if transform is not None:
        base = transform.apply(base)
    elif base.mode == "CMYK":
        base = base.convert("RGB")
    if alpha is not None:
        base.putalpha(alpha)
    return base
