"""The use cases: ingest an upload, serve a variant, describe and delete an image.

This is the only module that ties imaging, storage and the caches together.
Read path, cheapest first: memory LRU -> variant store -> render (single-flight,
in the bounded work pool) -> write to the variant store -> fill the LRU.
The store is the source of truth; the LRU is only a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass

from cachetools import LRUCache, TTLCache

from proxy import keys, metrics
from proxy.cache import ByteLRU, Entry, SingleFlight
from proxy.config import RenderSettings, Settings
from proxy.formats import FORMATS
from proxy.imaging.geometry import Geometry, plan
from proxy.imaging.render import RenderJob, default_quality, render
from proxy.imaging.sanitize import Sanitized, sanitize
from proxy.imaging.working import WorkingCopy, from_working_copy, make_working_copies
from proxy.negotiate import pick_format
from proxy.ratelimit import TokenBuckets
from proxy.remote import Fetcher
from proxy.storage import IMMUTABLE, NO_STORE, StorageError, Store
from proxy.variants import BadParameter, VariantRequest
from proxy.workpool import WorkPool

log = logging.getLogger("proxy.service")

ID_PATTERN = re.compile(r"[0-9a-f]{32}")


PREVIEW_BOX = 16  # the placeholder's longest side: enough for a blurred preview, small enough to inline
PREVIEW_QUALITY = 40
PREVIEWS_KEPT = 10_000  # placeholders kept per process (well under 1 KB each)
UPLOADS_REMEMBERED = 10_000  # raw-upload digests whose id is remembered, per process (about 200 bytes each)


class NotFound(Exception):
    """No image with that id."""


@dataclass(frozen=True)
class ImageMeta:
    id: str
    width: int
    height: int
    format: str
    bytes: int
    frames: int
    has_alpha: bool
    created: float
    work: tuple[tuple[int, int], ...] = ()  # sizes of the working copies (see imaging.working)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ImageMeta:
        fields = json.loads(data)
        fields["work"] = tuple(tuple(size) for size in fields.get("work", ()))
        return cls(**fields)


@dataclass(frozen=True)
class Variant:
    entry: Entry
    tier: str  # memory | store | render | coalesced (joined a concurrent request's load or render)
    negotiated: bool  # the format came from Accept: the answer must carry Vary: Accept
    modified: int  # the upload time in whole seconds (Last-Modified): ids are content hashes


def timed_render(original: bytes, job: RenderJob) -> tuple[bytes, float]:
    """render() and its duration, measured in the render thread (queue wait excluded)."""
    started = time.perf_counter()
    body = render(original, job)
    return body, time.perf_counter() - started


def prepare(data: bytes, settings: Settings) -> tuple[Sanitized, list[WorkingCopy]]:
    """The upload's CPU work, in one pool job: sanitize, then derive the working copies."""
    clean = sanitize(data, settings.sanitize, settings.limits)
    return clean, make_working_copies(clean.data, settings.render.working_sizes)


def source_for(meta: ImageMeta, geometry: Geometry) -> tuple[str, Geometry]:
    """Render from the smallest working copy that contains the output, else from the original."""
    found = from_working_copy(geometry, (meta.width, meta.height), meta.work)
    if found is None:
        return keys.original(meta.id), geometry
    return keys.working_copy(meta.id, meta.work[found[0]]), found[1]


def keeps_animation(render: RenderSettings, meta: ImageMeta) -> bool:
    """Whether the image's variants keep every frame where their format can (config allows it)."""
    return render.animation and 1 < meta.frames <= render.max_animation_frames


def is_animated(settings: Settings, meta: ImageMeta, fmt: str) -> bool:
    """Whether a variant in `fmt` keeps every frame (config allows it and the format can)."""
    return keeps_animation(settings.render, meta) and FORMATS[fmt].animates


