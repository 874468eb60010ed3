"""GET/HEAD /img/<id> (the variant), GET /img/<id>/meta, DELETE /img/<id> and /img/<id>/refs/<ref>.

Image answers are built for a CDN: a strong ETag from the bytes, `Last-Modified`
(the upload time: ids are content hashes, so the image never changes after it),
a year-long `immutable` Cache-Control, and `Vary` naming exactly the request
headers the answer may depend on: `Accept` when the format was negotiated, the
client-hint headers when the URL says `dpr=auto` or `w=auto`. Conditional
requests follow RFC 9110 (If-None-Match wins over If-Modified-Since), a single
byte range answers 206, and HEAD gets the same headers as GET (uvicorn drops the body).
"""

from __future__ import annotations

import re
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache
from typing import Mapping

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.config import VariantSettings
from proxy.http.auth import client_id, require_identity
from proxy.http.errors import ApiError, api_headers
from proxy.http.urls import image_document
from proxy.negotiate import ACCEPT_CH, HINT_HEADERS, hint_value, snap_dpr, snap_width
from proxy.references import REF_PATTERN
from proxy.service import ID_PATTERN, ImageService, NotFound, Variant
from proxy.signing import SIGNATURE_PARAM, verify
from proxy.variants import BadParameter, VariantRequest, normalize_params, parse_query

IMMUTABLE = "public, max-age=31536000, immutable"
META_CACHE = "public, max-age=300"
AUTO = "auto"
_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

Hints = dict[str, float | None]  # "dpr"/"w" the URL leaves to client hints -> the hint sent, if any


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


# --------------------------------------------------------------------------- client hints


@lru_cache(maxsize=4096)
def auto_params(query: bytes) -> tuple[str, ...]:
    """The parameters a raw query string leaves to client hints (`dpr=auto`, `w=auto`/`width=auto`).

    Once per distinct query: a cheap byte test first, then starlette's own query parser,
    so a repeated URL (`fmt=auto` included) does no parsing on the memoised hit path.
    """
    if b"auto" not in query.lower():
        return ()
    params = normalize_params((n, v) for n, v in QueryParams(query).multi_items() if n != SIGNATURE_PARAM)
    return tuple(name for name in HINT_HEADERS if params.get(name, "").lower() == AUTO)


def client_hints(request: Request) -> Hints:
    """The hint the client sent (or None) for each parameter the URL sets to `auto`."""
    return {name: hint_value(request.headers, HINT_HEADERS[name])
            for name in auto_params(request.scope["query_string"])}


def with_hints(items: list[tuple[str, str]], hints: Hints, v: VariantSettings) -> list[tuple[str, str]]:
    """The query with `dpr=auto`/`w=auto` replaced by the hint snapped to the allow-list, or
    dropped when the client sent no hint (as if the URL had not named the parameter)."""
    if not hints:
        return items
    params = normalize_params(items)
    if "w" in hints and {"h", "dpr", "p"} & params.keys():
        raise BadParameter("w=auto takes the width in device pixels from Sec-CH-Width; it cannot be "
                           "combined with h, dpr or p")
    for name, hint in hints.items():
        if hint is None:
            del params[name]
        else:
            params[name] = f"{snap_dpr(hint, v.dprs):g}" if name == "dpr" else str(snap_width(hint, v.widths))
    return list(params.items())


def memo_headers(accept: str, hints: Hints) -> str:
    """Every header value the answer depends on, for the service's (id, query, headers) memo."""
    return "\n".join([accept, *(f"{name}={hint}" for name, hint in hints.items())])


def variant_request(request: Request, image: str, hints: Hints) -> VariantRequest:
    """The validated request; with signing on, only after its signature checks out (else 403).

    The signature covers the URL as written (`dpr=auto`); the hint only picks a value
    from the allow-list, so a signed URL cannot be stretched past it by a header.
    """
    settings = request.app.state.settings
    items = request.query_params.multi_items()
    security = settings.security
    if not security.signing:
        return parse_query(with_hints(items, hints, settings.variants), settings.variants)
    given = [value for name, value in items if name == SIGNATURE_PARAM]
    params = [(name, value) for name, value in items if name != SIGNATURE_PARAM]
    if len(given) != 1 or not verify(security.signing_keys, image, params, given[0]):
        raise ApiError(403, "bad_signature", "this URL needs a valid signature (s=); sign it with "
                                             "`python -m proxy sign URL` or proxy.signing.sign_url")
    return parse_query(with_hints(params, hints, settings.variants), settings.variants, security)


# --------------------------------------------------------------------------- validators and ranges


def http_date(value: str | None) -> float | None:
    """An HTTP-date as a POSIX timestamp; None when absent or unreadable (the header is then ignored)."""
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=4096)
def http_date_of(seconds: int) -> str:
    """`Last-Modified` for a timestamp, formatted once per image rather than once per hit."""
    return formatdate(seconds, usegmt=True)


