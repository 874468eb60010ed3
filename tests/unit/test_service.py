"""proxy.service: what the metadata record says about references, and ImageService.ingest with a
real local store and a real work pool (the same bytes twice are sanitized once).

The pool is the service's own WorkPool, counting the jobs it is handed: an upload it has
seen answers from the raw-upload index without a sanitize job, and the index never
answers with an image that is gone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from proxy import keys
from proxy.config import Settings
from proxy.references import Claim
from proxy.service import ImageMeta, ImageService
from proxy.storage.local import LocalStore
from proxy.workpool import WorkPool
from support.wild import encoded, picture

T = TypeVar("T")
CLAIM = Claim("app")
FIELDS = {
    "id": "0" * 32,
    "width": 640,
    "height": 400,
    "format": "jpeg",
    "bytes": 1,
    "frames": 1,
    "has_alpha": False,
    "created": 1.5,
}


class CountingPool(WorkPool):
    """The real pool, counting the jobs run in it."""

    def __init__(self) -> None:
        super().__init__(workers=2, max_queue=4, timeout=30)
        self.jobs = 0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        self.jobs += 1
        return await super().run(fn, *args)


def test_the_same_bytes_again_are_not_sanitized_again(tmp_path: Path) -> None:
    upload = encoded(picture((120, 80)), "AVIF", quality=70, speed=10)  # AVIF: always re-encoded at upload

    async def scenario() -> None:
        pool = CountingPool()
        service = ImageService(Settings(), LocalStore(tmp_path), pool)
        first = await service.ingest(upload, CLAIM)
        assert first.created and pool.jobs == 1
        again = await service.ingest(upload, CLAIM)
        assert (again.meta, again.created, pool.jobs) == (first.meta, False, 1)
        assert again.ref != first.ref  # a second upload is a second reference, sanitized or not
        other = await service.ingest(encoded(picture((120, 80)), "PNG"), CLAIM)
        assert other.created and other.meta.id != first.meta.id and pool.jobs == 2
        pool.shutdown()

    asyncio.run(scenario())


def test_a_remembered_upload_whose_image_was_deleted_is_stored_afresh(tmp_path: Path) -> None:
    """The index points at an id only while the store has its metadata: after a delete (here, or by
    another instance on the same bucket) the same bytes are sanitized and stored again."""
    upload = encoded(picture((64, 48)), "JPEG", quality=90)
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        pool = CountingPool()
        service = ImageService(Settings(), store, pool)
        meta = (await service.ingest(upload, CLAIM)).meta
        await store.delete(keys.metadata(meta.id))  # as another instance's DELETE leaves it
        await store.delete(keys.original(meta.id))
        again = await service.ingest(upload, CLAIM)
        assert again.created and again.meta.id == meta.id and pool.jobs == 2
        assert await store.get(keys.original(meta.id)) is not None
        pool.shutdown()

    asyncio.run(scenario())


def test_metadata_written_before_references_reads_as_legacy() -> None:
    """The version before references wrote no `legacy` field: such an image is legacy (README: Migration)."""
    assert ImageMeta.from_json(json.dumps(FIELDS | {"work": [[480, 300]]}).encode()).legacy is True


def test_new_metadata_is_not_legacy_and_round_trips() -> None:
    meta = ImageMeta(**FIELDS, work=((480, 300),))
    assert meta.legacy is False and ImageMeta.from_json(meta.to_json()) == meta
