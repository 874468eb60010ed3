"""JSON errors `{"error", "detail"}` with the right status, and the one handler that makes them.

`RULES` is the only list of failures: exception class -> how it answers. The app
registers `handle` for exactly its classes, and `handle` finds the rule through
the exception's MRO as starlette finds the handler, so a subclass (Pillow's
errors via imaging.errors, a store's own StorageError) answers like its nearest
listed base and no exception type reaches the client as a bare 500. Errors carry
a short cache lifetime (400/404, which a CDN may briefly cache) or `no-store`,
never the year-long `immutable` of images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeAlias, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy import metrics
from proxy.imaging.errors import ImageRejected, UnsupportedFormat
from proxy.params import BadParameter
from proxy.ratelimit import RateLimited
from proxy.references import IdempotencyKeyReused, NotHeld
from proxy.remote import FetchFailed, FetchRefused, FetchTooLarge
from proxy.service import NotFound
from proxy.storage import StorageError
from proxy.workpool import Overloaded, WorkTimeout

log = logging.getLogger("proxy.http")
ERROR_MAX_AGE = 10  # seconds a CDN may keep a 400/404
# Non-image answers are data, never a document to render or frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

T = TypeVar("T")
Part: TypeAlias = T | Callable[[Any], T]  # a fixed value, or one computed from the exception


def api_headers(cache_control: str) -> dict[str, str]:
    """Headers for every JSON (non-image) answer."""
    return {"cache-control": cache_control, "x-content-type-options": "nosniff", "content-security-policy": API_CSP}


class ApiError(Exception):
    """An answer decided by the HTTP layer itself (bad id, bad signature, auth, ranges)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def error_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    cache = f"public, max-age={ERROR_MAX_AGE}" if status in (400, 404) else "no-store"
    return JSONResponse(
        {"error": code, "detail": detail}, status_code=status, headers=api_headers(cache) | dict(headers or {})
    )


def _resolved(part: Part[T], exc: Exception) -> T:
    return part(exc) if callable(part) else part


@dataclass(frozen=True)
class Rule:
    """How one exception class answers. `detail` defaults to the exception's message;
    `report` is the side effect the failure deserves (a log line, a counter)."""

    status: Part[int]
    code: Part[str]
    detail: Part[str] = str
    headers: Part[Mapping[str, str]] = field(default_factory=dict)
    report: Callable[[Exception], None] | None = None

    def error(self, exc: Exception) -> ApiError:
        if self.report is not None:
            self.report(exc)
        return ApiError(
            _resolved(self.status, exc),
            _resolved(self.code, exc),
            _resolved(self.detail, exc),
            dict(_resolved(self.headers, exc)),
        )


def _storage_down(exc: Exception) -> None:
    log.warning("storage unavailable: %s", exc)
    metrics.STORAGE_ERRORS.labels("request").inc()


def _retry_after(exc: RateLimited) -> dict[str, str]:
    return {"retry-after": str(exc.retry_after_s)}


def _unexpected(exc: Exception) -> None:
    log.exception("unexpected error", exc_info=exc)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}  # starlette's own 404/405 (no route, wrong method)

RULES: dict[type[Exception], Rule] = {
    ApiError: Rule(attrgetter("status"), attrgetter("code"), attrgetter("detail"), attrgetter("headers")),
    BadParameter: Rule(400, "bad_parameter"),
    NotFound: Rule(404, "not_found", "no image with that id"),
    NotHeld: Rule(404, "not_found", "this token holds no such reference to that image"),  # unknown or another's
    IdempotencyKeyReused: Rule(
        422,
        "idempotency_key_reused",
        "this token used that Idempotency-Key for a different payload; send a new key with each new upload",
    ),
    UnsupportedFormat: Rule(415, attrgetter("code")),
    ImageRejected: Rule(422, attrgetter("code")),  # every other rejection names its own code
    RateLimited: Rule(429, "rate_limited", headers=_retry_after),
    FetchRefused: Rule(attrgetter("status"), "fetch_refused"),
    FetchTooLarge: Rule(413, "payload_too_large"),
    FetchFailed: Rule(422, "fetch_failed"),
    Overloaded: Rule(
        503, "overloaded", lambda exc: f"too many renders in progress ({exc}); retry shortly", {"retry-after": "1"}
    ),
    WorkTimeout: Rule(503, "render_timeout", headers={"retry-after": "5"}),
    StorageError: Rule(
        503,
        "storage_unavailable",
        "the image store did not answer; retry shortly",
        {"retry-after": "5"},
        report=_storage_down,
    ),
    HTTPException: Rule(
        attrgetter("status_code"),
        lambda exc: _HTTP_CODES.get(exc.status_code, "http_error"),
        lambda exc: str(exc.detail),
    ),
    Exception: Rule(500, "internal_error", "unexpected server error", report=_unexpected),
}


def rule_for(exc_type: type[Exception]) -> Rule:
    """The rule of the nearest class in the MRO (`Exception` catches the rest)."""
    return next(RULES[cls] for cls in exc_type.__mro__ if cls in RULES)


async def handle(request: Request, exc: Exception) -> Response:
    err = rule_for(type(exc)).error(exc)
    if request.method == "POST" and request.url.path == "/img":
        metrics.UPLOADS_REJECTED.labels(err.code).inc()
    return error_response(err.status, err.code, err.detail, err.headers)
