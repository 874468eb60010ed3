"""proxy.signing: what a URL signature covers, key rotation, and signing whole URLs.

The expected signatures are computed here with hmac/hashlib from the documented message
(`<id>?<canonical name>=<value>&...`, names sorted, names and values percent-encoded with
RFC 3986's unreserved characters kept), not taken from the module under test, and the
README's worked example is recomputed from the README's own text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.params import KNOWN_PARAMS, BadParameter, normalize_params
from proxy.signing import SIGNATURE_PARAM, canonical_message, escape, sign_url, signature, verify
from support.corpus import REPO

IMAGE = "0123456789abcdef0123456789abcdef"
KEY = "current-signing-key-0123456789abcdef"
OLD_KEY = "previous-signing-key-0123456789abcd"
RETIRED_KEY = "retired-signing-key-0123456789abcde"
QUERY = [("w", "400"), ("fmt", "webp")]


def hmac_b64(key: str, message: bytes) -> str:
    """URL-safe base64 of HMAC-SHA256 without padding: the documented signature encoding."""
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_message_is_the_id_and_the_canonical_parameters_sorted() -> None:
    assert (
        canonical_message(IMAGE, [("w", "400"), ("fmt", "webp"), ("q", "80")])
        == f"{IMAGE}?fmt=webp&q=80&w=400".encode()
    )
    assert canonical_message(IMAGE, []) == f"{IMAGE}?".encode()


def test_names_and_values_are_escaped_so_a_value_cannot_pose_as_a_separator() -> None:
    """`?fmt=webp%26w%3D400` is one parameter, fmt = "webp&w=400": its message (and so its
    signature) is not that of `?w=400&fmt=webp`, which the unescaped message made it."""
    smuggled = [("fmt", "webp&w=400")]
    assert canonical_message(IMAGE, smuggled) == f"{IMAGE}?fmt=webp%26w%3D400".encode()
    assert canonical_message(IMAGE, smuggled) != canonical_message(IMAGE, QUERY)
    assert not verify((KEY,), IMAGE, smuggled, signature(KEY, IMAGE, QUERY))
    assert canonical_message(IMAGE, [("fmt", "webp%26w%3D400")]) == f"{IMAGE}?fmt=webp%2526w%253D400".encode()


def test_the_escape_set_is_rfc_3986_unreserved_with_uppercase_hex() -> None:
    unreserved = "ABCXYZabcxyz0189-._~"
    assert escape(unreserved) == unreserved
    assert escape(" !\"#$%&'()*+,/:;=?@[]") == "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"
    assert escape("é€") == "%C3%A9%E2%82%AC"  # UTF-8 bytes


def decode_message(message: bytes) -> tuple[str, dict[str, str]]:
    """The inverse of the documented encoding: it exists only if the encoding is injective."""
    image, _, query = message.decode().partition("?")
    pairs = [piece.split("=") for piece in query.split("&")] if query else []
    assert all(len(pair) == 2 for pair in pairs), message  # no '=' or '&' survives inside a name or value
    return image, {unquote(name): unquote(value) for name, value in pairs}


@given(st.dictionaries(st.sampled_from(KNOWN_PARAMS), st.text().map(str.strip)))
def test_the_message_decodes_back_to_the_parsed_parameters(params: dict[str, str]) -> None:
    """Whatever the values hold, the message gives back exactly the parameters: two different
    requests never share a message, so never a signature."""
    assert decode_message(canonical_message(IMAGE, list(params.items()))) == (IMAGE, normalize_params(params.items()))


def readme_example() -> dict[str, str]:
    """The `field: value` lines of README.md's signature example block."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- signature-example -->\n```\n(.*?)```\n<!-- end signature-example -->", readme, re.S)
    assert block, "README.md lost its signature example"
    return {name: value.strip() for name, _, value in (line.partition(":") for line in block[1].splitlines())}


def test_the_readme_example_is_what_the_service_computes() -> None:
    example = readme_example()
    url = urlsplit(example["URL"])
    image = url.path.rsplit("/", 1)[1]
    params = parse_qsl(url.query, keep_blank_values=True)
    assert canonical_message(image, params).decode() == example["message"]
    assert hmac_b64(example["key"], example["message"].encode()) == example["signature"]
    assert signature(example["key"], image, params) == example["signature"]
    assert sign_url(example["URL"], example["key"]) == example["signed URL"]


def test_the_signature_is_hmac_sha256_of_the_message() -> None:
    assert signature(KEY, IMAGE, QUERY) == hmac_b64(KEY, f"{IMAGE}?fmt=webp&w=400".encode())


@pytest.mark.parametrize(
    "spelling",
    [
        [("fmt", "webp"), ("w", "400")],  # another order
        [("width", "400"), ("format", "webp")],  # aliases
        [("f", "webp"), ("W", "400")],  # the short alias, a name in capitals
        [("w", " 400 "), ("fmt", "webp")],  # values are trimmed like the service trims them
    ],
)
def test_aliases_and_order_give_the_same_signature(spelling: list[tuple[str, str]]) -> None:
    assert signature(KEY, IMAGE, spelling) == signature(KEY, IMAGE, QUERY)


