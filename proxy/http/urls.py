"""The public JSON description of an image, with absolute URLs for its variants."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from proxy.service import ImageMeta
from proxy.signing import sign_url


def base_url(request: Request) -> str:
    """`server.public_url` when set (behind a CDN), else the address the client used."""
    configured = request.app.state.settings.server.public_url
    return configured or str(request.base_url).rstrip("/")


def image_document(request: Request, meta: ImageMeta) -> dict[str, Any]:
    url = f"{base_url(request)}/img/{meta.id}"
    settings = request.app.state.settings
    presets = settings.variants.presets
    keys = settings.security.signing_keys
    return {
        "id": meta.id,
        "width": meta.width,
        "height": meta.height,
        "format": meta.format,
        "bytes": meta.bytes,
        "frames": meta.frames,
        "has_alpha": meta.has_alpha,
        "url": sign_url(url, keys[0]) if keys else url,
        "variants": {name: sign_url(f"{url}?p={name}", keys[0]) if keys else f"{url}?p={name}"
                     for name in sorted(presets)},
    }
