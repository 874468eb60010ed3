"""proxy.imaging.colour.to_srgb: wide-gamut and CMYK pixels to sRGB, everything else left alone.

The expected colours come from LittleCMS through ImageCms.profileToProfile, a different entry
point from the cached transforms the module builds. The Adobe RGB (1998) profile is read from a
corpus file (only its ICC bytes, applied to images made here): Pillow builds no RGB profile but
sRGB, so the tests that need it skip without the corpus.
"""

from __future__ import annotations

import pytest
from PIL import Image, ImageCms

from proxy.imaging.colour import to_srgb
from support.images import SRGB, adobe_rgb_icc, max_difference, srgb_reference

SRGB_ICC = ImageCms.ImageCmsProfile(SRGB).tobytes()
# Saturated colours: where Adobe RGB and sRGB differ most; grey stays grey in both.
SWATCHES = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (230, 200, 40), (128, 128, 128)]


@pytest.fixture(scope="module")
def adobe_icc() -> bytes:
    return adobe_rgb_icc()


def swatches(mode: str = "RGB") -> Image.Image:
    """One 8x8 patch per colour of SWATCHES, side by side."""
    im = Image.new("RGB", (8 * len(SWATCHES), 8))
    for i, colour in enumerate(SWATCHES):
        im.paste(colour, (8 * i, 0, 8 * i + 8, 8))
    return im.convert(mode)


def test_adobe_rgb_pixels_become_srgb(adobe_icc: bytes) -> None:
    source = swatches()
    out = to_srgb(source, adobe_icc)
    assert out.mode == "RGB" and out.size == source.size
    assert max_difference(out, srgb_reference(source, adobe_icc)) <= 1
    assert max_difference(out, source) >= 20  # a real conversion: saturated Adobe RGB is outside sRGB
    red = out.getpixel((4, 4))
    assert red[0] > 200 and red[1] < 40  # Adobe RGB (200, 40, 40) is a more saturated red in sRGB


CMYK_RED = (0, 255, 255, 0)  # full magenta and yellow, no cyan or black


def test_untagged_cmyk_becomes_rgb() -> None:
    out = to_srgb(Image.new("CMYK", (8, 8), CMYK_RED), None)
    assert out.mode == "RGB" and out.getextrema() == ((255, 255), (0, 0), (0, 0))


def test_cmyk_under_a_profile_for_rgb_still_becomes_rgb(adobe_icc: bytes) -> None:
    """A profile that does not fit the pixels cannot apply: the plain conversion, not an error."""
    out = to_srgb(Image.new("CMYK", (8, 8), CMYK_RED), adobe_icc)
    assert out.mode == "RGB" and out.getextrema() == ((255, 255), (0, 0), (0, 0))


def test_untagged_and_srgb_tagged_pixels_are_unchanged() -> None:
    for mode in ("RGB", "RGBA", "L", "LA"):
        source = swatches(mode)
        for icc in (None, b"", SRGB_ICC):
            out = to_srgb(source, icc)
            assert out.mode == mode, (mode, icc)
            assert out.tobytes() == source.tobytes(), (mode, icc)


@pytest.mark.parametrize(
    "icc",
    [
        b"not an icc profile",
        b"\x00" * 128,
        SRGB_ICC[:64],
        ImageCms.ImageCmsProfile(ImageCms.createProfile("XYZ")).tobytes(),
    ],
    # Named, not derived from the bytes: littleCMS stamps a made profile with the time, and pytest-xdist
    # refuses a run whose workers collected different ids (seen in CI when collection straddled a second).
    ids=["text", "zeros", "truncated-srgb", "xyz-profile"],
)
def test_an_unreadable_profile_is_ignored(icc: bytes) -> None:
    """As browsers do: the pixels are shown as they are, and nothing raises. The last profile is
    readable but cannot describe RGB pixels (no transform can be built from it)."""
    source = swatches()
    out = to_srgb(source, icc)
    assert out.mode == "RGB" and out.tobytes() == source.tobytes()


def test_alpha_is_kept_while_the_colour_is_converted(adobe_icc: bytes) -> None:
    source = swatches("RGBA")
    alpha = Image.linear_gradient("L").resize(source.size)
    source.putalpha(alpha)
    out = to_srgb(source, adobe_icc)
    assert out.mode == "RGBA"
    assert out.getchannel("A").tobytes() == alpha.tobytes()
    assert max_difference(out.convert("RGB"), srgb_reference(source.convert("RGB"), adobe_icc)) <= 1
