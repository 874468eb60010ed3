"""Signed image URLs: HMAC-SHA256 over the image id and the canonical variant parameters.

With `security.signing_keys` set, every image request must carry `s=<signature>`;
without it the allow-list alone bounds what can be asked for. The message is the
id and the parameters as the service parsed them (percent-decoded), with aliases
folded to their canonical names and values trimmed, sorted by name, each name and
value percent-encoded again with one fixed escape set, so the same request written
in another order or with aliases (`width=` for `w=`) carries the same signature,
changing any parameter breaks it, and no two requests share a message: a value
cannot pose as a separator (`?fmt=webp%26w%3D400` is one parameter, `fmt`, and its
message is not that of `?w=400&fmt=webp`). README.md (Security: signed URLs) spells
the message out for signers in other languages, with a worked example that
tests/unit/test_signing.py checks. All configured keys verify (the first one signs),
which allows rotation: add the new key first, re-sign, then drop the old one.
Comparison is constant-time.

    >>> sign_url("https://img.example.com/img/0123...?w=400&fmt=webp", "a-secret-of-at-least-32-characters")
    'https://img.example.com/img/0123...?w=400&fmt=webp&s=...'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit, urlunsplit

from .params import BadParameter, normalize_params  # relative: the Python client ships this file too

SIGNATURE_PARAM = "s"


def escape(text: str) -> str:
    """Percent-encoding of the UTF-8 bytes: all but `A-Z a-z 0-9 - . _ ~` (RFC 3986's unreserved
    characters) become `%XX` with uppercase hex, so `&`, `=` and `%` never stand for themselves."""
    return quote(text, safe="")


def canonical_message(image_id: str, params: Iterable[tuple[str, str]]) -> bytes:
    """`<id>?<name>=<value>&...`: canonical names, sorted, names and values escaped; what a signature covers."""
    normalized = normalize_params(params)
    query = "&".join(f"{escape(name)}={escape(normalized[name])}" for name in sorted(normalized))
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
    """Return `url` (an /img/<id> URL, absolute or a path) with its signature appended.

    The query stays byte for byte as written (an earlier `s=` dropped), so the service
    parses exactly what was signed.
    """
    parts = urlsplit(url)
    segments = parts.path.rstrip("/").split("/")
    if len(segments) < 2 or segments[-2] != "img":
        raise BadParameter(f"not an image URL (expected .../img/<id>?...): {url}")
    kept = [
        piece for piece in parts.query.split("&") if piece and unquote_plus(piece.partition("=")[0]) != SIGNATURE_PARAM
    ]
    sig = signature(key, segments[-1], parse_qsl("&".join(kept), keep_blank_values=True))
    return urlunsplit(parts._replace(query="&".join([*kept, f"{SIGNATURE_PARAM}={sig}"])))
