"""JSON errors `{"error", "detail"}` with the right status, and the handlers that make them.

Every failure the service can raise has one mapping here, so no exception
type (Pillow's included, via imaging.errors) reaches the client as a 500.
Errors carry a short cache lifetime (400/404, which a CDN may briefly cache)
or `no-store`, never the year-long `immutable` of images.
"""

from __future__ import annotations

import logging
import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy import metrics
from proxy.imaging.errors import ImageRejected, UnsupportedFormat
from proxy.ratelimit import RateLimited
from proxy.references import IdempotencyKeyReused, NotHeld
from proxy.remote import FetchFailed, FetchRefused, FetchTooLarge
from proxy.service import NotFound
from proxy.storage import StorageError
from proxy.variants import BadParameter
from proxy.workpool import Overloaded, WorkTimeout

log = logging.getLogger("proxy.http")
ERROR_MAX_AGE = 10  # seconds a CDN may keep a 400/404
# Non-image answers are data, never a document to render or frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def api_headers(cache_control: str) -> dict[str, str]:
    """Headers for every JSON (non-image) answer."""
    return {"cache-control": cache_control, "x-content-type-options": "nosniff", "content-security-policy": API_CSP}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    cache = f"public, max-age={ERROR_MAX_AGE}" if status in (400, 404) else "no-store"
    return JSONResponse({"error": code, "detail": detail}, status_code=status,
                        headers=api_headers(cache) | (headers or {}))


def _mapped(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BadParameter):
        return ApiError(400, "bad_parameter", str(exc))
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", "no image with that id")
    if isinstance(exc, NotHeld):  # the same answer for an unknown reference and another token's
        return ApiError(404, "not_found", "this token holds no such reference to that image")
    if isinstance(exc, IdempotencyKeyReused):
        return ApiError(422, "idempotency_key_reused", "this token used that Idempotency-Key for a different "
                                                       "payload; send a new key with each new upload")
    if isinstance(exc, ImageRejected):
        return ApiError(415 if isinstance(exc, UnsupportedFormat) else 422, exc.code, str(exc))
    if isinstance(exc, RateLimited):
        return ApiError(429, "rate_limited", str(exc), {"retry-after": str(max(1, math.ceil(exc.retry_after)))})
    if isinstance(exc, FetchRefused):
        return ApiError(exc.status, "fetch_refused", str(exc))
    if isinstance(exc, FetchTooLarge):
        return ApiError(413, "payload_too_large", str(exc))
    if isinstance(exc, FetchFailed):
        return ApiError(422, "fetch_failed", str(exc))
    if isinstance(exc, Overloaded):
        return ApiError(503, "overloaded", f"too many renders in progress ({exc}); retry shortly", {"retry-after": "1"})
    if isinstance(exc, WorkTimeout):
        return ApiError(503, "render_timeout", str(exc), {"retry-after": "5"})
    if isinstance(exc, StorageError):
        log.warning("storage unavailable: %s", exc)
        metrics.STORAGE_ERRORS.labels("request").inc()
        return ApiError(503, "storage_unavailable", "the image store did not answer; retry shortly",
                        {"retry-after": "5"})
    if isinstance(exc, HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        return ApiError(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
    log.exception("unexpected error", exc_info=exc)
    return ApiError(500, "internal_error", "unexpected server error")


async def handle(request: Request, exc: Exception) -> Response:
    err = _mapped(exc)
    if request.method == "POST" and request.url.path == "/img":
        metrics.UPLOADS_REJECTED.labels(err.code).inc()
    return error_response(err.status, err.code, err.detail, err.headers)


HANDLED = (ApiError, BadParameter, NotFound, ImageRejected, Overloaded, WorkTimeout, StorageError, HTTPException,
           RateLimited, FetchRefused, FetchFailed, FetchTooLarge, NotHeld, IdempotencyKeyReused, Exception)
