"""Pick an output format from the browser's Accept header.

Browsers name the modern formats explicitly (`image/avif,image/webp,*/*`);
a wildcard never implies AVIF or WebP, because old clients send `*/*` and
cannot decode them. The answer depends only on which of the two are accepted,
so a CDN that normalises Accept the same way keeps at most three copies.
"""

from __future__ import annotations


def accepted_types(accept: str) -> set[str]:
    """Media types in `accept` with a non-zero q, lower-cased, parameters dropped."""
    types = set()
    for part in accept.lower().split(","):
        media, _, params = part.partition(";")
        refused = any(p.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params.split(";"))
        if media.strip() and not refused:
            types.add(media.strip())
    return types


def pick_format(accept: str, allowed: tuple[str, ...], has_alpha: bool) -> str:
    """AVIF, then WebP, when accepted and allowed; else PNG for transparent images, else JPEG."""
    types = accepted_types(accept)
    for fmt in ("avif", "webp"):
        if fmt in allowed and f"image/{fmt}" in types:
            return fmt
    return "png" if has_alpha and "png" in allowed else "jpeg"
