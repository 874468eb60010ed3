"""Assertions several test modules make about answers and stored bytes."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

XMP_MARKERS = (b"http://ns.adobe.com/xap", b"<x:xmpmeta", b"XMP DataXMP")


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == code and body["detail"], body
    assert "immutable" not in r.headers.get("cache-control", "")
    return body


def assert_no_metadata(data: bytes, what: str) -> None:
    """No EXIF (so no GPS or device data), no XMP, no comment, read with Pillow and by bytes."""
    assert b"Exif\x00\x00" not in data, f"{what}: EXIF marker in bytes"
    assert not any(m in data for m in XMP_MARKERS), f"{what}: XMP in bytes"
    im = Image.open(io.BytesIO(data))
    assert len(im.getexif()) == 0, f"{what}: Pillow reads EXIF tags {dict(im.getexif())}"
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"} & set(im.info), f"{what}: {im.info.keys()}"
