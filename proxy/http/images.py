"""GET/HEAD /img/<id> (the variant), GET /img/<id>/meta, DELETE /img/<id> and /img/<id>/refs/<ref>.

The handlers only tie the pieces together: the requested variant (http.query,
with client hints from http.hints), the service's memoised hit path, and the
answer with its validators and ranges (http.answer, http.conditional).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.http.answer import answer
from proxy.http.auth import require_identity, require_writer
from proxy.http.clients import client_id
from proxy.http.errors import ApiError, api_headers
from proxy.http.hints import Hints, client_hints
from proxy.http.query import variant_request
from proxy.http.urls import image_document
from proxy.references import REF_PATTERN
from proxy.service import ID_PATTERN, ImageService, NotFound

META_CACHE = "public, max-age=300"


def image_id(request: Request) -> str:
    value: str = request.path_params["id"]  # the route's {id} (str convertor)
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
        image, variant_request(request, image, hints), accept, client_id(request), memo_key
    )
    return answer(request, variant, hints)


async def get_meta(request: Request) -> JSONResponse:
    """The public document; with a token, also how many references the caller holds and their handles.

    The two differ by `Authorization`, which `Vary` says; the caller's answer is never cached.
    """
    service: ImageService = request.app.state.service
    image = image_id(request)
    identity = require_identity(request) if "authorization" in request.headers else None
    meta = await service.meta(image)
    if meta is None:
        raise NotFound()
    document = await image_document(request, meta)
    if identity is None:
        return JSONResponse(document, headers=api_headers(META_CACHE) | {"vary": "Authorization"})
    refs = await service.held(image, identity.name)
    return JSONResponse(
        document | {"held": len(refs), "refs": refs}, headers=api_headers("no-store") | {"vary": "Authorization"}
    )


def purge_requested(request: Request) -> bool:
    """`?purge=true` on DELETE /img/<id>; any other parameter or value is a 400, like on reads."""
    items = request.query_params.multi_items()
    if not items:
        return False
    if len(items) > 1 or items[0][0] != "purge" or items[0][1] not in ("true", "false"):
        raise ApiError(400, "bad_parameter", "DELETE /img/<id> takes only purge=true (admins) or purge=false")
    return items[0][1] == "true"


async def delete_image(request: Request) -> Response:
    """Remove one reference the caller holds (the image goes with the last); admins may purge it outright."""
    identity = require_writer(request)
    service: ImageService = request.app.state.service
    image = image_id(request)
    if not purge_requested(request):
        await service.release_one(image, identity.name)
    elif identity.admin:
        await service.purge(image)
    else:
        raise ApiError(
            403,
            "forbidden",
            "purge=true removes the image for every holder: only a token "
            "named in auth.admins may; without it, delete your own references",
        )
    return Response(status_code=204, headers=api_headers("no-store"))


async def delete_reference(request: Request) -> Response:
    """Remove the caller's reference `ref` (404 for one it does not hold, whoever else may)."""
    identity = require_writer(request)
    image = image_id(request)
    ref = request.path_params["ref"]
    if not REF_PATTERN.fullmatch(ref):
        raise ApiError(400, "bad_ref", "reference handles are the 26 characters of `ref` in the upload answer")
    if request.query_params:
        raise ApiError(400, "bad_parameter", "DELETE /img/<id>/refs/<ref> takes no parameters")
    await request.app.state.service.release(image, identity.name, ref)
    return Response(status_code=204, headers=api_headers("no-store"))