def not_modified(headers: Mapping[str, str], etag: str, modified: int) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; If-Modified-Since only without it."""
    inm = headers.get("if-none-match")
    if inm is not None:
        return etag_matches(inm, etag)
    since = http_date(headers.get("if-modified-since"))
    return since is not None and modified <= since


def unsatisfiable(size: int) -> ApiError:
    return ApiError(416, "range_not_satisfiable", f"the range starts past the end of the {size}-byte image",
                    {"content-range": f"bytes */{size}"})


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single range (RFC 9110 14.1.2); None to ignore the header and send
    everything (malformed, or several ranges: images are small, a multipart answer is not worth it)."""
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # a suffix: the last N bytes
        if int(last) == 0:
            raise unsatisfiable(size)
        return max(0, size - int(last)), size - 1
    if last and int(last) < int(first):
        return None
    if int(first) >= size:
        raise unsatisfiable(size)
    return int(first), min(int(last), size - 1) if last else size - 1


def wanted_range(request: Request, etag: str, modified: int, size: int) -> tuple[int, int] | None:
    """The range to send, honouring If-Range (only an exact validator match keeps the range).

    Range is defined for GET only, so HEAD (and CDN revalidations) always describe the whole image.
    """
    header = request.headers.get("range")
    if header is None or request.method != "GET":
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() not in (etag, http_date_of(modified)):
        return None
    return byte_range(header, size)


# --------------------------------------------------------------------------- handlers


def vary_of(v: Variant, hints: Hints) -> str:
    return ", ".join((["Accept"] if v.negotiated else []) + [h for name in hints for h in HINT_HEADERS[name]])


@lru_cache(maxsize=16384)
def header_block(content_type: str, etag: str, modified: int, vary: str, tier: str) -> tuple[tuple[str, str], ...]:
    """The headers of an image answer, built once per (variant, tier) rather than once per hit."""
    headers = [
        ("content-type", content_type),
        ("etag", etag),
        ("last-modified", http_date_of(modified)),
        ("cache-control", IMMUTABLE),
        ("accept-ranges", "bytes"),
        ("accept-ch", ACCEPT_CH),
        ("x-content-type-options", "nosniff"),
        ("x-cache-tier", tier),
    ]
    return tuple(headers + [("vary", vary)] if vary else headers)


@lru_cache(maxsize=16384)
def encoded_block(block: tuple[tuple[str, str], ...], length: int) -> tuple[tuple[bytes, bytes], ...]:
    """The whole-body answer's header block as ASGI wants it, with Content-Length: encoded once."""
    return tuple((name.encode("latin-1"), value.encode("latin-1"))
                 for name, value in (*block, ("content-length", str(length))))


class WholeImage(Response):
    """A 200 carrying a prebuilt header block: the hit path's answer, skipping per-request header encoding."""

    def __init__(self, body: bytes, raw_headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = list(raw_headers)


def answer(request: Request, v: Variant, hints: Hints) -> Response:
    """304, 206 or 200 for the variant, in RFC 9110's order: validators first, then Range."""
    body = v.entry.body
    block = header_block(v.entry.content_type, v.entry.etag, v.modified, vary_of(v, hints), v.tier)
    if not_modified(request.headers, v.entry.etag, v.modified):
        return Response(status_code=304, headers={name: value for name, value in block if name != "content-type"})
    span = wanted_range(request, v.entry.etag, v.modified, len(body))
    if span is None:
        return WholeImage(body, encoded_block(block, len(body)))
    first, last = span
    headers = dict(block) | {"content-range": f"bytes {first}-{last}/{len(body)}"}
    return Response(body[first:last + 1], status_code=206, headers=headers)


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
    return JSONResponse(document | {"held": len(refs), "refs": refs},
                        headers=api_headers("no-store") | {"vary": "Authorization"})


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
    identity = require_identity(request)
    service: ImageService = request.app.state.service
    image = image_id(request)
    if not purge_requested(request):
        await service.release_one(image, identity.name)
    elif identity.admin:
        await service.purge(image)
    else:
        raise ApiError(403, "forbidden", "purge=true removes the image for every holder: only a token "
                                         "named in auth.admins may; without it, delete your own references")
    return Response(status_code=204, headers=api_headers("no-store"))


async def delete_reference(request: Request) -> Response:
    """Remove the caller's reference `ref` (404 for one it does not hold, whoever else may)."""
    identity = require_identity(request)
    image = image_id(request)
    ref = request.path_params["ref"]
    if not REF_PATTERN.fullmatch(ref):
        raise ApiError(400, "bad_ref", "reference handles are the 26 characters of `ref` in the upload answer")
    if request.query_params:
        raise ApiError(400, "bad_parameter", "DELETE /img/<id>/refs/<ref> takes no parameters")
    await request.app.state.service.release(image, identity.name, ref)
    return Response(status_code=204, headers=api_headers("no-store"))
