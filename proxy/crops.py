"""The vocabulary of crops, shared by the config (presets may use it) and the query parser.

Compass gravities as points, `fp=`/`crop=` fractions on a grid, and `bg=` colours. Both
proxy.config (a preset `{ g = "auto", fp = "0.5,0.3" }`) and proxy.variants (the same in a
URL) read these words, so they are spelled once, here, and parse the same way in both.
Errors are ValueErrors with a sentence; each caller turns them into its own error type.
"""

from __future__ import annotations

import re
from fractions import Fraction

Colour = tuple[int, int, int]

# Compass gravities as points of the region a cover crop is taken from (fractions of its size).
GRAVITIES: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "n": (0.5, 0.0),
    "s": (0.5, 1.0),
    "e": (1.0, 0.5),
    "w": (0.0, 0.5),
    "ne": (1.0, 0.0),
    "nw": (0.0, 0.0),
    "se": (1.0, 1.0),
    "sw": (0.0, 1.0),
}
GRAVITY_ALIASES = {"centre": "center", "c": "center", "north": "n", "south": "s", "east": "e", "west": "w"}
AUTO = "auto"  # the focal point found in the image at upload
GRAVITY_NAMES = (*GRAVITIES, AUTO)
TRANSPARENT = "transparent"

_FRACTION = re.compile(r"[01](\.[0-9]+)?")


def gravity(text: str) -> str:
    """A gravity name, aliases folded; ValueError for anything else."""
    name = GRAVITY_ALIASES.get(text.lower(), text.lower())
    if name not in GRAVITY_NAMES:
        raise ValueError(f"allowed values: {', '.join(GRAVITY_NAMES)} (center is the default)")
    return name


def fractions(text: str, count: int, steps: int) -> tuple[Fraction, ...]:
    """`count` comma-separated numbers from 0 to 1, each a multiple of 1/steps, exactly.

    Exact (Fraction) so that 0.35 is 35/100 and a finer value is refused rather than
    rounded: a URL either names a point of the grid or is an error, never an alias.
    """
    parts = text.split(",")
    if len(parts) != count or not all(_FRACTION.fullmatch(p.strip()) for p in parts):
        raise ValueError(f"must be {count} numbers from 0 to 1 separated by commas")
    values = tuple(Fraction(p.strip()) for p in parts)
    if any(v > 1 for v in values):
        raise ValueError("each number must be from 0 to 1 (fractions of the original's width and height)")
    if any((v * steps).denominator != 1 for v in values):
        raise ValueError(f"each number must be a multiple of 1/{steps} (at most {precision(steps)})")
    return values


def precision(steps: int) -> str:
    """How a multiple of 1/steps is written, for error messages: "2 decimals", "a multiple of 0.05"."""
    if 10 ** (len(str(steps)) - 1) == steps:
        return f"{len(str(steps)) - 1} decimals"
    return f"a multiple of {float(Fraction(1, steps)):g}"


def crop_box(text: str, steps: int) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """`x,y,w,h` of the original: on the grid, not empty, and inside the image."""
    x, y, w, h = fractions(text, 4, steps)
    if w == 0 or h == 0:
        raise ValueError("the box's width and height must be more than 0")
    if x + w > 1 or y + h > 1:
        raise ValueError("the box must lie inside the image: x + w <= 1 and y + h <= 1")
    return x, y, w, h


def background(text: str) -> str:
    """A background's canonical spelling: `transparent` or six lowercase hex digits (no '#')."""
    value = text.strip().lower().lstrip("#")
    if value == TRANSPARENT or re.fullmatch(r"[0-9a-f]{6}", value):
        return value
    raise ValueError("must be 'transparent' or a colour of six hex digits like ffffff")


def colour(label: str) -> Colour | None:
    """The RGB of a canonical background label; None for transparent."""
    if label == TRANSPARENT:
        return None
    return int(label[0:2], 16), int(label[2:4], 16), int(label[4:6], 16)
