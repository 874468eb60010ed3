"""Output geometry: from a request (w, h, fit, crop box, gravity or focal point, padding) and the
original's size to pixels.

Kept separate from rendering because the service needs the result *before*
rendering: the canonical variant key is derived from the geometry, so requests
that produce the same pixels (w=2048 and w=1920 on a 1800-wide original; a
cover whose aspect equals the original's and a plain resize; g=n on a wide
photo, whose cover crop can only move sideways, and the centre crop; a crop box
that is the whole image and none) share one key, one render and one stored
object. The key names the source box in pixels, so different pixels never share it.

Every way of placing a cover crop is a focal point: a compass gravity is one on
the edge of the region being cropped (`n` is its top centre), `fp=` and `g=auto`
are points of the original. The crop of the output's aspect is centred on the
point and pushed back inside the region, so a point near an edge keeps that edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from proxy.crops import GRAVITIES, Colour

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels
# A share of the original's width or height: a URL's crop= and fp= come as exact Fractions
# (proxy.crops), rounded to pixels here without float error; a found focal point is a float.
Share = float | Fraction
Fractions = tuple[Share, Share, Share, Share]  # x, y, width, height as fractions of the original


@dataclass(frozen=True)
class Pad:
    """The canvas an image fitted inside w x h is centred on (fit=pad); colour None: transparent."""

    width: int
    height: int
    colour: Colour | None

    @property
    def label(self) -> str:
        return "transparent" if self.colour is None else "{:02x}{:02x}{:02x}".format(*self.colour)


@dataclass(frozen=True)
class Geometry:
    width: int  # the resized image's size (inside the canvas when padded)
    height: int
    crop: Box | None  # box in source pixels, None for the whole image
    centred: bool = True  # the crop is the plain centre crop of the whole image for this size (key "-cover")
    pad: Pad | None = None

    @property
    def output(self) -> tuple[int, int]:
        """The size of the encoded image: the canvas when padded."""
        return (self.pad.width, self.pad.height) if self.pad else (self.width, self.height)

    @property
    def offset(self) -> tuple[int, int]:
        """Where the resized image sits on the canvas: centred, rounded down."""
        out_w, out_h = self.output
        return (out_w - self.width) // 2, (out_h - self.height) // 2

    @property
    def key(self) -> str:
        """Stable text for the variant key: output size, the source box unless it is the whole
        image (`-cover` for the centre crop, the key it always had), and the canvas of a pad."""
        text = "{}x{}".format(*self.output)
        if self.crop and self.centred:
            text += "-cover"
        elif self.crop:
            text += "-at{}_{}_{}_{}".format(*(round(v) for v in self.crop))
        if self.pad:
            text += f"-pad{self.width}x{self.height}-{self.pad.label}"
        return text

    def scaled(self, sx: float, sy: float) -> Geometry:
        """The same output taken from a source scaled by (sx, sy), e.g. the working copy."""
        crop = self.crop and (self.crop[0] * sx, self.crop[1] * sy, self.crop[2] * sx, self.crop[3] * sy)
        return Geometry(self.width, self.height, crop, self.centred, self.pad)


def region_box(src_w: int, src_h: int, region: Fractions | None) -> tuple[int, int, int, int]:
    """A crop box given as fractions of the original, in whole source pixels, at least 1 px each way."""
    if region is None:
        return 0, 0, src_w, src_h
    x, y, w, h = region
    x0, y0 = min(round(x * src_w), src_w - 1), min(round(y * src_h), src_h - 1)
    return x0, y0, max(x0 + 1, round((x + w) * src_w)), max(y0 + 1, round((y + h) * src_h))


def _cover_size(rw: int, rh: int, w: int, h: int) -> tuple[int, int]:
    """The largest box of the aspect w:h inside rw x rh."""
    if rw * h > rh * w:  # wider than the box: trim the sides
        return max(1, round(rh * w / h)), rh
    return rw, max(1, round(rw * h / w))


def _start(lo: int, hi: int, size: int, gravity: float | None, point: Share | None) -> int:
    """Where a crop of `size` starts inside [lo, hi): at `gravity` of the slack, or centred on `point`."""
    slack = hi - lo - size
    if point is None:
        return lo + math.floor((gravity if gravity is not None else 0.5) * slack)
    return min(max(round(point - size / 2), lo), lo + slack)


def centre_crop(src_w: int, src_h: int, w: int, h: int) -> Box:
    """The plain centre crop of the aspect w:h (what `fit=cover` with no gravity takes)."""
    cw, ch = _cover_size(src_w, src_h, w, h)
    x0, y0 = (src_w - cw) // 2, (src_h - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


def plan(
    src_w: int,
    src_h: int,
    w: int | None,
    h: int | None,
    fit: str,
    *,
    region: Fractions | None = None,
    gravity: str = "center",
    focus: tuple[Share, Share] | None = None,
    background: Colour | None = None,
) -> Geometry:
    """Fit (src_w, src_h), or the `region` of it, into the requested box without ever enlarging.

    inside: scale to fit within w x h (either may be None), keeping the aspect.
    cover:  crop to the aspect of w x h at `gravity`, or centred on `focus` (fractions of the
            original) when given, then scale down to w x h; when the source is smaller than the
            box, keep the crop at full size.
    pad:    fit inside w x h, then centre on a canvas of exactly w x h in `background`
            (None: transparent).
    """
    rx0, ry0, rx1, ry1 = region_box(src_w, src_h, region)
    rw, rh = rx1 - rx0, ry1 - ry0
    if fit == "cover" and w and h:
        cw, ch = _cover_size(rw, rh, w, h)
        gx, gy = GRAVITIES[gravity]
        px, py = (focus[0] * src_w, focus[1] * src_h) if focus else (None, None)
        x0, y0 = _start(rx0, rx1, cw, gx, px), _start(ry0, ry1, ch, gy, py)
        out = (w, h) if w <= cw and h <= ch else (cw, ch)
        if (cw, ch) != (rw, rh):
            return _geometry(src_w, src_h, out, (x0, y0, x0 + cw, y0 + ch))
        w, h = out  # the region already has the box's aspect: a plain resize of it
    scale = min(w / rw if w else 1.0, h / rh if h else 1.0, 1.0)
    out = (max(1, round(rw * scale)), max(1, round(rh * scale)))
    g = _geometry(src_w, src_h, out, (rx0, ry0, rx1, ry1))
    if fit == "pad" and w and h and out != (w, h):
        return Geometry(g.width, g.height, g.crop, g.centred, Pad(w, h, background))
    return g


def _geometry(src_w: int, src_h: int, out: tuple[int, int], box: tuple[int, int, int, int]) -> Geometry:
    """The output `out` from `box`, labelled canonically: no crop for the whole image, `centred` when
    the box is the one a plain centre crop to this size takes (then the requests share a key)."""
    if box == (0, 0, src_w, src_h):
        return Geometry(out[0], out[1], None)
    return Geometry(out[0], out[1], box, box == centre_crop(src_w, src_h, *out))
