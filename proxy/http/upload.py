"""POST /img: read a bounded body (raw or multipart), hand the bytes to the service."""

from __future__ import annotations

import json
from typing import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.http.auth import require_identity
from proxy.http.errors import ApiError, api_headers
from proxy.http.urls import image_document
from proxy.service import ImageService


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the upload is larger than limits.max_upload_bytes ({limit} bytes)")


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit`.

    A declared Content-Length over the limit is refused before a byte is read;
    a chunked or lying body is counted while it streams and cut off at the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def file_from_multipart(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field named `file`."""
    parser = MultiPartParser(request.headers, _once(body), max_files=1, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, "bad_multipart", f"could not parse the multipart body: {exc.message}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "bad_multipart", "the multipart body needs a file field named 'file'")
        return await upload.read()
    finally:
        await form.close()


def url_from_json(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "the JSON body does not parse; expected {\"url\": \"https://...\"}") from None
    if not isinstance(document, dict) or not isinstance(document.get("url"), str):
        raise ApiError(400, "bad_request", "expected a JSON object {\"url\": \"https://...\"}")
    return str(document["url"])


async def upload(request: Request) -> JSONResponse:
    """An image as the raw body, as multipart field `file`, or {"url": ...} to import it from the web."""
    settings = request.app.state.settings
    service: ImageService = request.app.state.service
    require_identity(request)  # and its rate limit, before reading a byte of the body
    body = await read_limited(request, settings.limits.max_upload_bytes)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        meta, created = await service.ingest(await file_from_multipart(request, body))
    elif content_type.startswith("application/json"):
        meta, created = await service.ingest_url(url_from_json(body))
    else:
        meta, created = await service.ingest(body)
    return JSONResponse(await image_document(request, meta), status_code=201 if created else 200,
                        headers=api_headers("no-store"))
