"""Output geometry for crops: gravity, focal points, crop boxes and fit=pad (proxy.imaging.geometry.plan),
and the canonical key that equivalent requests share and different pixels never do."""

from __future__ import annotations

import itertools

import pytest

from proxy.crops import GRAVITIES
from proxy.imaging.geometry import Geometry, Pad, centre_crop, plan, region_box

WIDE = (1800, 1200)  # a 3:2 landscape photo
TALL = (1200, 1800)


def box_size(g: Geometry) -> tuple[float, float]:
    assert g.crop is not None
    return g.crop[2] - g.crop[0], g.crop[3] - g.crop[1]


@pytest.mark.parametrize("gravity", list(GRAVITIES))
@pytest.mark.parametrize("src", [WIDE, TALL])
@pytest.mark.parametrize(("w", "h"), [(400, 400), (160, 320), (640, 200)])
def test_every_gravity_gives_the_exact_size_from_a_box_of_its_aspect_inside_the_image(
    gravity: str, src: tuple[int, int], w: int, h: int
) -> None:
    g = plan(*src, w, h, "cover", gravity=gravity)
    assert (g.width, g.height) == g.output == (w, h)
    assert g.crop is not None
    x0, y0, x1, y1 = g.crop
    assert 0 <= x0 < x1 <= src[0] and 0 <= y0 < y1 <= src[1]
    bw, bh = box_size(g)
    assert abs(bw / bh - w / h) < 0.01


def test_compass_gravities_take_the_edges_they_name() -> None:
    """A square of a landscape photo can only move sideways: w/e take the edges, n/s equal the centre."""
    assert plan(*WIDE, 400, 400, "cover", gravity="w").crop == (0, 0, 1200, 1200)
    assert plan(*WIDE, 400, 400, "cover", gravity="e").crop == (600, 0, 1800, 1200)
    assert plan(*WIDE, 400, 400, "cover", gravity="nw").crop == (0, 0, 1200, 1200)
    assert plan(*TALL, 400, 400, "cover", gravity="n").crop == (0, 0, 1200, 1200)
    assert plan(*TALL, 400, 400, "cover", gravity="s").crop == (0, 600, 1200, 1800)


def test_a_gravity_that_cannot_move_the_crop_shares_the_centre_key() -> None:
    centre = plan(*WIDE, 400, 400, "cover")
    assert centre.key == "400x400-cover"
    for gravity in ("center", "n", "s"):
        assert plan(*WIDE, 400, 400, "cover", gravity=gravity) == centre
    assert plan(*WIDE, 400, 400, "cover", gravity="w").key == "400x400-at0_0_1200_1200"


def test_a_focal_point_centres_the_crop_and_is_pushed_back_inside() -> None:
    assert plan(*WIDE, 400, 400, "cover", focus=(0.5, 0.5)).key == "400x400-cover"
    assert plan(*WIDE, 400, 400, "cover", focus=(0.4, 0.5)).crop == (120, 0, 1320, 1200)  # 720 - 600
    assert plan(*WIDE, 400, 400, "cover", focus=(0.05, 0.5)).crop == (0, 0, 1200, 1200)
    assert plan(*WIDE, 400, 400, "cover", focus=(1.0, 0.0)).crop == (600, 0, 1800, 1200)
    # a focal point wins over a gravity
    assert plan(*TALL, 400, 400, "cover", gravity="s", focus=(0.5, 0.2)).crop == (0, 0, 1200, 1200)


def test_different_source_boxes_never_share_a_key() -> None:
    """Every 1/100 focal point on a line: as many keys as distinct boxes, each naming its box."""
    plans = [plan(*WIDE, 400, 400, "cover", focus=(x / 100, 0.5)) for x in range(101)]
    by_key: dict[str, Geometry] = {}
    for g in plans:
        assert by_key.setdefault(g.key, g) == g
    assert len(by_key) == len({g.crop for g in plans})


def test_a_crop_box_is_cut_first_and_then_resized() -> None:
    g = plan(*WIDE, 400, None, "inside", region=(0.25, 0.25, 0.5, 0.5))
    assert g.crop == (450, 300, 1350, 900)
    assert (g.width, g.height) == (400, 267)
    assert g.key == "400x267-at450_300_1350_900"


def test_a_crop_box_smaller_than_the_output_is_never_enlarged() -> None:
    g = plan(*WIDE, 800, None, "inside", region=(0, 0, 0.1, 0.1))
    assert (g.width, g.height) == (180, 120)


def test_a_crop_box_of_the_whole_image_is_no_crop() -> None:
    assert plan(*WIDE, 400, None, "inside", region=(0, 0, 1, 1)) == plan(*WIDE, 400, None, "inside")
    assert plan(*WIDE, 400, 400, "cover", region=(0, 0, 1, 1), gravity="e") == plan(
        *WIDE, 400, 400, "cover", gravity="e"
    )


