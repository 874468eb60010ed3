"""The working copy: a small sRGB rendition made once at upload, rendered from afterwards.

Most variants are small (thumbnails, 320-800 px cards), yet decoding their
source costs in proportion to the *source's* compressed size: even at 1/8 DCT
scale, libjpeg must entropy-decode every byte of a 9 MP, 2 MB photo (about
20 ms here, most of a render). So at upload, while the full image is being
decoded anyway, we also keep a copy whose long side is `render.working_size`
(1280 px by default): JPEG q90 with full chroma (4:4:4), or lossy WebP with
lossless alpha when the image is transparent. Colours are converted to sRGB
once here, so renders from it skip colour management too. A variant that fits
inside the working copy renders from it (decoding ~3 ms instead of ~21);
larger ones still use the original. Animations and images already that small
get no working copy.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import guarded
from proxy.imaging.render import resizable

WORKING_QUALITY = 90


@dataclass(frozen=True)
class WorkingCopy:
    data: bytes
    format: str  # jpeg | webp
    width: int
    height: int


def make_working_copy(stored: bytes, max_side: int) -> WorkingCopy | None:
    """A rendition of the sanitized original no larger than `max_side`, or None if not worth it."""
    with guarded():
        im = Image.open(io.BytesIO(stored))
        animated = getattr(im, "n_frames", 1) > 1 and im.format != "MPO"
        if max_side <= 0 or animated or max(im.size) <= max_side:
            return None
        scale = max_side / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        icc = im.info.get("icc_profile")
        if im.format == "JPEG":
            im.draft(None, (size[0] * 2, size[1] * 2))  # keep 2x for a clean LANCZOS step
        im = to_srgb(resizable(im).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0), icc)
        out = io.BytesIO()
        if im.mode in ("RGBA", "LA"):
            im.convert("RGBA").save(out, "WEBP", quality=WORKING_QUALITY, method=2)
            return WorkingCopy(out.getvalue(), "webp", *size)
        im.save(out, "JPEG", quality=WORKING_QUALITY, subsampling=0)
        return WorkingCopy(out.getvalue(), "jpeg", *size)
