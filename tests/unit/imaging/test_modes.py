"""proxy.imaging.modes: every mode Pillow's accepted readers produce has a rule, and each rule keeps the picture."""

from __future__ import annotations

import pytest
from PIL import BmpImagePlugin, Image, ImageCms, PngImagePlugin, TiffImagePlugin

from proxy.imaging.modes import PNG_MODES, WIDENED, eight_bit, widened
from proxy.imaging.render import resizable

RENDERED = {"L", "LA", "RGB", "RGBA", "CMYK"}  # what render() resizes and encodes


def reader_modes() -> set[str]:
    """The modes Pillow's TIFF, PNG and BMP readers declare (the readers with the widest range)."""
    tiff = {mode for mode, *_ in TiffImagePlugin.OPEN_INFO.values()}
    png = {mode for mode, _ in PngImagePlugin._MODES.values()}
    bmp = {mode for mode, _ in BmpImagePlugin.BIT2MODE.values()}
    return tiff | png | bmp


def test_every_mode_a_reader_declares_has_a_rule() -> None:
    """A mode Pillow can decode is either stored as it is, widened to one that is, or CMYK (colour.to_srgb)."""
    assert reader_modes() <= PNG_MODES | set(WIDENED) | {"CMYK"}, reader_modes() - PNG_MODES - set(WIDENED)
    assert set(WIDENED.values()) <= PNG_MODES


@pytest.mark.parametrize("mode", sorted(PNG_MODES | set(WIDENED) | {"CMYK"}))
def test_each_mode_widens_to_a_png_mode_and_narrows_to_a_rendered_one(mode: str) -> None:
    im = Image.new(mode, (4, 2))
    assert widened(im).mode in PNG_MODES | {"CMYK"}
    assert resizable(im).mode in RENDERED


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped() -> None:
    """Pillow's own I;16 -> L clips at 255 (a mid grey would turn white); v / 257 keeps the level."""
    for mode in ("I;16", "I;16B"):
        grey = Image.new(mode, (2, 1), 128 * 257)
        grey.putpixel((1, 0), 65535)
        assert [eight_bit(grey).getpixel((x, 0)) for x in (0, 1)] == [128, 255], mode


@pytest.mark.parametrize(
    "mode,values,expected",
    [
        ("I", (0, 30000, 65535), (0, 30000, 65535)),  # 16-bit range: kept as it is
        ("I", (-100, 0, 100), (0, 32768, 65535)),  # beyond it: stretched onto 0..65535
        ("F", (0.0, 0.5, 1.0), (0, 32768, 65535)),  # 0..1 is black..white
        ("F", (10.0, 20.0, 30.0), (0, 32768, 65535)),  # any other range: stretched
    ],
)
def test_integer_and_float_grey_become_sixteen_bit(
    mode: str, values: tuple[float, ...], expected: tuple[int, ...]
) -> None:
    im = Image.new(mode, (3, 1))
    for x, value in enumerate(values):
        im.putpixel((x, 0), value)
    out = widened(im)
    assert out.mode == "I;16"
    assert [out.getpixel((x, 0)) for x in range(3)] == pytest.approx(expected, abs=1)


def test_a_flat_image_outside_the_nominal_range_stays_flat() -> None:
    out = widened(Image.new("F", (3, 1), 7.5))
    assert out.getextrema() == (0, 0)


def test_lab_and_ycbcr_become_rgb_with_their_colours() -> None:
    """LAB through LittleCMS to sRGB, YCbCr by Pillow: the colours survive within rounding (8-bit Lab
    steps are coarse in saturated blue: up to 9 levels of red there, about 2 delta E)."""
    colours = [(220, 30, 40), (40, 60, 220), (255, 255, 255), (128, 128, 128)]
    rgb = Image.new("RGB", (len(colours), 1))
    for x, colour in enumerate(colours):
        rgb.putpixel((x, 0), colour)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = to_lab.apply(rgb)
    for source in (lab, rgb.convert("YCbCr")):
        out = widened(source)
        assert out.mode == "RGB"
        for x, colour in enumerate(colours):
            assert out.getpixel((x, 0)) == pytest.approx(colour, abs=10), (source.mode, colour)


def test_premultiplied_and_palette_alpha_keep_their_alpha() -> None:
    pa = Image.new("P", (2, 1))
    pa.putpalette([255, 0, 0, 0, 0, 255])
    pa.putpixel((1, 0), 1)
    pa = pa.convert("PA")
    pa.putpixel((1, 0), (1, 0))  # the blue pixel fully transparent
    out = widened(pa)
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (255, 0, 0, 255) and out.getpixel((1, 0))[3] == 0
    assert widened(Image.new("La", (1, 1), (0, 128))).mode == "LA"
    assert widened(Image.new("RGBa", (1, 1), (0, 0, 0, 128))).mode == "RGBA"
