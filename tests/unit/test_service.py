"""ImageService.ingest with a real local store and a real work pool: the same bytes twice are sanitized once.

The pool is the service's own WorkPool, counting the jobs it is handed: an upload it has
seen answers from the raw-upload index without a sanitize job, and the index never
answers with an image that is gone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, TypeVar

from proxy import keys
from proxy.config import Settings
from proxy.service import ImageService
from proxy.storage.local import LocalStore
from proxy.workpool import WorkPool
from support.wild import encoded, picture

T = TypeVar("T")


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
        first, created = await service.ingest(upload)
        assert created and pool.jobs == 1
        again, created = await service.ingest(upload)
        assert (again, created, pool.jobs) == (first, False, 1)
        other, created = await service.ingest(encoded(picture((120, 80)), "PNG"))
        assert created and other.id != first.id and pool.jobs == 2
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
        meta, _ = await service.ingest(upload)
        await store.delete(keys.metadata(meta.id))  # as another instance's DELETE leaves it
        await store.delete(keys.original(meta.id))
        again, created = await service.ingest(upload)
        assert created and again.id == meta.id and pool.jobs == 2
        assert await store.get(keys.original(meta.id)) is not None
        pool.shutdown()

    asyncio.run(scenario())
