"""Crop parameters in URLs and presets: g, fp, crop, fit=pad and bg (proxy.crops, proxy.variants,
proxy.config), down to the canonical variant name equivalent requests share."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from proxy.config import ConfigError, parse_settings
from proxy.crops import GRAVITY_NAMES, colour
from proxy.imaging.focus import Focus
from proxy.keys import variant_name
from proxy.service import ImageMeta, plan_request
from proxy.variants import VariantRequest
from support.queries import bad, q


def name(query: str, src: tuple[int, int] = (1800, 1200), focus: tuple[float, float] | None = None) -> str:
    """The variant name a query gets on an image of `src` (as the service plans it; render.background white)."""
    r = q(query)
    meta = ImageMeta(
        id="0" * 32, width=src[0], height=src[1], format="jpeg", bytes=1, frames=1, has_alpha=False, created=0.0
    )
    g = plan_request(meta, r, Focus(*focus, "faces") if focus else None, colour(r.bg) if r.bg else (255, 255, 255))
    return variant_name(g, "webp", 80)


@pytest.mark.parametrize("gravity", GRAVITY_NAMES)
def test_every_gravity_parses(gravity: str) -> None:
    assert q(f"w=400&h=400&fit=cover&g={gravity}").g == gravity


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("gravity=n", "g=n"),
        ("g=N", "g=n"),
        ("g=centre", "g=center"),
        ("g=north", "g=n"),
        ("g=c", "g=center"),
        ("background=ffffff", "bg=ffffff"),
        ("bg=%23FFFFFF".replace("%23", "#"), "bg=ffffff"),
        ("bg=FFFFFF", "bg=ffffff"),
    ],
)
def test_aliases_fold(alias: str, canonical: str) -> None:
    fit = "pad" if "bg" in canonical else "cover"
    assert q(f"w=400&h=400&fit={fit}&{alias}") == q(f"w=400&h=400&fit={fit}&{canonical}")


def test_focal_points_and_boxes_are_exact_fractions() -> None:
    assert q("w=400&h=400&fit=cover&fp=0.35,1").fp == (Fraction(35, 100), Fraction(1))
    assert q("w=400&crop=0.1,0,0.5,0.25").crop == (Fraction(1, 10), 0, Fraction(1, 2), Fraction(1, 4))


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("w=400&h=400&fit=cover&fp=0.355,0.5", ["multiple of 1/100", "fp=<x>,<y>"]),
        ("w=400&h=400&fit=cover&fp=1.5,0.5", ["from 0 to 1", "fp=<x>,<y>"]),
        ("w=400&h=400&fit=cover&fp=0.5", ["2 numbers", "fp=<x>,<y>"]),
        ("w=400&h=400&fit=cover&fp=-0.1,0.5", ["2 numbers"]),
        ("w=400&h=400&fit=cover&fp=5e-1,0.5", ["2 numbers"]),
        ("w=400&h=400&fit=cover&fp=nan,0.5", ["2 numbers"]),
        ("w=400&crop=0.1,0.1,0,0.5", ["more than 0", "crop=<x>,<y>,<w>,<h>"]),
        ("w=400&crop=0.6,0,0.5,1", ["inside the image", "crop=<x>,<y>,<w>,<h>"]),
        ("w=400&crop=0,0.5,1,0.51", ["inside the image"]),
        ("w=400&crop=0.001,0,0.5,1", ["multiple of 1/100"]),
        ("w=400&crop=0,0,1", ["4 numbers"]),
        ("w=400&h=400&fit=cover&g=up", ["allowed values: center, n, s"]),
        ("w=400&h=400&fit=pad&bg=123456", ["allowed values: transparent, ffffff, 000000"]),
        ("w=400&h=400&fit=pad&bg=red", ["transparent' or a colour of six hex digits", "bg=<rrggbb>"]),
        ("w=400&g=n", ["need fit=cover"]),
        ("w=400&h=400&fp=0.5,0.5", ["need fit=cover"]),
        ("w=400&h=400&fit=pad&g=auto", ["need fit=cover"]),
        ("w=400&h=400&fit=cover&g=n&fp=0.5,0.5", ["not both"]),
        ("w=400&h=400&fit=cover&bg=ffffff", ["fit=pad"]),
        ("w=400&fit=pad", ["both w and h"]),
        ("fit=pad", ["both w and h"]),
        ("w=0&h=400&fit=pad", ["must be at least 1"]),
        ("p=thumb&g=n", ["cannot be combined with g"]),
        ("p=thumb&bg=ffffff", ["cannot be combined with bg"]),
        ("w=400&h=400&fit=cover&fp=0.5,0.5&fp=0.4,0.4", ["more than once"]),
    ],
)
def test_refused_values_say_what_is_allowed(query: str, words: list[str]) -> None:
    message = bad(query)
    for word in words:
        assert word in message, message


def test_the_grid_is_configurable() -> None:
    coarse = parse_settings({"variants": {"crop_steps": 20}}, Path("/srv")).variants
    assert q("w=400&h=400&fit=cover&fp=0.05,0.95", coarse).fp == (Fraction(1, 20), Fraction(19, 20))
    assert "multiple of 1/20 (at most a multiple of 0.05)" in bad("w=400&h=400&fit=cover&fp=0.01,0.5", coarse)


def test_presets_carry_placement_and_urls_may_add_a_box_or_a_point() -> None:
    v = parse_settings(
        {
            "variants": {
                "presets": {
                    "avatar": {"w": 240, "h": 240, "fit": "cover", "g": "auto"},
                    "square": {"w": 480, "h": 480, "fit": "pad", "bg": "transparent"},
                    "hero": {"w": 1200, "h": 400, "fit": "cover", "fp": "0.5,0.3", "crop": "0,0,1,0.8"},
                }
            }
        },
        Path("/srv"),
    ).variants
    assert q("p=avatar", v) == VariantRequest(w=240, h=240, fit="cover", fmt=None, q=None, g="auto")
    assert q("p=square", v) == VariantRequest(w=480, h=480, fit="pad", fmt=None, q=None, bg="transparent")
    hero = q("p=hero", v)
    assert (hero.fp, hero.crop) == ((Fraction(1, 2), Fraction(3, 10)), (0, 0, 1, Fraction(4, 5)))
    # a cropper UI's box and a hand-placed point are about the image, so they go with a preset
    assert q("p=avatar&crop=0.2,0.1,0.5,0.5&fp=0.4,0.3", v).crop == (
        Fraction(1, 5),
        Fraction(1, 10),
        Fraction(1, 2),
        Fraction(1, 2),
    )
    assert q("p=avatar&dpr=2", v).w == 480


@pytest.mark.parametrize(
    ("preset", "words"),
    [
        ({"w": 240, "h": 240, "fit": "cover", "g": "top"}, "presets.x.g: allowed values"),
        ({"w": 240, "h": 240, "fit": "cover", "fp": "0.333,0.5"}, "presets.x.fp: each number must be a multiple"),
        ({"w": 240, "h": 240, "crop": "0.5,0.5,0.6,0.1"}, "presets.x.crop: the box must lie inside"),
        ({"w": 240, "h": 240, "fit": "pad", "bg": "ff0000"}, "presets.x.bg: 'ff0000' is not in variants.backgrounds"),
        ({"w": 240, "h": 240, "bg": "ffffff"}, 'presets.x.bg: the colour of a pad; it needs fit = "pad"'),
        ({"w": 240, "fit": "pad"}, 'presets.x: fit = "pad" needs both w and h'),
        ({"w": 240, "h": 240, "g": "n"}, "presets.x: g and fp place a cover crop"),
    ],
)
def test_config_refuses_bad_presets_naming_the_key(preset: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"variants": {"presets": {"x": preset}}}, Path("/srv"))
    assert words in str(info.value)


def test_config_backgrounds_are_canonical_and_checked() -> None:
    v = parse_settings({"variants": {"backgrounds": ["#FF0000", "transparent"]}}, Path("/srv")).variants
    assert v.backgrounds == ("ff0000", "transparent")
    assert q("w=400&h=400&fit=pad&bg=ff0000", v).bg == "ff0000"
    with pytest.raises(ConfigError, match=r"variants.backgrounds\[0\]"):
        parse_settings({"variants": {"backgrounds": ["blue"]}}, Path("/srv"))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&g=center"),
        ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&g=n"),  # a landscape square cannot move up or down
        ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&fp=0.5,0.5"),
        ("w=400&h=400&fit=cover&g=w", "w=400&h=400&fit=cover&fp=0,0.5"),
        ("w=400&h=400&fit=cover&g=w", "w=400&h=400&fit=cover&fp=0.1,0.9"),  # pushed back to the same edge
        ("w=400", "w=400&crop=0,0,1,1"),
        ("w=400", "w=400&g=center"),
        ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&crop=0,0,1,1"),
        ("w=240&h=160", "w=240&h=160&fit=pad"),  # nothing to pad: the plain resize, whatever the colour
        ("w=240&h=160", "w=240&h=160&fit=pad&bg=000000"),
        ("w=400&h=400&fit=pad", "w=400&h=400&fit=pad&bg=ffffff"),  # render.background is the default
        ("w=400&h=400&fit=cover&g=auto", "w=400&h=400&fit=cover&fp=0.2,0.5"),  # the point found is the point given
    ],
)
def test_equivalent_requests_share_one_name(a: str, b: str) -> None:
    assert name(a, focus=(0.2, 0.5)) == name(b, focus=(0.2, 0.5))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&g=w"),
        ("w=400&h=400&fit=cover&g=w", "w=400&h=400&fit=cover&g=e"),
        ("w=400&h=400&fit=cover&fp=0.4,0.5", "w=400&h=400&fit=cover&fp=0.41,0.5"),
        ("w=400", "w=400&crop=0,0,0.5,1"),
        ("w=400&h=400&fit=pad", "w=400&h=400&fit=pad&bg=transparent"),
        ("w=400&h=400&fit=pad", "w=400&h=400&fit=inside"),
    ],
)
def test_different_pixels_get_different_names(a: str, b: str) -> None:
    assert name(a) != name(b)


def test_names_of_crops_and_pads() -> None:
    assert name("w=400&h=400&fit=cover&g=w") == "400x400-at0_0_1200_1200-q80.webp"
    assert name("w=400&h=400&fit=pad&bg=transparent") == "400x400-pad400x267-transparent-q80.webp"
    assert name("w=160&h=160&fit=cover") == "160x160-cover-q80.webp"  # as before crops existed