@pytest.mark.parametrize(
    ("image", "query"),
    [
        (IMAGE, [("w", "480"), ("fmt", "webp")]),  # another width
        (IMAGE, [("w", "400"), ("fmt", "avif")]),  # another format
        (IMAGE, [("w", "400"), ("fmt", "webp"), ("q", "90")]),  # one parameter more
        (IMAGE, [("w", "400")]),  # one parameter less
        (IMAGE, [("h", "400"), ("fmt", "webp")]),  # the same value under another name
        ("f" * 32, QUERY),  # another image
    ],
)
def test_any_change_to_the_request_breaks_the_signature(image: str, query: list[tuple[str, str]]) -> None:
    given = signature(KEY, IMAGE, QUERY)
    assert signature(KEY, image, query) != given
    assert not verify((KEY,), image, query, given)


def test_parameters_the_service_refuses_cannot_be_signed() -> None:
    with pytest.raises(BadParameter):
        signature(KEY, IMAGE, [("w", "400"), ("zoom", "2")])
    with pytest.raises(BadParameter):
        signature(KEY, IMAGE, [("w", "400"), ("width", "480")])  # the same parameter twice


def test_every_configured_key_verifies_for_rotation() -> None:
    keys = (KEY, OLD_KEY)
    assert verify(keys, IMAGE, QUERY, signature(KEY, IMAGE, QUERY))
    assert verify(keys, IMAGE, QUERY, signature(OLD_KEY, IMAGE, QUERY))  # URLs signed before the rotation
    assert not verify(keys, IMAGE, QUERY, signature(RETIRED_KEY, IMAGE, QUERY))
    assert not verify(keys, IMAGE, QUERY, "")
    assert not verify(keys, IMAGE, QUERY, signature(KEY, IMAGE, QUERY)[:-1])
    assert not verify((), IMAGE, QUERY, signature(KEY, IMAGE, QUERY))


def signed_parts(url: str) -> tuple[str, list[tuple[str, str]], str]:
    """(path, the other parameters, the signature) of a signed URL."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    others = [(k, v) for k, v in pairs if k != SIGNATURE_PARAM]
    signatures = [v for k, v in pairs if k == SIGNATURE_PARAM]
    assert len(signatures) == 1, url
    return parts.path, others, signatures[0]


@pytest.mark.parametrize(
    "url",
    [
        f"https://img.example.com/img/{IMAGE}?w=400&fmt=webp",
        f"http://127.0.0.1:8000/img/{IMAGE}?w=400&fmt=webp",
        f"/img/{IMAGE}?w=400&fmt=webp",
        f"https://cdn.example.com/assets/img/{IMAGE}?w=400&fmt=webp",  # under a path prefix
    ],
)
def test_sign_url_appends_the_signature_and_keeps_the_rest(url: str) -> None:
    signed = sign_url(url, KEY)
    assert signed == f"{url}&{SIGNATURE_PARAM}={signature(KEY, IMAGE, QUERY)}"
    path, others, given = signed_parts(signed)
    assert path.rsplit("/", 1)[1] == IMAGE and others == QUERY
    assert verify((KEY,), IMAGE, others, given)


def test_sign_url_keeps_the_query_as_written() -> None:
    """Escapes stay escapes: the service must parse the very parameters that were signed."""
    url = f"/img/{IMAGE}?fmt=webp%26w%3D400"
    signed = sign_url(url, KEY)
    assert signed == f"{url}&{SIGNATURE_PARAM}={signature(KEY, IMAGE, [('fmt', 'webp&w=400')])}"
    assert sign_url(f"/img/{IMAGE}?w=400&s=old&fmt=webp", KEY) == sign_url(f"/img/{IMAGE}?w=400&fmt=webp", KEY)


def test_sign_url_without_parameters_and_over_an_old_signature() -> None:
    bare = sign_url(f"/img/{IMAGE}", KEY)
    assert bare == f"/img/{IMAGE}?{SIGNATURE_PARAM}={hmac_b64(KEY, f'{IMAGE}?'.encode())}"
    resigned = sign_url(sign_url(f"/img/{IMAGE}?w=400&fmt=webp", OLD_KEY), KEY)  # re-signing after a rotation
    assert resigned == sign_url(f"/img/{IMAGE}?w=400&fmt=webp", KEY)


@pytest.mark.parametrize(
    "url",
    [
        f"https://img.example.com/images/{IMAGE}?w=400",
        f"https://img.example.com/{IMAGE}?w=400",
        "https://img.example.com/",
        "/img",
        "",
    ],
)
def test_sign_url_refuses_urls_that_are_not_image_urls(url: str) -> None:
    with pytest.raises(BadParameter, match="not an image URL"):
        sign_url(url, KEY)
