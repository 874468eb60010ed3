"""The use cases: ingest an upload, serve a variant, describe an image, release references to it.

This is the only module that ties imaging, storage and the caches together.
Read path, cheapest first: memory LRU -> variant store -> render (single-flight,
in the bounded work pool) -> write to the variant store -> fill the LRU.
The store is the source of truth; the LRU is only a cache.

Uploads and deletes go through references (proxy.references): an upload adds one for its
caller, a delete removes one, and the image goes only with the last. The race that matters
is an upload of bytes X on one instance while the last reference to X is deleted on another;
it must never end with a 2xx upload whose image then 404s. The protocol (S3 has no
transactions, so it relies only on atomic single-object writes and consistent listings):

    upload                                   delete of a reference
    1. write the reference                   1. delete the reference
    2. wait while a deletion marker          2. list refs/<id>/: any left -> done
       of the image is live                  3. write a deletion marker
    3. metadata or original missing ->       4. list refs/<id>/ again: any -> drop marker, done
       write original, working copies,       5. delete metadata (the image stops existing),
       metadata last                            original, working copies, then variants
    4. answer 2xx                            6. drop the marker

Upload step 1 before 2 and delete step 3 before 4 make each side's write precede its look at
the other's: either the delete's second listing sees the upload's reference (nothing is
deleted), or the upload sees the marker and answers only after the delete has finished and
step 3 has written back what it removed. A marker outlives its lease only when its delete
crashed or gave up: a delete starts no store call past half its lease, so nothing of it can
land after the lease (references.lease_for).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

from cachetools import LRUCache, TLRUCache

from proxy import crops, keys, metrics
from proxy.cache import ByteLRU, Entry, SingleFlight
from proxy.config import FocusSettings, RenderSettings, Settings
from proxy.crops import Colour
from proxy.formats import FORMATS
from proxy.imaging.focus import Focus, find_focus
from proxy.imaging.geometry import Geometry, plan
from proxy.imaging.render import RenderJob, default_quality, render
from proxy.imaging.sanitize import Sanitized, sanitize
from proxy.imaging.working import WorkingCopy, from_working_copy, make_working_copies
from proxy.negotiate import pick_format
from proxy.ratelimit import TokenBuckets
from proxy.references import Claim, KeyedUpload, NotHeld, Reference, References, fingerprint, lease_for
from proxy.remote import Fetcher
from proxy.storage import IMMUTABLE, NO_STORE, StorageError, Store
from proxy.variants import AUTO, BadParameter, VariantRequest
from proxy.workpool import WorkPool

log = logging.getLogger("proxy.service")

ID_PATTERN = re.compile(r"[0-9a-f]{32}")


PREVIEW_BOX = 16  # the placeholder's longest side: enough for a blurred preview, small enough to inline
PREVIEW_QUALITY = 40
PREVIEWS_KEPT = 10_000  # placeholders kept per process (well under 1 KB each)
MEMO_ENTRIES = 50_000  # URLs whose answer is remembered (a few hundred bytes each)
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
    focus: Focus | None = None  # where g=auto crops; None in stores written before it was found at upload
    # Stored before references existed: while no reference is recorded, whoever deletes it first
    # holds it (README: Migration). Metadata without the field is such an image.
    legacy: bool = False

    # builtins.bytes: inside this class `bytes` is the field above
    def to_json(self) -> builtins.bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def of(cls, image_id: str, fresh: Prepared, created: float) -> ImageMeta:
        """The record of an upload's prepared image (see prepare), stored under `image_id`."""
        clean, work, focus = fresh
        return cls(
            id=image_id,
            width=clean.width,
            height=clean.height,
            format=clean.format,
            bytes=len(clean.data),
            frames=clean.frames,
            has_alpha=clean.has_alpha,
            created=created,
            work=tuple((w.width, w.height) for w in work),
            focus=focus,
        )

    @classmethod
    def from_json(cls, data: builtins.bytes) -> ImageMeta:
        fields = json.loads(data)
        fields["work"] = tuple(tuple(size) for size in fields.get("work", ()))
        fields["focus"] = Focus.from_dict(fields["focus"]) if fields.get("focus") else None
        fields.setdefault("legacy", True)
        return cls(**fields)


class TrustedMeta(NamedTuple):
    """A metadata record and until when it is trusted (time.monotonic(), the caches' clock)."""

    meta: ImageMeta
    expires: float


MemoKey = tuple[str, bytes, str]  # (id, raw query, the header values the answer depends on)


