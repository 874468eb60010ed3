"""Pick an output format from the browser's Accept header, and a density or width from client hints.

Browsers name the modern formats explicitly (`image/avif,image/webp,*/*`);
a wildcard never implies AVIF or WebP, because old clients send `*/*` and
cannot decode them. The answer depends only on which of the two are accepted,
so a CDN that normalises Accept the same way keeps at most three copies.
Which formats need naming, animate or keep transparency is read from
proxy.formats; the preference is its OUTPUT_FORMATS order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from proxy.formats import FALLBACK, FORMATS, OUTPUT_FORMATS


def _weight(params: str) -> float:
    """The q value of one Accept entry (1 when absent or unreadable, as RFC 9110 defaults it)."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 1.0
    return 1.0


def accepted_types(accept: str) -> set[str]:
    """Media types in `accept` with a non-zero q, lower-cased, parameters dropped."""
    types = set()
    for part in accept.lower().split(","):
        media, _, params = part.partition(";")
        if media.strip() and _weight(params) > 0:
            types.add(media.strip())
    return types


def pick_format(
    accept: str, allowed: tuple[str, ...], has_alpha: bool, animated: bool = False, size: tuple[int, int] = (1, 1)
) -> str:
    """The best allowed format the client takes that keeps what the image has and holds its `size`.

    Best first: AVIF, WebP (each only when Accept names it), JPEG, PNG, GIF. A
    transparent image skips formats without an alpha channel (so PNG, not JPEG,
    when neither modern format is accepted). An animation (`animated`: its
    variants keep their frames) takes formats that animate first, WebP then GIF,
    so a browser that takes AVIF still gets the moving picture, not a still;
    when none is allowed it is served as a still, and keeping its frames wins over
    keeping partial transparency (a GIF). A format that cannot hold an output of `size`
    (WebP past 16383 pixels a side) is skipped, so a very tall image falls back to JPEG or
    PNG. JPEG when nothing else fits (the caller checks that it holds the size).
    """
    types = accepted_types(accept)
    taken = [
        FORMATS[name]
        for name in OUTPUT_FORMATS
        if name in allowed
        and FORMATS[name].holds(*size)
        and (not FORMATS[name].explicit_accept or FORMATS[name].mime in types)
    ]
    for frames, alpha in ((animated, has_alpha), (animated, False), (False, has_alpha)):
        for fmt in taken:
            if (fmt.animates or not frames) and (fmt.transparency == "alpha" or not alpha):
                return fmt.name
    return FALLBACK


# ------------------------------------------------------------------ client hints
#
# A URL opts in with `dpr=auto` or `w=auto` (as `fmt=auto` opts in to Accept). Only
# then does the answer depend on these headers, so only then does it carry them in
# Vary: every other URL keeps one cache entry per normalised Accept, however many
# devices ask. Both the Sec-CH- names and the legacy ones count; the Sec-CH- wins.

HINT_HEADERS: dict[str, tuple[str, ...]] = {"dpr": ("Sec-CH-DPR", "DPR"), "w": ("Sec-CH-Width", "Width")}
ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width"  # asks Chromium browsers to send the hints above


def hint_value(headers: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    """The first of `names` that holds a finite number above 0; None when the client sent none."""
    for name in names:
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if 0 < value < math.inf:
            return value
    return None


def snap_dpr(hint: float, allowed: tuple[float, ...]) -> float:
    """The largest allowed density not above the device's (never send more pixels than it shows)."""
    return max((d for d in allowed if d <= hint), default=min(allowed))


def snap_width(hint: float, allowed: tuple[int, ...]) -> int:
    """The smallest allowed width that covers the layout width, else the largest allowed."""
    return min((w for w in allowed if w >= hint), default=max(allowed))
