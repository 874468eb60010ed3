"""Byte storage behind one small async interface, chosen by config.

The store knows nothing about images: it maps keys (laid out by proxy.keys) to
bytes. The same keys are used on local disk and in S3, so a bucket can be seeded
from a disk store and back. How long a reader (a CDN or browser reading the
bucket directly) may keep an object is the caller's decision, passed with each
write as its Cache-Control value.
"""

from __future__ import annotations

import os
from typing import Protocol

from proxy.config import StorageSettings

IMMUTABLE = "public, max-age=31536000, immutable"  # never changes under its key: keep it
NO_STORE = "no-store"  # may go away (a delete) or change: never keep a copy


class StorageError(Exception):
    """The store could not be reached or could not complete an operation."""


class Store(Protocol):
    """What the service needs from a storage backend. All methods are safe to call concurrently."""

    async def get(self, key: str) -> bytes | None:
        """Return the object's bytes, or None when it does not exist."""

    async def put(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        """Write the object atomically: a reader sees the old state or all of `data`, never a part.

        `content_type` and `cache_control` travel with the object where the backend keeps
        object headers (S3); the local disk has none and ignores them.
        """

    async def exists(self, key: str) -> bool:
        """Whether the object exists."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder-like prefix ending in "/"), for maintenance, not requests."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; return how many went."""

    async def delete(self, key: str) -> None:
        """Delete one object; a missing object is not an error."""

    async def ping(self) -> None:
        """Raise StorageError unless the backend is reachable now (for a readiness check)."""

    async def close(self) -> None:
        """Release connections and threads."""


def create_store(settings: StorageSettings, render_slots: int | None = None) -> Store:
    """Build the configured backend.

    `render_slots` (the app's render concurrency; None: one per CPU core, like
    render.max_concurrent = 0) sizes the S3 connection pool, because every render
    does store calls and a too-small pool would make renders queue for a connection.
    """
    if settings.backend == "s3":
        from proxy.storage.s3 import S3Store

        return S3Store(settings.s3, render_slots or os.cpu_count() or 1)
    from proxy.storage.local import LocalStore

    return LocalStore(settings.path)
