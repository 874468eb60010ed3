"""A variant as an HTTP answer: 200, 206 or 304, with headers built for a CDN.

A strong ETag from the bytes, `Last-Modified` (the upload time), a year-long
`immutable` Cache-Control, and `Vary` naming exactly the request headers the
answer depends on: `Accept` when the format was negotiated, the client-hint
headers when the URL says `dpr=auto` or `w=auto`. HEAD gets the same headers
as GET (uvicorn drops the body).

This is the hit path: header blocks are built and encoded once per (variant,
tier) and cached, and a whole-body answer skips starlette's per-response header
encoding (WholeImage; tests/unit/http/test_answer.py holds it to what a plain
Response would send, and pyproject.toml pins the starlette it was checked on).
"""

from __future__ import annotations

from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response

from proxy.http.conditional import http_date_of, not_modified, wanted_range
from proxy.http.hints import Hints, hint_vary
from proxy.negotiate import ACCEPT_CH
from proxy.service import Variant

IMMUTABLE = "public, max-age=31536000, immutable"

HeaderBlock = tuple[tuple[str, str], ...]
RawHeaders = tuple[tuple[bytes, bytes], ...]


def vary_of(v: Variant, hints: Hints) -> str:
    return ", ".join((["Accept"] if v.negotiated else []) + hint_vary(hints))


@lru_cache(maxsize=16384)
def header_block(
    content_type: str, etag: str, modified: int, vary: str, tier: str, size: tuple[int, int]
) -> HeaderBlock:
    """The headers of an image answer, built once per (variant, tier) rather than once per hit.

    `X-Image-Width`/`X-Image-Height` give the pixels sent: a width snapped onto the list
    (w=750 served at 800) differs from what the URL says, and a cache or a page can see it."""
    headers = [
        ("content-type", content_type),
        ("etag", etag),
        ("last-modified", http_date_of(modified)),
        ("cache-control", IMMUTABLE),
        ("accept-ranges", "bytes"),
        ("accept-ch", ACCEPT_CH),
        ("x-content-type-options", "nosniff"),
        ("x-cache-tier", tier),
        ("x-image-width", str(size[0])),
        ("x-image-height", str(size[1])),
    ]
    return tuple(headers + [("vary", vary)] if vary else headers)


@lru_cache(maxsize=16384)
def encoded_block(block: HeaderBlock, length: int) -> RawHeaders:
    """The whole-body answer's header block as ASGI wants it, with Content-Length: encoded once."""
    return tuple(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in (*block, ("content-length", str(length)))
    )


class WholeImage(Response):
    """A 200 carrying a prebuilt header block: the hit path's answer, skipping per-request header encoding.

    It sets the attributes starlette's `Response.__call__` reads instead of calling
    `Response.__init__`, so it depends on starlette internals (see the module docstring).
    """

    def __init__(self, body: bytes, raw_headers: RawHeaders) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = list(raw_headers)


def answer(request: Request, v: Variant, hints: Hints) -> Response:
    """304, 206 or 200 for the variant, in RFC 9110's order: validators first, then Range."""
    body = v.entry.body
    block = header_block(v.entry.content_type, v.entry.etag, v.modified, vary_of(v, hints), v.tier, v.size)
    if not_modified(request.headers, v.entry.etag, v.modified):
        return Response(status_code=304, headers={name: value for name, value in block if name != "content-type"})
    span = wanted_range(request, v.entry.etag, v.modified, len(body))
    if span is None:
        return WholeImage(body, encoded_block(block, len(body)))
    first, last = span
    headers = dict(block) | {"content-range": f"bytes {first}-{last}/{len(body)}"}
    return Response(body[first : last + 1], status_code=206, headers=headers)
