"""POST /img: read a bounded body (raw or multipart), hand the bytes to the service for the caller.

The answer carries the caller's new reference (`ref`) next to the image's id. An
`Idempotency-Key` header (IETF httpapi draft) makes a retry after a lost answer return
the same reference instead of adding one; keys are scoped to the token.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.http.auth import require_writer
from proxy.http.errors import ApiError, api_headers
from proxy.http.urls import image_document
from proxy.references import Claim
from proxy.service import ImageService

IDEMPOTENCY_KEY = "idempotency-key"
MAX_KEY_LENGTH = 255
_BARE_KEY = re.compile(r"[!#-~]+")  # visible ASCII but '"': what clients send unquoted (Stripe-style)
_QUOTED_KEY = re.compile(r'"((?:[ !#-\[\]-~]|\\[\\"])+)"')  # a Structured Fields sf-string, as the draft says


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


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
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
        raise ApiError(400, "bad_request", 'the JSON body does not parse; expected {"url": "https://..."}') from None
    if not isinstance(document, dict) or not isinstance(document.get("url"), str):
        raise ApiError(400, "bad_request", 'expected a JSON object {"url": "https://..."}')
    return str(document["url"])


def parse_idempotency_key(values: list[str]) -> str | None:
    """The Idempotency-Key from its header values: quoted (`"abc"`, the draft's sf-string) or bare
    (`abc`, as many clients send it); None without the header, 400 for anything else."""
    if not values:
        return None
    value = values[0].strip()
    quoted = _QUOTED_KEY.fullmatch(value)
    if quoted:
        key: str | None = re.sub(r"\\(.)", r"\1", quoted.group(1))
    else:
        key = value if _BARE_KEY.fullmatch(value) else None
    if len(values) > 1 or key is None or len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            400,
            "bad_idempotency_key",
            f"Idempotency-Key must be one value of 1 to {MAX_KEY_LENGTH} "
            'visible ASCII characters, e.g. "4f2c1e0a-..." (a UUID)',
        )
    return key


async def upload(request: Request) -> JSONResponse:
    """An image as the raw body, as multipart field `file`, or {"url": ...} to import it from the web."""
    settings = request.app.state.settings
    service: ImageService = request.app.state.service
    # The caller's identity (and its rate limit) before reading a byte of the body.
    claim = Claim(require_writer(request).name, parse_idempotency_key(request.headers.getlist(IDEMPOTENCY_KEY)))
    body = await read_limited(request, settings.limits.max_upload_bytes)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        result = await service.ingest(await file_from_multipart(request, body), claim)
    elif content_type.startswith("application/json"):
        result = await service.ingest_url(url_from_json(body), claim)
    else:
        result = await service.ingest(body, claim)
    return JSONResponse(
        await image_document(request, result.meta) | {"ref": result.ref},
        status_code=201 if result.created else 200,
        headers=api_headers("no-store"),
    )
