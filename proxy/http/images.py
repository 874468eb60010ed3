"""GET/HEAD /img/<id> (the variant), GET /img/<id>/meta, DELETE /img/<id>.

The handlers only tie the pieces together: the requested variant (http.query,
with client hints from http.hints), the service's memoised hit path, and the
answer with its validators and ranges (http.answer, http.conditional).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.http.answer import answer
from proxy.http.auth import require_identity
from proxy.http.clients import client_id
from proxy.http.errors import ApiError, api_headers
from proxy.http.hints import Hints, client_hints
from proxy.http.query import variant_request
from proxy.http.urls import image_document
from proxy.service import ID_PATTERN, ImageService, NotFound

META_CACHE = "public, max-age=300"


def image_id(request: Request) -> str:
    value = request.path_params["id"]
    if not ID_PATTERN.fullmatch(value):
        raise ApiError(400, "bad_id", "image ids are 32 lowercase hexadecimal characters")
    return value


def memo_headers(accept: str, hints: Hints) -> str:
    """Every header value the answer depends on, for the service's (id, query, headers) memo."""
    return "\n".join([accept, *(f"{name}={hint}" for name, hint in hints.items())])


async def get_image(request: Request) -> Response:
    service: ImageService = request.app.state.service
    image = image_id(request)
    hints = client_hints(request)
    accept = request.headers.get("accept", "")
    memo_key = (image, request.scope["query_string"], memo_headers(accept, hints))
    variant = service.memory_hit(memo_key) or await service.variant(
        image, variant_request(request, image, hints), accept, client_id(request), memo_key)
    return answer(request, variant, hints)


async def get_meta(request: Request) -> JSONResponse:
    service: ImageService = request.app.state.service
    meta = await service.meta(image_id(request))
    if meta is None:
        raise NotFound()
    return JSONResponse(await image_document(request, meta), headers=api_headers(META_CACHE))


async def delete_image(request: Request) -> Response:
    require_identity(request)
    await request.app.state.service.delete(image_id(request))
    return Response(status_code=204, headers=api_headers("no-store"))
