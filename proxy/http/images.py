"""GET/HEAD /img/<id> (the variant), GET /img/<id>/meta, DELETE /img/<id>.

Image answers are built for a CDN: a strong ETag from the bytes, a year-long
`immutable` Cache-Control (ids are content hashes, so a URL never changes
meaning), `Vary: Accept` exactly when the format was negotiated, and 304 for a
matching If-None-Match. HEAD gets the same headers as GET (uvicorn drops the body).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.http.auth import client_id, require_writer
from proxy.http.errors import ApiError, api_headers
from proxy.http.urls import image_document
from proxy.service import ID_PATTERN, ImageService, NotFound, Variant
from proxy.signing import SIGNATURE_PARAM, verify
from proxy.variants import VariantRequest, parse_query

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


def variant_request(request: Request, image: str) -> VariantRequest:
    """The validated request; with signing on, only after its signature checks out (else 403)."""
    settings = request.app.state.settings
    items = request.query_params.multi_items()
    security = settings.security
    if not security.signing:
        return parse_query(items, settings.variants)
    given = [value for name, value in items if name == SIGNATURE_PARAM]
    params = [(name, value) for name, value in items if name != SIGNATURE_PARAM]
    if len(given) != 1 or not verify(security.signing_keys, image, params, given[0]):
        raise ApiError(403, "bad_signature", "this URL needs a valid signature (s=); sign it with "
                                             "`python -m proxy sign URL` or proxy.signing.sign_url")
    return parse_query(params, settings.variants, security)


async def get_image(request: Request) -> Response:
    service: ImageService = request.app.state.service
    image = image_id(request)
    accept = request.headers.get("accept", "")
    memo_key = (image, request.scope["query_string"], accept)
    variant = service.memory_hit(memo_key) or await service.variant(
        image, variant_request(request, image), accept, client_id(request), memo_key)
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
    return JSONResponse(image_document(request, meta), headers=api_headers(META_CACHE))


async def delete_image(request: Request) -> Response:
    require_writer(request, request.app.state.settings.auth.upload_tokens)
    await request.app.state.service.delete(image_id(request))
    return Response(status_code=204, headers=api_headers("no-store"))
