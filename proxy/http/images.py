"""GET/HEAD /img/<id> (the variant), GET /img/<id>/meta, DELETE /img/<id>.

Image answers are built for a CDN: a strong ETag from the bytes, a year-long
`immutable` Cache-Control (ids are content hashes, so a URL never changes
meaning), `Vary: Accept` exactly when the format was negotiated, and 304 for a
matching If-None-Match. HEAD gets the same headers as GET (uvicorn drops the body).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.http.auth import require_writer
from proxy.http.errors import ApiError
from proxy.http.urls import image_document
from proxy.service import ID_PATTERN, ImageService, NotFound, Variant
from proxy.variants import parse_query

IMMUTABLE = "public, max-age=31536000, immutable"
META_CACHE = "public, max-age=300"


def image_id(request: Request) -> str:
    value = request.path_params["image_id"]
    if not ID_PATTERN.fullmatch(value):
        raise ApiError(400, "bad_id", "image ids are 32 lowercase hexadecimal characters")
    return value


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored; '*' matches anything."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _headers(v: Variant) -> dict[str, str]:
    headers = {
        "content-type": v.entry.content_type,
        "etag": v.entry.etag,
        "cache-control": IMMUTABLE,
        "x-content-type-options": "nosniff",
        "x-cache-tier": v.tier,
    }
    if v.negotiated:
        headers["vary"] = "Accept"
    return headers


async def get_image(request: Request) -> Response:
    service: ImageService = request.app.state.service
    wanted = parse_query(request.query_params.multi_items(), request.app.state.settings.variants)
    variant = await service.variant(image_id(request), wanted, request.headers.get("accept", ""))
    headers = _headers(variant)
    inm = request.headers.get("if-none-match")
    if inm is not None and etag_matches(inm, variant.entry.etag):
        del headers["content-type"]
        return Response(status_code=304, headers=headers)
    return Response(variant.entry.body, headers=headers)


async def get_meta(request: Request) -> JSONResponse:
    service: ImageService = request.app.state.service
    meta = await service.meta(image_id(request))
    if meta is None:
        raise NotFound()
    return JSONResponse(image_document(request, meta),
                        headers={"cache-control": META_CACHE, "x-content-type-options": "nosniff"})


async def delete_image(request: Request) -> Response:
    require_writer(request, request.app.state.settings.auth.upload_tokens)
    await request.app.state.service.delete(image_id(request))
    return Response(status_code=204, headers={"cache-control": "no-store"})
