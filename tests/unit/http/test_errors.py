"""proxy.http.errors: one rule per exception class, found through the MRO, registered as the app's
handlers, answering the README's error table with its side effects (storage errors counted and
logged, unexpected errors logged with their traceback)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.exceptions import HTTPException
from starlette.requests import Request

from proxy.app import create_app
from proxy.config import parse_settings
from proxy.http import errors
from proxy.http.errors import ApiError
from proxy.imaging.errors import InvalidImage, TooManyFrames, TooManyPixels, UnsupportedFormat
from proxy.ratelimit import RateLimited
from proxy.remote import FetchFailed, FetchRefused, FetchTooLarge
from proxy.service import NotFound
from proxy.storage import StorageError
from proxy.variants import BadParameter
from proxy.workpool import Overloaded, WorkTimeout
from support.corpus import REPO


class BucketGone(StorageError):
    """A store's own subclass: answers like its nearest listed base."""


# exception, status, code, detail (None: the exception's message), headers beyond the API headers
CASES: list[tuple[Exception, int, str, str | None, dict[str, str]]] = [
    (
        ApiError(401, "unauthorized", "token please", {"www-authenticate": "Bearer"}),
        401,
        "unauthorized",
        None,
        {"www-authenticate": "Bearer"},
    ),
    (BadParameter("w=13 is not allowed"), 400, "bad_parameter", None, {}),
    (NotFound("0" * 32), 404, "not_found", "no image with that id", {}),
    (UnsupportedFormat("not an image"), 415, "unsupported_format", None, {}),
    (InvalidImage("truncated"), 422, "invalid_image", None, {}),
    (TooManyPixels("too big"), 422, "too_many_pixels", None, {}),
    (TooManyFrames("too long"), 422, "too_many_frames", None, {}),
    (RateLimited("uploads", 0.2), 429, "rate_limited", None, {"retry-after": "1"}),
    (RateLimited("uploads", 2.5), 429, "rate_limited", None, {"retry-after": "3"}),
    (FetchRefused("host not allowed"), 403, "fetch_refused", None, {}),
    (FetchRefused("not a URL", 400), 400, "fetch_refused", None, {}),
    (FetchTooLarge("remote body too large"), 413, "payload_too_large", None, {}),
    (FetchFailed("remote answered 500"), 422, "fetch_failed", None, {}),
    (
        Overloaded("16 waiting"),
        503,
        "overloaded",
        "too many renders in progress (16 waiting); retry shortly",
        {"retry-after": "1"},
    ),
    (WorkTimeout("over 20 s"), 503, "render_timeout", None, {"retry-after": "5"}),
    (
        StorageError("connect timeout"),
        503,
        "storage_unavailable",
        "the image store did not answer; retry shortly",
        {"retry-after": "5"},
    ),
    (
        BucketGone("no such bucket"),
        503,
        "storage_unavailable",
        "the image store did not answer; retry shortly",
        {"retry-after": "5"},
    ),
    (HTTPException(404), 404, "not_found", "Not Found", {}),
    (HTTPException(405), 405, "method_not_allowed", "Method Not Allowed", {}),
    (RuntimeError("a bug"), 500, "internal_error", "unexpected server error", {}),
]


def answered(exc: Exception, method: str = "GET", path: str = "/img/" + "0" * 32) -> tuple[int, dict, dict]:
    """What `handle` answers: status, JSON body, headers."""
    request = Request({"type": "http", "method": method, "path": path, "query_string": b"", "headers": []})
    response = asyncio.run(errors.handle(request, exc))
    return response.status_code, json.loads(bytes(response.body)), dict(response.headers)


@pytest.mark.parametrize(("exc", "status", "code", "detail", "extra"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_exception_answers_its_status_code_detail_and_headers(
    exc: Exception, status: int, code: str, detail: str | None, extra: dict[str, str]
) -> None:
    got_status, body, headers = answered(exc)
    assert (got_status, body) == (status, {"error": code, "detail": detail or str(exc)})
    assert headers["cache-control"] == ("public, max-age=10" if status in (400, 404) else "no-store")
    assert headers["x-content-type-options"] == "nosniff"
    assert {name: headers.get(name) for name in extra} == extra


def test_the_readme_error_table_lists_every_answer() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = {
        (int(status), code)
        for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]*) \|", readme, re.M)
        for code in re.findall(r"`([a-z_]+)`", codes)
    }
    assert {(status, code) for _, status, code, _, _ in CASES} <= table


def test_the_app_registers_exactly_the_rules(tmp_path: Path) -> None:
    app = create_app(parse_settings({}, tmp_path))
    assert set(app.exception_handlers) == set(errors.RULES)
    assert set(app.exception_handlers.values()) == {errors.handle}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_storage_errors_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    before = sample("proxy_storage_errors_total", operation="request")
    with caplog.at_level(logging.WARNING, logger="proxy.http"):
        answered(BucketGone("no such bucket"))
    assert sample("proxy_storage_errors_total", operation="request") == before + 1
    assert [r.getMessage() for r in caplog.records] == ["storage unavailable: no such bucket"]


def test_unexpected_errors_are_logged_with_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="proxy.http"):
        answered(RuntimeError("a bug"))
    [record] = caplog.records
    assert record.getMessage() == "unexpected error" and record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_refused_uploads_are_counted_by_code() -> None:
    before = sample("proxy_uploads_rejected_total", reason="too_many_frames")
    answered(TooManyFrames("too long"), method="POST", path="/img")
    answered(TooManyFrames("too long"), method="GET")  # not an upload
    assert sample("proxy_uploads_rejected_total", reason="too_many_frames") == before + 1
