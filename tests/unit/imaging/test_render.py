"""proxy.imaging.render: one variant from a sanitized original, checked on images made here.

Each output is decoded again and compared with a reference made the slow, plain way (full
decode, one LANCZOS resize), so the shortcuts (JPEG draft decoding, reducing gaps) and the mode
and alpha handling are held to the picture they should give, not just to a size.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageSequence, features

from proxy.config import EncoderSettings
from proxy.formats import FORMATS, OUTPUT_FORMATS
from proxy.imaging.geometry import Geometry, plan
from proxy.imaging.render import NO_QUALITY, RenderJob, default_quality, render
from support.checks import assert_no_metadata
from support.images import adobe_rgb_icc, encoded, mean_difference, opened, srgb_reference

WHITE = (255, 255, 255)
GREEN = (0, 255, 0)
# Our format name -> what Pillow reads back, and the mode an opaque RGB source comes out in.
OUTPUTS = {
    "jpeg": ("JPEG", "RGB"),
    "png": ("PNG", "RGB"),
    "webp": ("WEBP", "RGB"),
    "avif": ("AVIF", "RGB"),
    "gif": ("GIF", "P"),
}
needs_avif = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")


def job(
    g: Geometry, fmt: str, background: tuple[int, int, int] = WHITE, quality: int = 90, animated: bool = False
) -> RenderJob:
    return RenderJob(g, fmt, quality, background, EncoderSettings(), animated)


def rendered(original: bytes, g: Geometry, fmt: str, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """The still variant, decoded."""
    return opened(render(original, job(g, fmt, background)))


def scene(size: tuple[int, int]) -> Image.Image:
    """A picture whose every region differs: a gradient background, a dark block top left, a
    light one bottom right. A shifted, flipped or mis-scaled output differs from it a lot."""
    w, h = size
    im = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
            Image.new("L", size, 120),
        ],
    )
    im.paste((20, 20, 20), (w // 10, h // 10, w * 4 // 10, h * 4 // 10))
    im.paste((240, 240, 200), (w * 6 // 10, h * 6 // 10, w * 9 // 10, h * 9 // 10))
    return im


def reference(source: Image.Image, g: Geometry) -> Image.Image:
    """The output the slow way: the whole decoded source, one LANCZOS resize of the crop."""
    return source.resize((g.width, g.height), Image.Resampling.LANCZOS, box=g.crop)


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=needs_avif) if f == "avif" else f for f in OUTPUTS])
def test_each_output_format_has_the_asked_size_format_and_mode(fmt: str) -> None:
    source = scene((640, 480))
    g = plan(640, 480, 320, None, "inside")
    out = rendered(encoded(source, "PNG"), g, fmt)
    assert (out.format, out.mode, out.size) == (*OUTPUTS[fmt], (320, 240))
    assert Image.MIME[out.format] == FORMATS[fmt].mime
    tolerance = 6 if fmt == "gif" else 3  # GIF: a 256-colour palette
    assert mean_difference(out.convert("RGB"), reference(source, g)) < tolerance


def half_transparent(size: tuple[int, int], alpha_right: int) -> Image.Image:
    """Fully transparent red on the left half, red at `alpha_right` on the right half."""
    im = Image.new("RGBA", size, (255, 0, 0, 0))
    im.paste((255, 0, 0, alpha_right), (size[0] // 2, 0, size[0], size[1]))
    return im


def test_jpeg_composites_transparency_onto_the_background() -> None:
    source = half_transparent((200, 100), alpha_right=128)
    out = rendered(encoded(source, "PNG"), plan(200, 100, 100, None, "inside"), "jpeg", background=GREEN)
    assert out.mode == "RGB"
    left, right = out.getpixel((10, 25)), out.getpixel((90, 25))
    assert all(abs(a - b) <= 8 for a, b in zip(left, GREEN)), left  # clear: the background shows
    assert all(abs(a - b) <= 8 for a, b in zip(right, (128, 127, 0))), right  # half red over green


def test_png_and_webp_keep_transparency() -> None:
    source = half_transparent((200, 100), alpha_right=128)
    for fmt in ("png", "webp"):
        out = rendered(encoded(source, "PNG"), plan(200, 100, 100, None, "inside"), fmt, background=GREEN)
        assert out.mode == "RGBA", fmt
        assert out.getpixel((10, 25))[3] == 0 and abs(out.getpixel((90, 25))[3] - 128) <= 2, fmt


def test_gif_cuts_alpha_at_half_after_blending_onto_the_background() -> None:
    """GIF has on/off transparency: below half is clear, at or above half is opaque and blended."""
    source = Image.new("RGBA", (200, 50), (255, 0, 0, 0))
    for i, alpha in enumerate((0, 100, 200, 255)):
        source.paste((255, 0, 0, alpha), (50 * i, 0, 50 * i + 50, 50))
    out = rendered(encoded(source, "PNG"), plan(200, 50, None, None, "inside"), "gif", background=WHITE).convert("RGBA")
    pixels = [out.getpixel((50 * i + 25, 25)) for i in range(4)]
    assert [p[3] for p in pixels] == [0, 0, 255, 255]
    blended = pixels[2][:3]  # 200/255 red over white: (255, 55, 55)
    assert blended[0] >= 245 and all(abs(c - 55) <= 12 for c in blended[1:]), blended
    assert pixels[3][:3] == (255, 0, 0)


def test_fully_opaque_alpha_is_dropped() -> None:
    source = scene((120, 80)).convert("RGBA")  # an alpha channel, every pixel opaque
    for fmt in ("png", "webp"):
        assert rendered(encoded(source, "PNG"), plan(120, 80, 64, None, "inside"), fmt).mode == "RGB", fmt


@pytest.mark.parametrize(
    ("w", "h", "fit"), [(400, None, "inside"), (160, 160, "cover"), (560, 200, "cover"), (1000, None, "inside")]
)
def test_draft_decoding_of_jpeg_gives_the_asked_size_and_the_same_picture(w: int, h: int | None, fit: str) -> None:
    """A 3000x2000 JPEG asked 400 wide decodes at 1/4 scale inside libjpeg; crops are re-expressed
    in the smaller decode. Size and picture must be those of a full decode and resize."""
    source = scene((3000, 2000))
    original = encoded(source, "JPEG", quality=95)
    g = plan(3000, 2000, w, h, fit)
    out = rendered(original, g, "png")
    assert out.size == (g.width, g.height)
    assert mean_difference(out, reference(opened(original), g)) < 1.5  # a crop off by its offset: about 10


def test_non_jpeg_originals_are_resized_without_draft() -> None:
    source = scene((1500, 1000))
    g = plan(1500, 1000, 400, 400, "cover")
    out = rendered(encoded(source, "PNG"), g, "png")
    assert out.size == (400, 400)
    assert mean_difference(out, reference(source, g)) < 1.5


def test_an_output_the_size_of_the_original_is_the_original() -> None:
    source = scene((320, 200))
    out = rendered(encoded(source, "PNG"), plan(320, 200, None, None, "inside"), "png")
    assert out.tobytes() == source.tobytes()


def animation(durations: list[int]) -> bytes:
    """A GIF of len(durations) frames, each a different colour, looping forever."""
    colours = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (220, 220, 30)]
    frames = [Image.new("RGB", (160, 120), colours[i % len(colours)]) for i in range(len(durations))]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=2)


@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_animations_keep_every_frame_and_its_duration(fmt: str) -> None:
    durations = [100, 250, 400]
    data = render(animation(durations), job(plan(160, 120, 80, None, "inside"), fmt, animated=True))
    im = Image.open(io.BytesIO(data))
    assert im.size == (80, 60) and im.info.get("loop") == 0
    seen = []
    for frame in ImageSequence.Iterator(im):  # one image object, seeked: read each frame as it comes
        frame.load()
        seen.append((frame.info["duration"], frame.convert("RGB").getpixel((40, 30))))
    assert [duration for duration, _ in seen] == durations
    colours = [colour for _, colour in seen]
    assert colours[0][0] > 180 and colours[1][1] > 160 and colours[2][2] > 180, colours  # each frame its own


def test_without_animation_the_first_frame_is_rendered() -> None:
    out = rendered(animation([100, 250, 400]), plan(160, 120, 80, None, "inside"), "webp")
    assert getattr(out, "n_frames", 1) == 1 and out.size == (80, 60)
    red = out.getpixel((40, 30))
    assert red[0] > 180 and red[1] < 60, red


def tagged_jpeg() -> bytes:
    """A JPEG carrying everything a variant must not: EXIF with a camera and GPS, XMP, a comment, an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model 1"  # Model
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/xap/1.0/"/></x:xmpmeta>'
    return encoded(
        scene((800, 600)), "JPEG", exif=exif, xmp=xmp, comment=b"secret comment", icc_profile=adobe_rgb_icc()
    )


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=needs_avif) if f == "avif" else f for f in OUTPUTS])
def test_no_metadata_reaches_a_variant(fmt: str) -> None:
    original = tagged_jpeg()
    tagged = opened(original)
    assert {"exif", "icc_profile", "comment"} <= set(tagged.info)  # the source really carries them
    data = render(original, job(plan(800, 600, 320, None, "inside"), fmt))
    assert_no_metadata(data, fmt)
    assert "icc_profile" not in opened(data).info and b"secret comment" not in data and b"TestCam" not in data


