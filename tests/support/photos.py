"""Real photos for the crop tests, and off-centre scenes composed from them, each with the box a
crop must keep (a face, or the salient object), known from looking at the photo.

The photos are scikit-image's sample data (installed with the test extra, never copied into this
repository); their licences, as scikit-image's `skimage.data` documents them:

| photo | subject | licence |
|---|---|---|
| `astronaut` | Eileen Collins, NASA portrait | public domain (NASA Great Images; no known copyright restrictions) |
| `chelsea` | Chelsea the cat | CC0, by the photographer Stefan van der Walt |
| `coffee` | an espresso cup on a saucer | CC0, by the photographer Rachel Michetti (courtesy of Pikolo Espresso Bar) |

Scenes put the photo into one third of a wider (or the top of a taller) canvas whose backdrop
is the same photo stretched, blurred and greyed, like a subject shot against an out-of-focus
background: the known box moves with the photo, and a centre crop of the canvas misses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PIL import Image, ImageEnhance, ImageFilter

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels

# Boxes in the photos' own pixels (brow to chin; eyes to chin for the cat; the cup without saucer).
ASTRONAUT_FACE: Box = (178, 70, 272, 175)
CHELSEA_FACE: Box = (130, 60, 350, 280)
COFFEE_CUP: Box = (172, 18, 410, 300)


@dataclass(frozen=True)
class Scene:
    name: str
    image: Image.Image
    keep: Box  # what a crop must contain
    by: str  # how the detector should find it: "faces" or "saliency"


def photo(name: str) -> Image.Image:
    """One of scikit-image's sample photos as an RGB image; skips the test without scikit-image."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (the test extra) provides the photos")
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def backdrop(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The photo stretched to `size`, blurred and greyed: an out-of-focus background."""
    soft = im.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(max(size) / 40))
    return ImageEnhance.Contrast(ImageEnhance.Color(soft).enhance(0.25)).enhance(0.6)


def placed(im: Image.Image, size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    canvas = backdrop(im, size)
    canvas.paste(im, at)
    return canvas


def moved(box: Box, at: tuple[int, int]) -> Box:
    return box[0] + at[0], box[1] + at[1], box[2] + at[0], box[3] + at[1]


def scenes() -> list[Scene]:
    """The portrait as it is, and subjects off-centre: faces left, at the top; a product right; a cat left."""
    astronaut, chelsea, coffee = photo("astronaut"), photo("chelsea"), photo("coffee")
    aw, ah = astronaut.size
    return [
        Scene("portrait", astronaut, ASTRONAUT_FACE, "faces"),
        Scene("portrait-left-third", placed(astronaut, (aw * 3, ah), (0, 0)), ASTRONAUT_FACE, "faces"),
        Scene("portrait-tall", placed(astronaut, (aw, ah * 2), (0, 0)), ASTRONAUT_FACE, "faces"),
        Scene(
            "product-right-third",
            placed(coffee, (coffee.width * 3, coffee.height), (coffee.width * 2, 0)),
            moved(COFFEE_CUP, (coffee.width * 2, 0)),
            "saliency",
        ),
        Scene("cat-left-third", placed(chelsea, (chelsea.width * 3, chelsea.height), (0, 0)), CHELSEA_FACE, "saliency"),
    ]


def contains(outer: tuple[float, float, float, float], inner: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]
