"""`srcset` and `<picture>` markup from plain values: what a page needs to show an image well.

A stdlib-only leaf, shared on purpose: the service's image document (proxy/http/urls.py) and the
Python client's template helpers (clients/python ships this file as it is) write the same markup
with the same rules, so a page built by an app matches the service's own `picture` snippet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape

FALLBACK_SRC_WIDTH = 800  # the <img src> for browsers without srcset: the widest candidate up to this

Link = Callable[[str], str]  # a variant's query ("w=320&fmt=webp") -> its absolute (signed) URL


def candidates(widths: Iterable[int], original_width: int | None = None) -> list[tuple[int, int]]:
    """(w to ask for, width it yields) for srcset: each allowed width below the original's, then the
    smallest allowed width that reaches it (images are never enlarged: it yields the original's).
    Without the original's width, every width, taken at its word."""
    widths = sorted(widths)
    if original_width is None:
        return [(w, w) for w in widths]
    below = [(w, w) for w in widths if w < original_width]
    full = next((w for w in widths if w >= original_width), None)
    return below + ([(full, original_width)] if full is not None else [])


def fallback_width(found: list[tuple[int, int]]) -> int:
    """The w of the `<img src>`: the widest candidate up to FALLBACK_SRC_WIDTH, else the narrowest."""
    return max((c for c in found if c[1] <= FALLBACK_SRC_WIDTH), default=found[0])[0]


def srcset(link: Link, found: list[tuple[int, int]], query: str = "") -> str:
    """`<url> <width>w, ...` for the candidates; `query` ("fmt=webp") is added to every URL."""
    extra = f"&{query}" if query else ""
    return ", ".join(f"{link(f'w={w}{extra}')} {width}w" for w, width in found)


def picture_html(
    srcsets: dict[str, str], src: str, sizes: str, width: int | None = None, height: int | None = None, alt: str = ""
) -> str:
    """A <picture> with one <source> per format but the last (`srcsets` is ordered best first), and a
    lazy <img> with the last one's srcset, its size when known (no layout shift) and `alt`."""
    *modern, fallback = srcsets
    sizes = escape(sizes)
    sources = [f'  <source type="image/{fmt}" srcset="{escape(srcsets[fmt])}" sizes="{sizes}">' for fmt in modern]
    box = f'width="{width}" height="{height}" ' if width and height else ""
    img = (
        f'  <img src="{escape(src)}" srcset="{escape(srcsets[fallback])}" sizes="{sizes}" '
        f'{box}alt="{escape(alt)}" loading="lazy" decoding="async">'
    )
    return "\n".join(["<picture>", *sources, img, "</picture>"])
