"""Pick an output format from the browser's Accept header.

Browsers name the modern formats explicitly (`image/avif,image/webp,*/*`);
a wildcard never implies AVIF or WebP, because old clients send `*/*` and
cannot decode them. The answer depends only on which of the two are accepted,
so a CDN that normalises Accept the same way keeps at most three copies.
"""

from __future__ import annotations


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


def pick_format(accept: str, allowed: tuple[str, ...], has_alpha: bool, animated: bool = False) -> str:
    """AVIF, then WebP, when accepted and allowed; else PNG for transparent images, else JPEG.

    For an animation the choice is WebP, then GIF: both keep every frame, so a
    browser that takes AVIF still gets the moving picture, not a still.
    """
    types = accepted_types(accept)
    if animated:
        if "webp" in allowed and "image/webp" in types:
            return "webp"
        if "gif" in allowed:
            return "gif"
    for fmt in ("avif", "webp"):
        if fmt in allowed and f"image/{fmt}" in types:
            return fmt
    return "png" if has_alpha and "png" in allowed else "jpeg"