def test_profiled_originals_are_converted_to_srgb_in_the_variant() -> None:
    icc = adobe_rgb_icc()
    source = scene((800, 600))
    g = plan(800, 600, 200, None, "inside")
    out = rendered(encoded(source, "PNG", icc_profile=icc), g, "png")
    assert mean_difference(out, reference(srgb_reference(source, icc), g)) < 1.5
    assert mean_difference(out, reference(source, g)) > 4  # not the untouched pixels


def test_palette_originals_render_in_colour_with_their_transparency() -> None:
    source = scene((300, 200)).quantize(64)
    assert source.mode == "P"
    opaque = rendered(encoded(source, "PNG"), plan(300, 200, 150, None, "inside"), "png")
    assert opaque.mode == "RGB"
    assert mean_difference(opaque, reference(source.convert("RGB"), plan(300, 200, 150, None, "inside"))) < 3
    transparent = encoded(source, "PNG", transparency=source.getpixel((0, 0)))  # one palette entry clear
    out = rendered(transparent, plan(300, 200, 150, None, "inside"), "webp")
    assert out.mode == "RGBA" and out.getchannel("A").getextrema() == (0, 255)


def test_cmyk_originals_render_as_rgb() -> None:
    source = Image.new("CMYK", (200, 100), (0, 255, 255, 0))  # red
    for fmt in ("jpeg", "png", "webp"):
        out = rendered(encoded(source, "JPEG", quality=95), plan(200, 100, 100, None, "inside"), fmt)
        r, g, b = out.getpixel((50, 25))
        assert out.mode == "RGB" and r > 230 and g < 30 and b < 30, (fmt, out.getpixel((50, 25)))


