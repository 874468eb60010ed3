"""proxy.imaging.render: one encoder per output format, default qualities, transparency per format."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from proxy.config import EncoderSettings
from proxy.formats import FORMATS, OUTPUT_FORMATS
from proxy.imaging.geometry import plan
from proxy.imaging.render import NO_QUALITY, RenderJob, default_quality, render

BACKGROUND = (255, 255, 255)


def test_default_quality_comes_from_the_encoder_settings() -> None:
    """Formats that take a quality get theirs from [encoders]; lossless ones the value they ignore."""
    e = EncoderSettings(jpeg_quality=71, webp_quality=72, avif_quality=73)
    assert {fmt: default_quality(e, fmt) for fmt in OUTPUT_FORMATS} == {
        "jpeg": 71, "webp": 72, "avif": 73, "png": NO_QUALITY, "gif": NO_QUALITY}


def half_transparent_png() -> bytes:
    """Left half opaque red, right half fully transparent, a strip of 50 % alpha in the middle."""
    im = Image.new("RGBA", (64, 32), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (40, 0, 64, 32))
    im.paste((0, 0, 255, 128), (32, 0, 40, 32))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_each_output_is_written_in_its_format_with_the_transparency_it_keeps(fmt: str) -> None:
    """The encoder table writes every output; alpha is kept, cut to on/off, or composited as the format allows."""
    job = RenderJob(plan(64, 32, 32, None, "inside"), fmt, default_quality(EncoderSettings(), fmt), BACKGROUND,
                    EncoderSettings())
    out = Image.open(io.BytesIO(render(half_transparent_png(), job)))
    assert out.format == FORMATS[fmt].pil_save and out.size == (32, 16)
    rgba = out.convert("RGBA")
    left, right = rgba.getpixel((2, 8)), rgba.getpixel((30, 8))
    assert left[3] == 255 and left[0] > 200
    transparency = FORMATS[fmt].transparency
    if transparency == "none":
        assert out.mode == "RGB" and right[:3] == pytest.approx(BACKGROUND, abs=8)
    else:
        assert right[3] == 0
    if transparency == "binary":
        assert {rgba.getpixel((x, 8))[3] for x in range(32)} <= {0, 255}
