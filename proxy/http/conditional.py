"""RFC 9110 validators and ranges for image answers: If-None-Match, If-Modified-Since, Range, If-Range.

Images never change under their URL (ids are content hashes), so the validators
are a strong ETag from the bytes and `Last-Modified` = the upload time. If-None-Match
wins over If-Modified-Since (13.2.2); a single byte range answers 206, anything
fancier is ignored and the whole (small) image sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache

from starlette.requests import Request

from proxy.http.errors import ApiError

_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored; '*' matches anything."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


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
    return ApiError(
        416,
        "range_not_satisfiable",
        f"the range starts past the end of the {size}-byte image",
        {"content-range": f"bytes */{size}"},
    )


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
