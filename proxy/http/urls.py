"""The public JSON description of an image, with absolute URLs for its variants.

Besides the preset URLs it carries what a page needs to show the image well:
`srcset` strings per format, a ready `<picture>` snippet (AVIF, then WebP, then a
fallback every browser decodes) and a tiny `placeholder` data URI. With signing
on, every URL in it is signed.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from starlette.requests import Request

from proxy.config import Settings
from proxy.formats import FORMATS, OUTPUT_FORMATS
from proxy.negotiate import pick_format
from proxy.service import ImageMeta, is_animated, keeps_animation
from proxy.signing import sign_url

FALLBACK_SRC_WIDTH = 800  # the <img src> for browsers without srcset: the widest candidate up to this


def base_url(request: Request) -> str:
    """`server.public_url` when set (behind a CDN), else the address the client used."""
    configured = request.app.state.settings.server.public_url
    return configured or str(request.base_url).rstrip("/")


def picture_formats(meta: ImageMeta, settings: Settings) -> tuple[str, ...]:
    """Formats for <picture>, best first; the last one is the <img> fallback that every browser decodes.

    A <source> per allowed format a browser must announce (AVIF, WebP); for an animation
    that its variants keep, only those that animate (an AVIF variant is a still, WebP keeps
    the frames), by the rule the variants themselves follow: with render.animation off or
    over render.max_animation_frames the variants are stills, and AVIF is right again. The
    fallback is what negotiation gives a browser announcing none of them for the still,
    PNG for transparent images, so no browser gets a white box.
    """
    allowed, still = settings.variants.formats, not keeps_animation(settings.render, meta)
    sources = [name for name in OUTPUT_FORMATS if name in allowed and FORMATS[name].explicit_accept
               and (still or is_animated(settings, meta, name))]
    return (*sources, pick_format("", allowed, meta.has_alpha))


def candidates(meta: ImageMeta, widths: tuple[int, ...]) -> list[tuple[int, int]]:
    """(w to ask for, width it yields) for srcset: each allowed width below the original's, then
    the smallest allowed width that reaches it (images are never enlarged: it yields the original's)."""
    below = [(w, w) for w in widths if w < meta.width]
    full = next((w for w in widths if w >= meta.width), None)
    return below + ([(full, meta.width)] if full is not None else [])


def picture_html(meta: ImageMeta, srcsets: dict[str, str], src: str) -> str:
    """A <picture> with one <source> per modern format and a lazy <img> fallback with its size."""
    sizes = f"(max-width: {meta.width}px) 100vw, {meta.width}px"  # never wider than the original
    *modern, fallback = srcsets
    sources = [f'  <source type="image/{fmt}" srcset="{escape(srcsets[fmt])}" sizes="{sizes}">' for fmt in modern]
    img = (f'  <img src="{escape(src)}" srcset="{escape(srcsets[fallback])}" sizes="{sizes}" '
           f'width="{meta.width}" height="{meta.height}" alt="" loading="lazy" decoding="async">')
    return "\n".join(["<picture>", *sources, img, "</picture>"])


class Linker:
    """Absolute image URLs for one document, signed with the first key when signing is on."""

    def __init__(self, request: Request, image: str) -> None:
        settings: Settings = request.app.state.settings
        self.base = f"{base_url(request)}/img/{image}"
        self.key = settings.security.signing_keys[0] if settings.security.signing_keys else None

    def __call__(self, query: str = "") -> str:
        url = f"{self.base}?{query}" if query else self.base
        return sign_url(url, self.key) if self.key else url


async def image_document(request: Request, meta: ImageMeta) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    link = Linker(request, meta.id)
    widths = candidates(meta, settings.variants.widths)
    srcsets = {fmt: ", ".join(f"{link(f'w={w}&fmt={fmt}')} {width}w" for w, width in widths)
               for fmt in picture_formats(meta, settings)}
    fallback = list(srcsets)[-1]
    src_w = max((c for c in widths if c[1] <= FALLBACK_SRC_WIDTH), default=widths[0])[0]
    service = request.app.state.service
    preview = await service.preview(meta)
    focus = await service.focus(meta)
    return {
        "id": meta.id,
        "width": meta.width,
        "height": meta.height,
        "format": meta.format,
        "bytes": meta.bytes,
        "frames": meta.frames,
        "has_alpha": meta.has_alpha,
        "url": link(),
        "variants": {name: link(f"p={name}") for name in sorted(settings.variants.presets)},
        "srcset": srcsets,
        "picture": picture_html(meta, srcsets, link(f"w={src_w}&fmt={fallback}")),
        "placeholder": "data:image/webp;base64," + base64.b64encode(preview).decode("ascii"),
        "focus": focus.to_dict(),
    }
