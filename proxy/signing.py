"""Signed image URLs: HMAC-SHA256 over the image id and the canonical variant parameters.

With `security.signing_keys` set, every image request must carry `s=<signature>`;
without it the allow-list alone bounds what can be asked for. The message is
the id plus the parameters after alias folding, sorted by name, so the same
request written in another order or with aliases (`width=` for `w=`) carries
the same signature, and changing any parameter breaks it. All configured keys
verify (the first one signs), which allows rotation: add the new key first,
re-sign, then drop the old one. Comparison is constant-time.

    >>> sign_url("https://img.example.com/img/0123...?w=400&fmt=webp", "a-secret-of-at-least-32-characters")
    'https://img.example.com/img/0123...?w=400&fmt=webp&s=...'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .params import BadParameter, normalize_params  # relative: the Python client ships this file too

SIGNATURE_PARAM = "s"


def canonical_message(image_id: str, params: Iterable[tuple[str, str]]) -> bytes:
    """`<id>?<name>=<value>&...` with canonical names, sorted: what a signature covers."""
    normalized = normalize_params(params)
    query = "&".join(f"{name}={normalized[name]}" for name in sorted(normalized))
    return f"{image_id}?{query}".encode()


def signature(key: str, image_id: str, params: Iterable[tuple[str, str]]) -> str:
    digest = hmac.new(key.encode(), canonical_message(image_id, params), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(keys: tuple[str, ...], image_id: str, params: list[tuple[str, str]], given: str) -> bool:
    """Whether `given` was made with any of `keys`; every key is tried, so timing tells nothing."""
    message = canonical_message(image_id, params)
    given_bytes = given.encode()
    ok = False
    for key in keys:
        expected = base64.urlsafe_b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).rstrip(b"=")
        ok |= hmac.compare_digest(expected, given_bytes)
    return ok


def sign_url(url: str, key: str) -> str:
    """Return `url` (an /img/<id> URL, absolute or a path) with its signature appended."""
    parts = urlsplit(url)
    segments = parts.path.rstrip("/").split("/")
    if len(segments) < 2 or segments[-2] != "img":
        raise BadParameter(f"not an image URL (expected .../img/<id>?...): {url}")
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != SIGNATURE_PARAM]
    query = "&".join(f"{k}={v}" for k, v in params)
    sig = signature(key, segments[-1], params)
    return urlunsplit(parts._replace(query=f"{query}&{SIGNATURE_PARAM}={sig}" if query else f"{SIGNATURE_PARAM}={sig}"))