class Memo(NamedTuple):
    """What a URL resolved to, kept no longer than the metadata it was resolved with."""

    cache_key: tuple[str, str]
    negotiated: bool
    modified: int
    size: tuple[int, int]
    expires: float  # the TrustedMeta's


async def read_meta(store: Store, image_id: str) -> ImageMeta | None:
    """The image's metadata from the store itself (no cache), or None: the image does not exist."""
    raw = await store.get(keys.metadata(image_id))
    return ImageMeta.from_json(raw) if raw is not None else None


async def write_meta(store: Store, meta: ImageMeta) -> None:
    """Store the metadata: the write that makes an image exist. It goes away on delete, so no reader may keep it."""
    await store.put(keys.metadata(meta.id), meta.to_json(), "application/json", NO_STORE)


@dataclass(frozen=True)
class Ingested:
    meta: ImageMeta
    created: bool  # this upload stored the image (201); else it was stored already (200)
    ref: str  # the handle of the caller's new reference


@dataclass(frozen=True)
class Variant:
    entry: Entry
    tier: str  # memory | store | render | coalesced (joined a concurrent request's load or render)
    negotiated: bool  # the format came from Accept: the answer must carry Vary: Accept
    modified: int  # the upload time in whole seconds (Last-Modified): ids are content hashes
    size: tuple[int, int]  # the output's width and height: a snapped request tells the cache what it got


def timed_render(original: bytes, job: RenderJob) -> tuple[bytes, float]:
    """render() and its duration, measured in the render thread (queue wait excluded)."""
    started = time.perf_counter()
    body = render(original, job)
    return body, time.perf_counter() - started


def detection_level(work: tuple[tuple[int, int], ...], settings: FocusSettings) -> int | None:
    """The working copy the focal point is found in: the smallest with at least focus.detect_size²
    pixels (None: the original). At upload and later alike, so both find the same point."""
    fits = [i for i, (w, h) in enumerate(work) if w * h >= settings.detect_size**2]
    return min(fits, key=lambda i: work[i][0] * work[i][1]) if fits else None


Prepared = tuple[Sanitized, list[WorkingCopy], Focus]  # an upload's sanitized image, working copies, focal point


def prepare(data: bytes, settings: Settings) -> Prepared:
    """The upload's CPU work, in one pool job: sanitize, derive the working copies, find the focal point."""
    clean = sanitize(data, settings.sanitize, settings.limits)
    work = make_working_copies(clean.data, settings.render.working_sizes)
    level = detection_level(tuple((w.width, w.height) for w in work), settings.focus)
    return clean, work, find_focus(clean.data if level is None else work[level].data, settings.focus)


def pad_colour(r: VariantRequest, fmt: str, render: RenderSettings) -> Colour | None:
    """fit=pad's canvas for a variant in `fmt`: bg=, else render.background; transparent only where
    the format keeps alpha (else the background it would be flattened onto: the same pixels, one key)."""
    colour = crops.colour(r.bg) if r.bg else render.background
    return render.background if colour is None and FORMATS[fmt].transparency == "none" else colour