def test_cover_inside_a_crop_box_places_the_crop_within_the_box() -> None:
    g = plan(*WIDE, 200, 200, "cover", region=(0.5, 0, 0.5, 1), gravity="n")
    assert g.crop == (900, 0, 1800, 900)
    # a focal point outside the box is pushed back into it
    assert plan(*WIDE, 200, 200, "cover", region=(0.5, 0, 0.5, 1), focus=(0.0, 1.0)).crop == (900, 300, 1800, 1200)


def test_a_box_that_is_the_centre_crop_shares_its_key_however_it_was_asked() -> None:
    """crop= of exactly the centre square, resized inside, gives the pixels of the centre cover crop."""
    boxed = plan(*WIDE, 400, 400, "inside", region=(300 / 1800, 0, 1200 / 1800, 1))
    assert boxed == plan(*WIDE, 400, 400, "cover")
    assert boxed.key == "400x400-cover"


def test_region_boxes_are_whole_pixels_and_never_empty() -> None:
    assert region_box(*WIDE, (0.1, 0.2, 0.3, 0.4)) == (180, 240, 720, 720)
    assert region_box(50, 50, (0.99, 0.99, 0.01, 0.01)) == (49, 49, 50, 50)


@pytest.mark.parametrize(("w", "h"), [(400, 400), (400, 160), (160, 400), (2048, 2048)])
@pytest.mark.parametrize("src", [WIDE, TALL, (300, 200)])
def test_pad_is_exactly_the_box_with_the_image_fitted_and_centred_inside(src: tuple[int, int], w: int, h: int) -> None:
    g = plan(*src, w, h, "pad", background=(0, 0, 0))
    inside = plan(*src, w, h, "inside")
    assert g.output == (w, h)
    assert (g.width, g.height) == (inside.width, inside.height)
    x, y = g.offset
    assert 0 <= x and x + g.width <= w and 0 <= y and y + g.height <= h
    assert abs(x - (w - g.width - x)) <= 1 and abs(y - (h - g.height - y)) <= 1


def test_pad_keys_name_the_canvas_the_image_and_the_colour() -> None:
    assert plan(*WIDE, 400, 400, "pad", background=(255, 255, 255)).key == "400x400-pad400x267-ffffff"
    assert plan(*WIDE, 400, 400, "pad", background=None).key == "400x400-pad400x267-transparent"
    assert (
        plan(*WIDE, 400, 400, "pad", region=(0, 0, 0.5, 1), background=None).key
        == "400x400-at0_0_900_1200-pad300x400-transparent"
    )


def test_a_pad_with_nothing_to_pad_is_the_plain_resize_whatever_the_colour() -> None:
    """The box has the image's aspect: no canvas shows, so the colour cannot change a pixel."""
    plain = plan(*WIDE, 300, 200, "inside")
    assert plan(*WIDE, 300, 200, "pad", background=(0, 0, 0)) == plain
    assert plan(*WIDE, 300, 200, "pad", background=None) == plain
    assert plain.pad is None and plain.key == "300x200"


def test_scaling_to_a_working_copy_keeps_the_label_and_the_canvas() -> None:
    g = plan(*WIDE, 200, 200, "pad", region=(0, 0, 0.5, 0.5), background=None)
    scaled = g.scaled(0.5, 0.5)
    assert scaled.pad == g.pad == Pad(200, 200, None)
    assert scaled.crop == (0, 0, 450, 300)
    assert (scaled.width, scaled.height, scaled.centred) == (g.width, g.height, g.centred)


def test_existing_keys_keep_their_names() -> None:
    """Variants stored before crops existed keep their keys: plain resizes and centre cover crops."""
    assert plan(*WIDE, 400, None, "inside").key == "400x267"
    assert plan(*WIDE, 160, 160, "cover").key == "160x160-cover"
    assert plan(300, 200, 400, 400, "cover").key == "200x200-cover"  # never enlarged
    assert centre_crop(*WIDE, 1, 1) == (300, 0, 1500, 1200)


def test_equal_keys_mean_equal_pixels_over_many_requests() -> None:
    """Across gravities, points, boxes and pads: one key never stands for two different outputs."""
    seen: dict[str, tuple[object, ...]] = {}
    regions = [None, (0, 0, 1, 1), (0, 0, 0.5, 1), (0.25, 0.25, 0.5, 0.5)]
    for (w, h), fit, region, gravity, focus in itertools.product(
        [(400, 400), (400, 200), (300, 200)],
        ["inside", "cover", "pad"],
        regions,
        ["center", "n", "w", "se"],
        [None, (0.1, 0.9), (0.5, 0.5)],
    ):
        g = plan(*WIDE, w, h, fit, region=region, gravity=gravity, focus=focus, background=(0, 0, 0))
        pixels = (g.output, g.width, g.height, g.crop, g.offset, g.pad)
        assert seen.setdefault(g.key, pixels) == pixels, g.key
