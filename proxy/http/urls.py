"""The public JSON description of an image, with absolute URLs for its variants.

Besides the preset URLs it carries what a page needs to show the image well:
`srcset` strings per format, a ready `<picture>` snippet (AVIF, then WebP, then a
fallback every browser decodes) and a tiny `placeholder` data URI. With signing
on, every URL in it is signed.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request

from proxy.config import Settings
from proxy.formats import FORMATS, OUTPUT_FORMATS
from proxy.markup import candidates, fallback_width, picture_html, srcset
from proxy.negotiate import pick_format
from proxy.service import ImageMeta, is_animated, keeps_animation, plan_request
from proxy.signing import sign_url
from proxy.variants import parse_query


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
    sources = [
        name
        for name in OUTPUT_FORMATS
        if name in allowed and FORMATS[name].explicit_accept and (still or is_animated(settings, meta, name))
    ]
    return (*sources, pick_format("", allowed, meta.has_alpha))


def sizes_for(width: int) -> str:
    """The `sizes` of an image shown at most `width` CSS pixels wide: never wider than it is at 1x."""
    return f"(max-width: {width}px) 100vw, {width}px"


def preset_candidates(meta: ImageMeta, settings: Settings, preset: str) -> list[tuple[str, tuple[int, int]]]:
    """(query, output size) of a preset at each allowed density whose output is larger than the last
    (images are never enlarged, so high densities of a small image add nothing). The preset's own
    parameters (g, fp, crop, fit=pad, bg) travel inside p=, so every candidate crops alike."""
    found: list[tuple[str, tuple[int, int]]] = []
    for dpr in settings.variants.dprs:
        pairs = [("p", preset)] + ([("dpr", f"{dpr:g}")] if dpr != 1 else [])
        query = "&".join(f"{name}={value}" for name, value in pairs)
        request = parse_query(pairs, settings.variants)
        size = plan_request(meta, request, None, None).output  # focus and colour move pixels, not the size
        if not found or size[0] > found[-1][1][0]:
            found.append((query, size))
    return found


def preset_documents(
    meta: ImageMeta, settings: Settings, link: Linker, formats: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Per preset: a srcset per format over the densities, and a <picture> of them at the 1x size."""
    documents = {}
    for preset in sorted(settings.variants.presets):
        found = preset_candidates(meta, settings, preset)
        srcsets = {
            fmt: ", ".join(f"{link(f'{query}&fmt={fmt}')} {size[0]}w" for query, size in found) for fmt in formats
        }
        width, height = found[0][1]
        picture = picture_html(srcsets, link(f"{found[0][0]}&fmt={formats[-1]}"), sizes_for(width), width, height)
        documents[preset] = {"srcset": srcsets, "picture": picture}
    return documents


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
    widths = candidates(settings.variants.widths, meta.width)
    formats = picture_formats(meta, settings)
    srcsets = {fmt: srcset(link, widths, f"fmt={fmt}") for fmt in formats}
    fallback = list(srcsets)[-1]
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
        "picture": picture_html(
            srcsets, link(f"w={fallback_width(widths)}&fmt={fallback}"), sizes_for(meta.width), meta.width, meta.height
        ),
        "presets": preset_documents(meta, settings, link, formats),
        "placeholder": "data:image/webp;base64," + base64.b64encode(preview).decode("ascii"),
        "focus": focus.to_dict(),
    }
