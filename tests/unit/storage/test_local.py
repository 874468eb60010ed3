"""LocalStore: atomic writes (temp file + rename), no partial files after errors, key safety."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from proxy.storage import IMMUTABLE, StorageError
from proxy.storage.local import LocalStore


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_put_get_exists_delete_prefix(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    async def scenario() -> None:
        await store.put("variants/abc/1x1.webp", b"one", "image/webp", IMMUTABLE)
        await store.put("variants/abc/2x2.webp", b"two", "image/webp", IMMUTABLE)
        await store.put("originals/abc", b"orig", "image/jpeg", IMMUTABLE)
        assert await store.get("variants/abc/1x1.webp") == b"one"
        assert await store.get("variants/abc/missing.webp") is None
        assert await store.exists("originals/abc")
        assert await store.delete_prefix("variants/abc/") == 2
        await store.delete("originals/abc")
        await store.delete("originals/abc")  # deleting twice is fine

    asyncio.run(scenario())
    assert files(tmp_path) == set()


def test_failed_write_leaves_neither_partial_nor_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    asyncio.run(store.put("originals/keep", b"old complete bytes", "image/jpeg", IMMUTABLE))

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(StorageError):
        asyncio.run(store.put("originals/keep", b"new bytes that never land", "image/jpeg", IMMUTABLE))
    with pytest.raises(StorageError):
        asyncio.run(store.put("originals/new", b"x" * 100_000, "image/jpeg", IMMUTABLE))
    assert files(tmp_path) == {"originals/keep"}
    assert (tmp_path / "originals/keep").read_bytes() == b"old complete bytes"


def test_temp_files_left_by_a_crash_are_swept_at_start(tmp_path: Path) -> None:
    (tmp_path / "variants/abc").mkdir(parents=True)
    (tmp_path / "variants/abc/.tmp-123").write_bytes(b"half a file")
    (tmp_path / "variants/abc/1x1.webp").write_bytes(b"complete")
    LocalStore(tmp_path)
    assert files(tmp_path) == {"variants/abc/1x1.webp"}


@pytest.mark.parametrize("key", ["../escape", "originals/../../etc/passwd", "/abs", "a//b", "variants/.tmp-x", ""])
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(StorageError):
        asyncio.run(store.put(key, b"x", "image/jpeg", IMMUTABLE))
