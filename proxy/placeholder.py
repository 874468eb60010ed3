"""A tiny preview of an image (LQIP) as a `data:` URI, for the meta and upload documents.

A page shows it, scaled up and blurred, while the real variant loads, without a
request of its own. It is rendered by the normal pipeline (`imaging.render`:
upright, sRGB, no metadata) from the smallest working copy, but outside the
variant path on purpose: it is never stored and never counted as a render, so
describing an image writes nothing. Each process keeps the URIs it made (well
under 1 KB each), so repeated meta requests cost a dictionary lookup.
"""

from __future__ import annotations

import base64

from cachetools import LRUCache

from proxy.imaging.geometry import plan
from proxy.imaging.render import RenderJob, render
from proxy.service import ImageMeta, ImageService, NotFound, source_for

BOX = 16  # longest side in pixels: enough for a blurred preview, small enough to inline
QUALITY = 40
CACHED = 10_000  # previews kept per process (about 3 MB)

# Keyed by image id alone: ids are content hashes, so a preview never goes stale.
_previews: LRUCache[str, str] = LRUCache(maxsize=CACHED)


async def placeholder(service: ImageService, meta: ImageMeta) -> str:
    """`data:image/webp;base64,...` of the image fitted into BOX x BOX."""
    uri = _previews.get(meta.id)
    if uri is None:
        uri = _previews[meta.id] = await _render(service, meta)
    return uri


async def _render(service: ImageService, meta: ImageMeta) -> str:
    settings = service.settings
    source, geometry = source_for(meta, plan(meta.width, meta.height, BOX, BOX, "inside"))
    data = await service.store.get(source)
    if data is None:
        raise NotFound(meta.id)
    job = RenderJob(geometry, "webp", QUALITY, settings.render.background, settings.encoders)
    body = await service.pool.run(render, data, job)
    return "data:image/webp;base64," + base64.b64encode(body).decode("ascii")
