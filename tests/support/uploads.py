"""Uploading images to a running service: the one way tests and benchmarks post to `POST /img`.

Takes an httpx client (on the service's base URL), not a Server, so bench/ and tests that
drive servers of their own use it as well. The status is checked here, with the answer's
body in the message, because an upload that silently failed only shows up later as a
puzzling 404 on a variant.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

ANY_SUCCESS = (200, 201)  # 201: stored now; 200: the same bytes were stored before


def upload(
    client: httpx.Client,
    image: bytes | Path,
    *,
    expect: int | tuple[int, ...] = ANY_SUCCESS,
    token: str | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    """POST `image` (bytes, or a file's) as the raw body; the JSON document, once the status is one of `expect`.

    `token` goes in `Authorization: Bearer`; `content_type` is sent only when given (the
    service ignores it and sniffs the bytes, which some tests prove by sending a wrong one).
    """
    headers = {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if content_type is not None:
        headers["content-type"] = content_type
    data = image.read_bytes() if isinstance(image, Path) else image
    r = client.post("/img", content=data, headers=headers)
    allowed = (expect,) if isinstance(expect, int) else expect
    if r.status_code not in allowed:
        raise AssertionError(
            f"POST /img answered {r.status_code}, expected {' or '.join(map(str, allowed))}: {r.text[:500]}"
        )
    doc: dict[str, Any] = r.json()
    return doc


def upload_files(client: httpx.Client, folder: Path, paths: Iterable[str], **options: Any) -> dict[str, dict[str, Any]]:
    """Each file `folder / path` uploaded once with `upload(**options)`: path -> its JSON document."""
    docs = {}
    for path in paths:
        try:
            docs[path] = upload(client, folder / path, **options)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from None
    return docs