def plan_request(meta: ImageMeta, r: VariantRequest, focus: Focus | None, pad: Colour | None) -> Geometry:
    """The output of `r` for this image: fp= or the image's focal point (g=auto) place a cover
    crop, else the compass gravity; `pad` is the canvas colour of fit=pad (None: transparent)."""
    point = r.fp or ((focus.x, focus.y) if focus and r.g == crops.AUTO else None)
    gravity = "center" if r.g == crops.AUTO else r.g
    return plan(meta.width, meta.height, r.w, r.h, r.fit, region=r.crop, gravity=gravity, focus=point, background=pad)


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
        self.references = References(store, lease_for(settings.storage))
        self.variants = ByteLRU(settings.cache.memory_bytes)
        # Metadata is trusted for cache.meta_ttl_s, not forever: with several instances on one
        # bucket, a DELETE on one must reach the others within that time. Each record carries
        # its deadline, and what is derived from it (the memo below) expires with it.
        self._meta: TLRUCache[str, TrustedMeta] = TLRUCache(
            maxsize=settings.cache.meta_entries, ttu=lambda _id, record, _now: record.expires
        )
        self._flight: SingleFlight[tuple[Entry, str]] = SingleFlight()
        # (id, raw query, header values) -> the answer's LRU key: a repeated URL skips parsing
        # and planning and goes straight to the memory LRU. So an LRU entry is served only
        # after a metadata check (variant()) or through a memo entry that expires with the
        # metadata record it was computed from, never later.
        self._memo: TLRUCache[MemoKey, Memo] = TLRUCache(
            maxsize=MEMO_ENTRIES, ttu=lambda _key, memo, _now: memo.expires
        )
        limits = settings.rate_limits
        self.uploads = TokenBuckets("uploads and deletes", limits.uploads_per_minute, limits.upload_burst)
        self.fetcher = Fetcher(settings.fetch, settings.limits.max_upload_bytes)
        self.misses = TokenBuckets(
            "renders of new variants", settings.rate_limits.misses_per_minute, settings.rate_limits.miss_burst
        )
        # Keyed by id alone: ids are content hashes, so a placeholder never goes stale.
        self._previews: LRUCache[str, bytes] = LRUCache(maxsize=PREVIEWS_KEPT)
        self._focus: LRUCache[str, Focus] = LRUCache(maxsize=PREVIEWS_KEPT)  # found after upload, likewise
        self._finding: SingleFlight[Focus] = SingleFlight()
        self._uploaded: LRUCache[bytes, str] = LRUCache(maxsize=UPLOADS_REMEMBERED)  # raw digest -> id (see _ingest)
        self.renders = 0
        self.store_write_errors = 0

    # ---------------------------------------------------------------- upload

    async def ingest(self, data: bytes, claim: Claim) -> Ingested:
        """Validate and sanitize `data`, store it once, add the caller's reference to it."""
        digest = hashlib.sha256(data).digest()
        return await self._ingest(claim, fingerprint("bytes", data), lambda: self._prepare(data), digest)

    async def ingest_url(self, url: str, claim: Claim) -> Ingested:
        """Fetch `url` under the SSRF rules of proxy.remote, then ingest it like an upload.

        A retry with the same Idempotency-Key must name the same URL (the fetched bytes may change).
        """

        async def fetched() -> Prepared:
            return await self._prepare(await self.fetcher.fetch(url))

        return await self._ingest(claim, fingerprint("url", url.encode()), fetched, None)

    async def _prepare(self, data: bytes) -> Prepared:
        return await self.pool.run(prepare, data, self.settings)

    async def _ingest(
        self, claim: Claim, payload: str, prepared: Callable[[], Awaitable[Prepared]], digest: bytes | None
    ) -> Ingested:
        """Upload steps 1-4 of the module doc, after the Idempotency-Key check (which costs one read).

        Bytes this process has stored (or found stored) before are not sanitized again (an AVIF
        re-encode takes seconds): `_uploaded` maps the raw upload's digest to the id it gave.
        Ids are hashes of the sanitized bytes, so a remembered id can only name this upload's
        picture; the reference is written to it like to any other, and when the image turns
        out to be gone (deleted meanwhile), the upload is sanitized and stored afresh.
        """
        keyed = claim.idempotency_key is not None
        first = await self.references.keyed(claim, payload) if keyed else None
        fresh: Prepared | None = None
        image_id = self._uploaded.get(digest) if digest is not None else None
        if image_id is None:
            fresh = await prepared()
            image_id = hashlib.sha256(fresh[0].data).hexdigest()[:32]
        ref = claim.ref()
        await self.references.add(
            Reference(image_id, claim.owner, ref, round(time.time(), 3), payload if keyed else None)
        )
        await self.references.wait_for_deletes(image_id)
        meta = await self._stored(image_id, fresh)
        created = meta is None
        if meta is None:
            meta = await self._store(image_id, fresh or await prepared())
        if digest is not None:
            self._uploaded[digest] = image_id
        if keyed and first is None:
            await self.references.remember(claim, KeyedUpload(image_id, payload, created))
        metrics.UPLOADS.labels("created" if created else "existing").inc()
        return Ingested(meta, first.created if first is not None else created, ref)

    async def _stored(self, image_id: str, fresh: Prepared | None) -> ImageMeta | None:
        """The image as stored, or None when any of it is missing (the caller then writes it)."""
        existing = await read_meta(self.store, image_id)  # the store, not a cache: it must be there
        if existing is None or not await self.store.exists(keys.original(image_id)):
            return None
        if existing.focus is None and fresh is not None:
            # Stored before focal points: keep the one just found. The caller's reference is
            # already written, so this write cannot bring back an image being deleted.
            existing = replace(existing, focus=fresh[2])
            await write_meta(self.store, existing)
        return self._trust(existing).meta

    async def _store(self, image_id: str, fresh: Prepared) -> ImageMeta:
        clean, work, _ = fresh
        meta = ImageMeta.of(image_id, fresh, created=round(time.time(), 3))
        # The original first, its metadata last: an image "exists" once its .json does,
        # so a failure between the writes leaves nothing that reads as an image.
        await self.store.put(keys.original(image_id), clean.data, FORMATS[clean.format].mime, IMMUTABLE)
        for copy in work:
            await self.store.put(
                keys.working_copy(image_id, (copy.width, copy.height)), copy.data, FORMATS[copy.format].mime, IMMUTABLE
            )
        await write_meta(self.store, meta)
        self._trust(meta)
        return meta

    # ---------------------------------------------------------------- read

    def _trust(self, meta: ImageMeta) -> TrustedMeta:
        record = TrustedMeta(meta, time.monotonic() + self.settings.cache.meta_ttl_s)
        self._meta[meta.id] = record
        return record

    async def _trusted_meta(self, image_id: str) -> TrustedMeta | None:
        """The image's metadata record, from memory while it is trusted, else from the store."""
        cached = self._meta.get(image_id)
        if cached is not None:
            return cached
        meta = await read_meta(self.store, image_id)
        return self._trust(meta) if meta is not None else None

    async def focus(self, meta: ImageMeta) -> Focus:
        """The image's focal point: from its metadata, or, for an image stored before focal points
        were found at upload, found now in the same copy the upload would have used (so it is the
        same point) and kept in memory. Never written back on this read path: a read must not
        race a delete into resurrecting metadata; uploading the same bytes again stores it."""
        if meta.focus is not None:
            return meta.focus
        found = self._focus.get(meta.id)
        if found is None:
            found, _ = await self._finding.run(meta.id, lambda: self._find_focus(meta))
        return found

    async def _find_focus(self, meta: ImageMeta) -> Focus:
        level = detection_level(meta.work, self.settings.focus)
        source = keys.original(meta.id) if level is None else keys.working_copy(meta.id, meta.work[level])
        data = await self.store.get(source)
        if data is None:
            raise NotFound(meta.id)
        found = self._focus[meta.id] = await self.pool.run(find_focus, data, self.settings.focus)
        return found

    async def meta(self, image_id: str) -> ImageMeta | None:
        record = await self._trusted_meta(image_id)
        return record.meta if record is not None else None

    def quality_for(self, fmt: str, requested: int | str | None) -> tuple[int, int | None]:
        """(quality, q=auto's target or None): q= as asked, else the format's default, or q=auto when
        encoders.auto_quality is on. A format that takes no quality never gets a target."""
        encoders = self.settings.encoders
        auto = requested == AUTO or (requested is None and encoders.auto_quality)
        if isinstance(requested, int):
            return requested, None
        return default_quality(encoders, fmt), encoders.auto_target if auto and FORMATS[fmt].quality else None

    def memory_hit(self, memo_key: MemoKey) -> Variant | None:
        """The answer for a URL seen before whose variant is still in memory, without any parsing,
        while the metadata it was resolved with is still trusted (the memo expires with it)."""
        found = self._memo.get(memo_key)
        if found is None:
            return None
        entry = self.variants.get(found.cache_key)
        return Variant(entry, "memory", found.negotiated, found.modified, found.size) if entry is not None else None

    async def variant(
        self,
        image_id: str,
        request: VariantRequest,
        accept: str,
        client: str | None = None,
        memo_key: MemoKey | None = None,
    ) -> Variant:
        record = await self._trusted_meta(image_id)
        if record is None:
            raise NotFound(image_id)
        meta = record.meta
        r = self.settings.render
        animation = keeps_animation(r, meta)
        focus = await self.focus(meta) if request.g == crops.AUTO and request.fp is None else None
        out_w, out_h = plan_request(meta, request, focus, None).output  # the size: colour moves no pixel
        if request.max_pixels is not None and out_w * out_h > request.max_pixels:
            raise BadParameter(
                f"the output would be {out_w}x{out_h}, over the {request.max_pixels}-pixel hard cap for signed URLs"
            )
        clear_pad = request.fit == "pad" and request.bg == crops.TRANSPARENT
        fmt = request.fmt or pick_format(
            accept, self.settings.variants.formats, meta.has_alpha or clear_pad, animation, (out_w, out_h)
        )
        if not FORMATS[fmt].holds(out_w, out_h):  # the key is never made for an output its format cannot hold
            raise BadParameter(
                f"the output would be {out_w}x{out_h}, and {FORMATS[fmt].limit()}; "
                "ask for a smaller w or h" + (" or another fmt" if request.fmt else "")
            )
        geometry = plan_request(meta, request, focus, pad_colour(request, fmt, r))
        animated = is_animated(self.settings, meta, fmt)
        quality, target = self.quality_for(fmt, request.q)
        target = None if animated else target  # an animation is encoded at the format's default quality
        key = keys.variant_name(geometry, fmt, quality, animated, target)
        cache_key = (image_id, key)
        negotiated = request.fmt is None
        modified = int(meta.created)  # HTTP dates have whole seconds
        size = geometry.output
        if memo_key is not None:
            self._memo[memo_key] = Memo(cache_key, negotiated, modified, size, record.expires)
        entry = self.variants.get(cache_key)
        if entry is not None:
            return Variant(entry, "memory", negotiated, modified, size)
        source, geometry = source_for(meta, geometry)
        job = RenderJob(geometry, fmt, quality, r.background, self.settings.encoders, animated, target)
        (entry, tier), leader = await self._flight.run(
            cache_key, lambda: self._load_or_render(image_id, key, source, job, client)
        )
        return Variant(entry, tier if leader else "coalesced", negotiated, modified, size)

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

    async def _load_or_render(
        self, image_id: str, key: str, source: str, job: RenderJob, client: str | None
    ) -> tuple[Entry, str]:
        stored = keys.variant(image_id, key)
        body = await self.store.get(stored)
        tier = "store"
        if body is None:
            self.pool.check_capacity()  # refuse at once, before reading the original
            self.misses.take(client)  # only real renders are rate limited, never hits
            original = await self.store.get(source)
            if original is None:
                raise NotFound(image_id)
            # Its own name: unpacked into `body`, mypy would infer run()'s T from body's `bytes | None`.
            rendered, seconds = await self.pool.run(timed_render, original, job)
            body = rendered
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

    # ---------------------------------------------------------------- references and delete

    async def held(self, image_id: str, owner: str) -> list[str]:
        """The handles of the references `owner` holds to the image."""
        return await self.references.held(image_id, owner)

    async def release(self, image_id: str, owner: str, ref: str) -> None:
        """Remove one reference `owner` holds (NotHeld otherwise); the image goes with the last one."""
        if not await self.references.holds(image_id, owner, ref):
            raise NotHeld(ref)
        await self.references.remove(image_id, owner, ref)
        await self._remove_if_unheld(image_id)

    async def release_one(self, image_id: str, owner: str) -> None:
        """DELETE /img/<id>: remove one of the references `owner` holds, so N uploads take N deletes.

        Holding none, the caller may still take a legacy image nobody holds (README: Migration).
        """
        held = await self.references.held(image_id, owner)
        if held:
            await self.release(image_id, owner, held[0])
            return
        meta = await read_meta(self.store, image_id)
        if meta is None:
            raise NotFound(image_id)
        if not (meta.legacy and await self._remove_if_unheld(image_id, legacy_too=True)):
            raise NotHeld(image_id)

    async def purge(self, image_id: str) -> None:
        """Admins: remove every reference, then the image (an upload that lands meanwhile keeps it)."""
        holders = await self.references.holders(image_id)
        if not holders and not (
            await self.store.exists(keys.metadata(image_id)) or await self.store.exists(keys.original(image_id))
        ):
            raise NotFound(image_id)
        for owner, ref in holders:
            await self.references.remove(image_id, owner, ref)
        await self._remove_if_unheld(image_id, legacy_too=True)

    async def _remove_if_unheld(self, image_id: str, legacy_too: bool = False) -> bool:
        """Delete the image when no reference holds it (steps 2-6 of the module doc); True if it went.

        A legacy image is kept unless `legacy_too`: its holders were never recorded.
        """
        if await self.references.holders(image_id):
            return False
        deadline = time.monotonic() + self.references.lease_s / 2  # before the marker's own time is taken
        marker = await self.references.begin_delete(image_id)
        try:
            if await self.references.holders(image_id):
                return False  # an upload came in: its reference keeps the image
            meta = await read_meta(self.store, image_id)
            if meta is not None and meta.legacy and not legacy_too:
                return False
            doomed = [
                keys.metadata(image_id),
                keys.original(image_id),
                *(keys.working_copy(image_id, size) for size in (meta.work if meta else ())),
            ]
            for key in doomed:  # the metadata first: from then on the image does not exist
                if time.monotonic() > deadline:  # an upload may soon take the marker for abandoned
                    log.warning(
                        "delete of %s stopped before %s, past half its lease; gc reports what is left", image_id, key
                    )
                    return False
                await self.store.delete(key)
            await self.store.delete_prefix(keys.variant_prefix(image_id))  # even late: variants render again
            self._forget(image_id)
            return meta is not None
        finally:
            await self.references.end_delete(marker)

    def _forget(self, image_id: str) -> None:
        """Drop this process's memory of the image (other instances' expires with cache.meta_ttl_s)."""
        self._meta.pop(image_id, None)
        self._previews.pop(image_id, None)
        self.variants.drop_image(image_id)
