"""proxy.imaging.working: the sRGB working copies made at upload, and which one a variant renders from.

Images are made here: three colour bands side by side, so a copy that is cropped, shifted or
stretched, or a crop re-expressed for the wrong level, shows as a large pixel difference.
"""

from __future__ import annotations

import pytest
from PIL import Image, JpegImagePlugin

from proxy.config import EncoderSettings
from proxy.imaging.geometry import Geometry, plan
from proxy.imaging.render import RenderJob, render
from proxy.imaging.working import OVERSAMPLE, WorkingCopy, from_working_copy, make_working_copies
from support.images import adobe_rgb_icc, encoded, mean_difference, opened, srgb_reference

SIZES = (480, 800, 1280)  # the config default's long sides
BANDS = [(200, 30, 30), (30, 160, 60), (40, 60, 200)]


def banded(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Vertical bands of BANDS, left to right, with a lighter square in the middle of each."""
    w, h = size
    im = Image.new("RGB", size)
    for i, colour in enumerate(BANDS):
        x0, x1 = w * i // 3, w * (i + 1) // 3
        im.paste(colour, (x0, 0, x1, h))
        inset = (x1 - x0) // 4
        im.paste(tuple(min(255, c + 50) for c in colour), (x0 + inset, h // 4, x1 - inset, h * 3 // 4))
    return im.convert(mode)


def sizes_of(copies: list[WorkingCopy]) -> list[tuple[int, int]]:
    return [(c.width, c.height) for c in copies]


def test_one_copy_per_long_side_largest_first_each_decoding_to_its_size() -> None:
    source = banded((2000, 1000))
    copies = make_working_copies(encoded(source, "JPEG", quality=95), SIZES)
    assert sizes_of(copies) == [(1280, 640), (800, 400), (480, 240)]
    for copy in copies:
        im = opened(copy.data)
        assert (copy.format, im.format, im.size, im.mode) == ("jpeg", "JPEG", (copy.width, copy.height), "RGB")
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4: no chroma blur on the coloured edges
        assert "icc_profile" not in im.info and "exif" not in im.info
        assert mean_difference(im, source.resize(im.size, Image.Resampling.LANCZOS)) < 3


def test_portrait_images_scale_by_their_height() -> None:
    copies = make_working_copies(encoded(banded((600, 1200)), "JPEG"), (480,))
    assert sizes_of(copies) == [(240, 480)]


def test_sizes_at_or_above_the_image_are_left_out() -> None:
    stored = encoded(banded((1000, 500)), "PNG")
    assert sizes_of(make_working_copies(stored, (480, 800, 1000, 1280))) == [(800, 400), (480, 240)]
    assert make_working_copies(stored, (1000, 1280)) == []
    assert make_working_copies(stored, ()) == []  # render.working_sizes = []: working copies off


def test_animations_get_no_working_copy() -> None:
    frames = [banded((900, 600)).quantize(), Image.new("RGB", (900, 600), (250, 250, 250)).quantize()]
    stored = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert opened(stored).n_frames == 2
    assert make_working_copies(stored, SIZES) == []


def test_profiled_originals_give_srgb_copies_without_a_profile() -> None:
    icc = adobe_rgb_icc()
    source = banded((1600, 800))
    copies = make_working_copies(encoded(source, "JPEG", quality=95, icc_profile=icc), (480,))
    im = opened(copies[0].data)
    assert "icc_profile" not in im.info
    expected = srgb_reference(source, icc).resize(im.size, Image.Resampling.LANCZOS)
    assert mean_difference(im, expected) < 3
    assert mean_difference(im, source.resize(im.size, Image.Resampling.LANCZOS)) > 6  # the colours did change


def test_transparent_originals_give_webp_copies_that_keep_the_alpha() -> None:
    source = banded((1200, 600), "RGBA")
    alpha = Image.linear_gradient("L").rotate(90).resize(source.size)  # opaque on one side, clear on the other
    source.putalpha(alpha)
    copies = make_working_copies(encoded(source, "PNG"), (800, 480))
    assert sizes_of(copies) == [(800, 400), (480, 240)]
    for copy in copies:
        im = opened(copy.data)
        assert (copy.format, im.format, im.mode) == ("webp", "WEBP", "RGBA")
        expected_alpha = alpha.resize(im.size, Image.Resampling.LANCZOS)
        assert mean_difference(im.getchannel("A"), expected_alpha) < 2


LEVELS = ((1280, 640), (800, 400), (480, 240))  # as make_working_copies lists them for a 2000x1000 original
ORIGINAL = (2000, 1000)


@pytest.mark.parametrize(("width", "level"), [(64, 2), (320, 2), (321, 1), (533, 1), (534, 0), (853, 0)])
def test_the_smallest_level_with_oversample_times_the_output_is_chosen(width: int, level: int) -> None:
    """A level serves outputs up to 1/1.5 of its size: 480 up to 320, 800 up to 533, 1280 up to 853."""
    g = plan(*ORIGINAL, width, None, "inside")
    assert OVERSAMPLE == 1.5
    assert from_working_copy(g, ORIGINAL, LEVELS) == (level, g)


def test_outputs_larger_than_every_level_allows_render_from_the_original() -> None:
    assert from_working_copy(plan(*ORIGINAL, 854, None, "inside"), ORIGINAL, LEVELS) is None
    assert from_working_copy(plan(*ORIGINAL, 1440, None, "inside"), ORIGINAL, LEVELS) is None
    assert from_working_copy(plan(*ORIGINAL, 400, None, "inside"), ORIGINAL, ()) is None


def test_the_choice_does_not_depend_on_the_order_levels_are_listed() -> None:
    g = plan(*ORIGINAL, 400, None, "inside")
    assert from_working_copy(g, ORIGINAL, tuple(reversed(LEVELS))) == (1, g)  # 800x400 is second in that order


def test_a_crop_is_rescaled_to_the_level() -> None:
    """A 300x300 cover crop of the middle needs a level where the crop is at least 450 high: 1280x640,
    at 0.64 scale (in 800x400 it would be 400)."""
    g = plan(*ORIGINAL, 300, 300, "cover")
    assert g == Geometry(300, 300, (500, 0, 1500, 1000))
    index, scaled = from_working_copy(g, ORIGINAL, LEVELS) or (None, None)
    assert index == 0
    assert scaled == Geometry(300, 300, (320.0, 0.0, 960.0, 640.0))


@pytest.mark.parametrize(("w", "h", "fit"), [(400, None, "inside"), (300, 300, "cover"), (320, 100, "cover")])
def test_a_variant_rendered_from_its_level_matches_one_rendered_from_the_original(
    w: int, h: int | None, fit: str
) -> None:
    source = banded(ORIGINAL)
    stored = encoded(source, "JPEG", quality=95)
    copies = make_working_copies(stored, SIZES)
    g = plan(*ORIGINAL, w, h, fit)
    found = from_working_copy(g, ORIGINAL, tuple((c.width, c.height) for c in copies))
    assert found is not None
    index, scaled = found

    def rendered(data: bytes, geometry: Geometry) -> Image.Image:
        return opened(render(data, RenderJob(geometry, "png", 80, (255, 255, 255), EncoderSettings())))

    from_copy, from_original = rendered(copies[index].data, scaled), rendered(stored, g)
    assert from_copy.size == from_original.size == (g.width, g.height)
    assert mean_difference(from_copy, from_original) < 3