def make_etag(body: bytes) -> str:
    """Strong validator from the bytes themselves (a re-render with another encoder changes it)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class ImageService:
    def __init__(self, settings: Settings, store: Store, pool: WorkPool) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.variants = ByteLRU(settings.cache.memory_bytes)
        # Metadata is cached briefly, not forever: with several instances on one bucket, a
        # DELETE on one must reach the others (their variant LRU entries are only served
        # after this metadata check).
        self._meta: TTLCache[str, ImageMeta] = TTLCache(maxsize=settings.cache.meta_entries,
                                                        ttl=settings.cache.meta_ttl_s)
        self._flight: SingleFlight[tuple[Entry, str]] = SingleFlight()
        # (id, raw query, Accept) -> (cache key, negotiated): a repeated URL skips parsing and
        # planning and goes straight to the memory LRU. Expires with the metadata.
        self._memo: TTLCache[tuple[str, bytes, str], tuple[tuple[str, str], bool, int]] = TTLCache(
            maxsize=50_000, ttl=settings.cache.meta_ttl_s)
        limits = settings.rate_limits
        self.uploads = TokenBuckets("uploads", limits.uploads_per_minute, limits.upload_burst)
        self.fetcher = Fetcher(settings.fetch, settings.limits.max_upload_bytes)
        self.misses = TokenBuckets("renders of new variants", settings.rate_limits.misses_per_minute,
                                   settings.rate_limits.miss_burst)
        # Keyed by id alone: ids are content hashes, so a placeholder never goes stale.
        self._previews: LRUCache[str, bytes] = LRUCache(maxsize=PREVIEWS_KEPT)
        self._uploaded: LRUCache[bytes, str] = LRUCache(maxsize=UPLOADS_REMEMBERED)  # raw digest -> id (see ingest)
        self.renders = 0
        self.store_write_errors = 0

    # ---------------------------------------------------------------- upload

    async def ingest(self, data: bytes) -> tuple[ImageMeta, bool]:
        """Validate and sanitize `data`, store it once; return (meta, created).

        Bytes this process has stored (or found stored) before are not sanitized again (an AVIF
        re-encode takes seconds): `_uploaded` maps the raw upload's digest to the id it gave,
        and that id is taken only while the store still has its metadata. Ids are hashes of
        the sanitized bytes, so a remembered id can only name this upload's picture; once it
        is deleted, the upload is sanitized and stored afresh.
        """
        digest = hashlib.sha256(data).digest()
        known = self._uploaded.get(digest)
        existing = await self.store.get(keys.metadata(known)) if known is not None else None
        if existing is not None:
            return self._existing(existing)
        meta, created = await self._sanitize_and_store(data)
        self._uploaded[digest] = meta.id
        return meta, created

    def _existing(self, raw: bytes) -> tuple[ImageMeta, bool]:
        meta = ImageMeta.from_json(raw)
        self._meta[meta.id] = meta
        metrics.UPLOADS.labels("existing").inc()
        return meta, False

    async def _sanitize_and_store(self, data: bytes) -> tuple[ImageMeta, bool]:
        clean, work = await self.pool.run(prepare, data, self.settings)
        image_id = hashlib.sha256(clean.data).hexdigest()[:32]
        existing = await self.store.get(keys.metadata(image_id))  # the store, not a cache: it must be there
        if existing is not None:
            return self._existing(existing)
        meta = ImageMeta(id=image_id, width=clean.width, height=clean.height, format=clean.format,
                         bytes=len(clean.data), frames=clean.frames, has_alpha=clean.has_alpha,
                         created=round(time.time(), 3), work=tuple((w.width, w.height) for w in work))
        # The original first, its metadata last: an image "exists" once its .json does,
        # so a failure between the writes leaves nothing that reads as an image.
        # Blobs never change under their key; the metadata goes away on delete, so no reader may keep it.
        await self.store.put(keys.original(image_id), clean.data, FORMATS[clean.format].mime, IMMUTABLE)
        for copy in work:
            await self.store.put(keys.working_copy(image_id, (copy.width, copy.height)), copy.data,
                                 FORMATS[copy.format].mime, IMMUTABLE)
        await self.store.put(keys.metadata(image_id), meta.to_json(), "application/json", NO_STORE)
        self._meta[image_id] = meta
        metrics.UPLOADS.labels("created").inc()
        return meta, True

    async def ingest_url(self, url: str) -> tuple[ImageMeta, bool]:
        """Fetch `url` under the SSRF rules of proxy.remote, then ingest it like an upload."""
        return await self.ingest(await self.fetcher.fetch(url))

    # ---------------------------------------------------------------- read

    async def meta(self, image_id: str) -> ImageMeta | None:
        cached = self._meta.get(image_id)
        if cached is not None:
            return cached
        raw = await self.store.get(keys.metadata(image_id))
        if raw is None:
            return None
        meta = ImageMeta.from_json(raw)
        self._meta[image_id] = meta
        return meta

    def quality_for(self, fmt: str, requested: int | None) -> int:
        return requested if requested is not None else default_quality(self.settings.encoders, fmt)

    def memory_hit(self, memo_key: tuple[str, bytes, str]) -> Variant | None:
        """The answer for a URL seen before whose variant is still in memory, without any parsing."""
        found = self._memo.get(memo_key)
        entry = self.variants.get(found[0]) if found is not None else None
        return Variant(entry, "memory", found[1], found[2]) if entry is not None and found is not None else None

    async def variant(self, image_id: str, request: VariantRequest, accept: str, client: str = "",
                      memo_key: tuple[str, bytes, str] | None = None) -> Variant:
        meta = await self.meta(image_id)
        if meta is None:
            raise NotFound(image_id)
        r = self.settings.render
        animation = keeps_animation(r, meta)
        geometry = plan(meta.width, meta.height, request.w, request.h, request.fit)
        if request.max_pixels is not None and geometry.width * geometry.height > request.max_pixels:
            raise BadParameter(f"the output would be {geometry.width}x{geometry.height}, over the "
                               f"{request.max_pixels}-pixel hard cap for signed URLs")
        size = (geometry.width, geometry.height)
        fmt = request.fmt or pick_format(accept, self.settings.variants.formats, meta.has_alpha, animation, size)
        if not FORMATS[fmt].holds(*size):  # the key is never made for an output its format cannot hold
            raise BadParameter(f"the output would be {size[0]}x{size[1]}, and {FORMATS[fmt].limit()}; "
                               "ask for a smaller w or h" + (" or another fmt" if request.fmt else ""))
        animated = is_animated(self.settings, meta, fmt)
        quality = self.quality_for(fmt, request.q)
        key = keys.variant_name(geometry, fmt, quality, animated)
        cache_key = (image_id, key)
        negotiated = request.fmt is None
        modified = int(meta.created)  # HTTP dates have whole seconds
        if memo_key is not None:
            self._memo[memo_key] = (cache_key, negotiated, modified)
        entry = self.variants.get(cache_key)
        if entry is not None:
            return Variant(entry, "memory", negotiated, modified)
        source, geometry = source_for(meta, geometry)
        job = RenderJob(geometry, fmt, quality, r.background, self.settings.encoders, animated)
        (entry, tier), leader = await self._flight.run(
            cache_key, lambda: self._load_or_render(image_id, key, source, job, client))
        return Variant(entry, tier if leader else "coalesced", negotiated, modified)

    async def preview(self, meta: ImageMeta) -> bytes:
        """A WebP of the image fitted into PREVIEW_BOX (the documents' placeholder, LQIP).

        Rendered by the normal pipeline (upright, sRGB, no metadata) from the smallest
        working copy, but outside the variant path on purpose: it is never stored and
        never counted as a render, so describing an image writes nothing. Kept in memory
        per process, so repeated meta requests cost a dictionary lookup.
        """
        body = self._previews.get(meta.id)
        if body is None:
            source, geometry = source_for(meta, plan(meta.width, meta.height, PREVIEW_BOX, PREVIEW_BOX, "inside"))
            data = await self.store.get(source)
            if data is None:
                raise NotFound(meta.id)
            r = self.settings.render
            job = RenderJob(geometry, "webp", PREVIEW_QUALITY, r.background, self.settings.encoders)
            body = self._previews[meta.id] = await self.pool.run(render, data, job)
        return body

    async def _load_or_render(self, image_id: str, key: str, source: str, job: RenderJob,
                              client: str) -> tuple[Entry, str]:
        stored = keys.variant(image_id, key)
        body = await self.store.get(stored)
        tier = "store"
        if body is None:
            self.pool.check_capacity()  # refuse at once, before reading the original
            self.misses.take(client)  # only real renders are rate limited, never hits
            original = await self.store.get(source)
            if original is None:
                raise NotFound(image_id)
            body, seconds = await self.pool.run(timed_render, original, job)
            metrics.RENDER_SECONDS.labels(job.fmt).observe(seconds)
            self.renders += 1
            tier = "render"
            try:
                await self.store.put(stored, body, FORMATS[job.fmt].mime, IMMUTABLE)
            except StorageError as exc:  # still serve it; the next miss renders again
                self.store_write_errors += 1
                metrics.STORAGE_ERRORS.labels("variant_write").inc()
                log.warning("variant rendered but not stored: %s (%s)", stored, exc)
        entry = Entry(body, FORMATS[job.fmt].mime, make_etag(body))
        self.variants.put((image_id, key), entry)
        return entry, tier

    # ---------------------------------------------------------------- delete

    async def delete(self, image_id: str) -> None:
        """Remove the metadata (the image stops existing), the original and every stored variant."""
        meta = await self.meta(image_id)
        if meta is None and not await self.store.exists(keys.original(image_id)):
            raise NotFound(image_id)
        await self.store.delete(keys.metadata(image_id))
        self._meta.pop(image_id, None)
        await self.store.delete(keys.original(image_id))
        for size in meta.work if meta else ():
            await self.store.delete(keys.working_copy(image_id, size))
        await self.store.delete_prefix(keys.variant_prefix(image_id))
        self.variants.drop_image(image_id)