def sixteen_bit_gradient() -> Image.Image:
    """A horizontal ramp over the whole 16-bit range, 0 to 65535."""
    ramp = Image.linear_gradient("L").rotate(90).resize((256, 64))
    return ramp.point(lambda v: v * 257, "I").convert("I;16")


def test_sixteen_bit_grayscale_renders_as_eight_bit_grey_of_the_asked_size() -> None:
    source = sixteen_bit_gradient()
    assert source.mode == "I;16" and source.getextrema() == (0, 65535)
    png = rendered(encoded(source, "PNG"), plan(256, 64, 128, None, "inside"), "png")
    assert (png.mode, png.size) == ("L", (128, 32))
    webp = rendered(encoded(source, "PNG"), plan(256, 64, 128, None, "inside"), "webp")
    assert (webp.mode, webp.size) == ("RGB", (128, 32))  # WebP has no grey mode


def test_sixteen_bit_grayscale_keeps_its_tones() -> None:
    source = sixteen_bit_gradient()
    out = rendered(encoded(source, "PNG"), plan(256, 64, None, None, "inside"), "png")
    expected = source.point(lambda v: v / 257, "I").convert("L")  # the same ramp in 8 bits
    assert mean_difference(out, expected) < 2


def test_default_quality_comes_from_the_encoder_settings() -> None:
    """Formats that take a quality get theirs from [encoders]; lossless ones the value they ignore."""
    e = EncoderSettings(jpeg_quality=71, webp_quality=72, avif_quality=73)
    assert {fmt: default_quality(e, fmt) for fmt in OUTPUT_FORMATS} == {
        "jpeg": 71,
        "webp": 72,
        "avif": 73,
        "png": NO_QUALITY,
        "gif": NO_QUALITY,
    }


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
    job = RenderJob(
        plan(64, 32, 32, None, "inside"), fmt, default_quality(EncoderSettings(), fmt), WHITE, EncoderSettings()
    )
    out = Image.open(io.BytesIO(render(half_transparent_png(), job)))
    assert out.format == FORMATS[fmt].pil_save and out.size == (32, 16)
    rgba = out.convert("RGBA")
    left, right = rgba.getpixel((2, 8)), rgba.getpixel((30, 8))
    assert left[3] == 255 and left[0] > 200
    transparency = FORMATS[fmt].transparency
    if transparency == "none":
        assert out.mode == "RGB" and right[:3] == pytest.approx(WHITE, abs=8)
    else:
        assert right[3] == 0
    if transparency == "binary":
        assert {rgba.getpixel((x, 8))[3] for x in range(32)} <= {0, 255}
