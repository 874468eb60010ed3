"""Pixel modes: every mode the accepted decoders produce, and what each one becomes.

Pillow's readers hand back more modes than its writers take: TIFF alone gives LAB,
YCbCr, PA, La, 32-bit integer (I) and float (F) pixels, and Pillow 13's PNG writer
takes none of them (nor mode I). Refusing those files would refuse pictures that
decode cleanly, so each mode has one rule here, used at upload (what a lossless
original is stored as) and when rendering (what is resized and encoded):

    1 L LA P RGB RGBA I;16 I;16B   kept: PNG stores them as they are
    La, RGBa (premultiplied)        -> LA, RGBA
    PA (palette + alpha)            -> RGBA
    YCbCr                           -> RGB
    LAB                             -> RGB, converted to sRGB by LittleCMS
    I (32-bit), F (float)           -> I;16: values already in 0..65535 (I) or 0..1 (F) keep
                                       their meaning; any other range is stretched onto 0..65535
    CMYK                            kept here; imaging.colour converts it to sRGB (with its profile)

Rendering then narrows to 8 bits: palette and 1-bit images widen to L/RGB(A), and 16-bit
grey is scaled (v / 257), not clipped to 255 as Pillow's own I;16 -> L conversion does.
"""

from __future__ import annotations

from typing import cast

from PIL import Image, ImageCms

# Modes a PNG holds as they are; together with CMYK (converted by colour.to_srgb) the modes
# that leave `widened`.
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B"})
# Every other mode Pillow's accepted readers produce, with the mode it becomes (see the table above).
WIDENED = {"La": "LA", "RGBa": "RGBA", "PA": "RGBA", "YCbCr": "RGB", "LAB": "RGB", "I": "I;16", "F": "I;16"}
SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_WHITE_16 = 65535

# LittleCMS's Lab (D50, the ICC connection space) to sRGB; NOCACHE: safe from several threads.
_LAB_TO_SRGB = ImageCms.buildTransform(
    ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB", flags=ImageCms.Flags.NOCACHE
)


def _to_sixteen_bit(im: Image.Image) -> Image.Image:
    """32-bit integer or float grey as 16-bit grey, keeping the nominal range's meaning (see module doc)."""
    low, high = cast(tuple[float, float], im.getextrema())  # one band: (min, max)
    nominal = _WHITE_16 if im.mode == "I" else 1.0
    if 0 <= low and high <= nominal:
        scale, offset = _WHITE_16 / nominal, 0.0
    else:
        scale = _WHITE_16 / (high - low) if high > low else 0.0
        offset = -low * scale
    if (scale, offset) != (1.0, 0.0):
        im = im.point(lambda v: v * scale + offset + 0.5)  # +0.5: rounds, as the conversion below truncates
    return im.convert("I").convert("I;16")


def widened(im: Image.Image) -> Image.Image:
    """`im` in one of PNG_MODES or CMYK, with the same picture (modes outside WIDENED pass as they are)."""
    target = WIDENED.get(im.mode)
    if target is None:
        return im
    if im.mode == "LAB":
        return _LAB_TO_SRGB.apply(im)
    if target == "I;16":
        return _to_sixteen_bit(im)
    return im.convert(target)


def eight_bit(im: Image.Image) -> Image.Image:
    """`im` (after `widened`) in L, LA, RGB, RGBA or CMYK, the modes LANCZOS and the encoders take."""
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "1":
        return im.convert("L")
    if im.mode in SIXTEEN_BIT:
        return im.convert("I").point(lambda v: v / 257).convert("L")
    return im
