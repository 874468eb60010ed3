"""Output geometry: from a request (w, h, fit) and the original's size to pixels.

Kept separate from rendering because the service needs the result *before*
rendering: the canonical variant key is derived from the geometry, so requests
that produce the same pixels (w=2048 and w=1920 on a 1800-wide original; a
cover whose aspect equals the original's and a plain resize) share one key,
one render and one stored object.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Geometry:
    width: int  # output size
    height: int
    crop: tuple[float, float, float, float] | None  # box in source pixels, None for the whole image

    @property
    def key(self) -> str:
        """Stable text for the variant key; a crop is fully determined by the size and 'cover'."""
        return f"{self.width}x{self.height}" + ("-cover" if self.crop else "")

    def scaled(self, sx: float, sy: float) -> Geometry:
        """The same output taken from a source scaled by (sx, sy), e.g. the working copy."""
        crop = self.crop and (self.crop[0] * sx, self.crop[1] * sy, self.crop[2] * sx, self.crop[3] * sy)
        return Geometry(self.width, self.height, crop)


def plan(src_w: int, src_h: int, w: int | None, h: int | None, fit: str) -> Geometry:
    """Fit (src_w, src_h) into the requested box without ever enlarging.

    inside: scale to fit within w x h (either may be None), keeping the aspect.
    cover:  centre-crop to the aspect of w x h, then scale down to w x h; when
            the original is smaller than the box, keep the crop at full size.
    """
    if fit == "cover" and w and h:
        if src_w * h > src_h * w:  # source is wider than the box: trim the sides
            cw, ch = max(1, round(src_h * w / h)), src_h
        else:
            cw, ch = src_w, max(1, round(src_w * h / w))
        x0, y0 = (src_w - cw) // 2, (src_h - ch) // 2
        out = (w, h) if w <= cw and h <= ch else (cw, ch)
        crop = None if (cw, ch) == (src_w, src_h) else (x0, y0, x0 + cw, y0 + ch)
        if crop is None:
            return plan(src_w, src_h, out[0], out[1], "inside")
        return Geometry(out[0], out[1], crop)
    scale = min(w / src_w if w else 1.0, h / src_h if h else 1.0, 1.0)
    return Geometry(max(1, round(src_w * scale)), max(1, round(src_h * scale)), None)
