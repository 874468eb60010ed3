"""Working copies: a small sRGB pyramid made once at upload, rendered from afterwards.

Most variants are small (thumbnails, 320-800 px cards), yet decoding their
source costs in proportion to the *source's* compressed size: even at 1/8 DCT
scale, libjpeg must entropy-decode every byte of a 9 MP, 2 MB photo (about
20 ms here, most of a render). So at upload, while the image is being decoded
anyway, we also keep copies whose long sides are `render.working_sizes`
(480, 800 and 1280 px by default): JPEG q98 with full chroma, or lossy WebP
with lossless alpha when the image is transparent. Colours are converted to
sRGB once here, before any resize (as the reference does: resampling in the
source's space and converting afterwards shifts colours at saturated edges),
so renders skip colour management too; each level is then resized (LANCZOS)
from the next larger one.

A variant renders from the smallest level with at least `OVERSAMPLE` (1.5)
times its pixels in each direction, so that its one resize has room to filter:
a resample by a factor near 1 blurs without antialiasing. Measured on the corpus
photos, a 400 px output from the 480 px level (1.2x) scored SSIM 0.989 against a
full-decode reference (lossless output), from the 800 px level 0.998; after a q80
WebP encode the difference is smaller (0.9668 against 0.9683 on the four largest
photos) and costs 30% more render time, but the colours need it: the Adobe RGB
photo's largest CIEDE2000 at 400 px is 6.3 from the 480 px level and 3.9 from
the 800 px one (a test holds it under 5). The copies themselves are q98 with full
chroma (q95 left 5.5 there; q90 and converting after the resize, 14). A 400 px
WebP of a 9 MP photo then decodes an 800 px copy (about 3 ms) instead of the
whole photo. Outputs larger than every level allows, animations, and images
already that small use the original.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from proxy.formats import FORMATS
from proxy.imaging.colour import to_srgb
from proxy.imaging.decode import frame_count, guarded, memory_gate
from proxy.imaging.geometry import Geometry
from proxy.imaging.render import resizable

WORKING_QUALITY = 98  # q95 left a CIEDE2000 of 5.5 on the Adobe RGB photo at 400 px, q98 3.9; q90 14
OVERSAMPLE = 1.5  # a level serves outputs up to 1/OVERSAMPLE of its size (see above)


@dataclass(frozen=True)
class WorkingCopy:
    data: bytes
    format: str  # jpeg | webp
    width: int
    height: int


def from_working_copy(
    g: Geometry, original: tuple[int, int], levels: tuple[tuple[int, int], ...]
) -> tuple[int, Geometry] | None:
    """(index of the smallest level that serves the output, `g` re-expressed for it), or None.

    A level serves the output when the source box (the crop, else the whole image) has at
    least OVERSAMPLE times the output's pixels in it each way, so a small crop box of a large
    photo is taken from a level (or the original) that is sharp enough, never enlarged from
    a small one, and every output gets one resize by a factor that filters well."""
    x0, y0, x1, y1 = g.crop or (0, 0, *original)
    for index, (w, h) in sorted(enumerate(levels), key=lambda item: item[1][0] * item[1][1]):
        sx, sy = w / original[0], h / original[1]
        if (x1 - x0) * sx >= g.width * OVERSAMPLE and (y1 - y0) * sy >= g.height * OVERSAMPLE:
            return index, g.scaled(sx, sy)
    return None


def make_working_copies(stored: bytes, sizes: tuple[int, ...]) -> list[WorkingCopy]:
    """Renditions of the sanitized original at each long side in `sizes` below its own, largest first."""
    with guarded():
        im = Image.open(io.BytesIO(stored))
        wanted = sorted((s for s in sizes if s < max(im.size)), reverse=True)
        if frame_count(im) > 1 or not wanted:
            return []
        icc = im.info.get("icc_profile")
        full = im.size
        first = _size(full, wanted[0])
        if im.format == "JPEG":
            im.draft(None, (first[0] * 2, first[1] * 2))  # keep 2x for a clean LANCZOS step
        with memory_gate(im.width * im.height):
            level = to_srgb(resizable(im), icc).resize(first, Image.Resampling.LANCZOS, reducing_gap=2.0)
        copies = []
        for side in wanted:
            level = level.resize(_size(full, side), Image.Resampling.LANCZOS)
            copies.append(_encode(level))
        return copies


def _size(full: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(full)
    return max(1, round(full[0] * scale)), max(1, round(full[1] * scale))


def _encode(im: Image.Image) -> WorkingCopy:
    out = io.BytesIO()
    if im.mode in ("RGBA", "LA"):
        fmt, options = "webp", {"quality": WORKING_QUALITY, "method": 2}
        im = im.convert("RGBA")
    else:
        fmt, options = "jpeg", {"quality": WORKING_QUALITY, "subsampling": 0}
    im.save(out, FORMATS[fmt].pil_save, **options)
    return WorkingCopy(out.getvalue(), fmt, *im.size)
