"""What a CDN and a browser rely on, over real HTTP: validators, ranges, client hints, the
meta document's srcset/<picture>/placeholder, and the demo page's own CSP.

The parsing helpers get a few direct checks first; everything else runs against
`python -m proxy serve` on both storage backends.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from email.utils import formatdate, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageStat

from proxy import keys
from proxy.signing import sign_url
from support.servers import Server, ServerFactory

PHOTO = "photos/orientation_1.jpg"  # 1800x1200, upright
WIDTHS = (64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720, 800, 960, 1080, 1200, 1280, 1440, 1600, 1920, 2048)
KEY = "a-signing-key-of-at-least-32-characters"


def size_of(r: httpx.Response) -> tuple[int, int]:
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content)).size


@pytest.fixture(scope="module")
def photo(server: Server, corpus: Path) -> dict[str, Any]:
    """The photo uploaded once per backend, with the time window of its upload."""
    before = time.time()
    with server.client() as c:
        r = c.post("/img", content=(corpus / PHOTO).read_bytes())
    assert r.status_code in (200, 201), r.text
    return r.json() | {"uploaded_between": (before, time.time())}


# --------------------------------------------------------------------------- Last-Modified and conditionals


def test_last_modified_is_the_upload_time(photo: dict[str, Any], server: Server) -> None:
    created = json.loads(server.stored(keys.metadata(photo["id"])))["created"]
    low, high = photo["uploaded_between"]
    assert low - 1 <= created <= high
    with server.client() as c:
        for query in ("w=320&fmt=webp", "w=320", "p=small"):
            r = c.get(f"/img/{photo['id']}?{query}", headers={"accept": "image/webp"})
            assert r.headers["last-modified"] == formatdate(int(created), usegmt=True), query


def test_if_modified_since_and_its_precedence(photo: dict[str, Any], server: Server) -> None:
    url = f"/img/{photo['id']}?w=240"  # negotiated: Vary must survive on every answer
    accept = {"accept": "image/avif,image/webp,*/*"}
    with server.client() as c:
        full = c.get(url, headers=accept)
        modified, etag = full.headers["last-modified"], full.headers["etag"]
        earlier = formatdate(parsedate_to_datetime(modified).timestamp() - 1, usegmt=True)
        later = formatdate(time.time() + 3600, usegmt=True)
        cases = [  # (extra headers, expected status)
            ({"if-modified-since": modified}, 304),
            ({"if-modified-since": later}, 304),
            ({"if-modified-since": earlier}, 200),
            ({"if-modified-since": "not a date"}, 200),
            ({"if-none-match": '"other"', "if-modified-since": modified}, 200),  # If-None-Match wins
            ({"if-none-match": etag, "if-modified-since": earlier}, 304),
        ]
        for method in ("GET", "HEAD"):
            for extra, status in cases:
                r = c.request(method, url, headers=accept | extra)
                assert r.status_code == status, (method, extra)
                assert r.headers["vary"] == "Accept" and r.headers["etag"] == etag, (method, extra)
                assert (
                    r.headers["last-modified"] == modified
                    and r.headers["cache-control"] == full.headers["cache-control"]
                )
                assert r.content == (full.content if status == 200 and method == "GET" else b"")
        assert c.get(url, headers=accept).headers["x-cache-tier"] == "memory"  # and the tiers agree
        assert c.head(url, headers=accept | {"if-none-match": etag}).headers["vary"] == "Accept"


# --------------------------------------------------------------------------- ranges


def test_single_byte_ranges_answer_206(photo: dict[str, Any], server: Server) -> None:
    url = f"/img/{photo['id']}?w=400&fmt=webp"
    with server.client() as c:
        full = c.get(url)
        body, etag, size = full.content, full.headers["etag"], len(full.content)
        assert full.headers["accept-ranges"] == "bytes"
        for header, (first, last) in {
            "bytes=0-99": (0, 99),
            "bytes=100-": (100, size - 1),
            "bytes=-64": (size - 64, size - 1),
            "bytes=5-99999999": (5, size - 1),
        }.items():
            r = c.get(url, headers={"range": header})
            assert r.status_code == 206, header
            assert r.headers["content-range"] == f"bytes {first}-{last}/{size}", header
            assert r.content == body[first : last + 1] and r.headers["content-length"] == str(last - first + 1)
            assert r.headers["etag"] == etag and r.headers["content-type"] == "image/webp"
        unsatisfiable = c.get(url, headers={"range": f"bytes={size}-"})
        assert unsatisfiable.status_code == 416 and unsatisfiable.json()["error"] == "range_not_satisfiable"
        assert unsatisfiable.headers["content-range"] == f"bytes */{size}"
        assert unsatisfiable.headers["cache-control"] == "no-store"
        for ignored in (
            {"range": "bytes=0-9,20-29"},
            {"range": "bytes=9-0"},
            {"range": "bytes=0-9", "if-range": '"stale-etag"'},
        ):
            r = c.get(url, headers=ignored)
            assert r.status_code == 200 and r.content == body, ignored
        assert c.get(url, headers={"range": "bytes=0-9", "if-range": etag}).content == body[:10]
        assert c.get(url, headers={"range": "bytes=0-9", "if-range": full.headers["last-modified"]}).status_code == 206
        assert c.get(url, headers={"range": "bytes=0-9", "if-none-match": etag}).status_code == 304
        head = c.head(url, headers={"range": "bytes=0-9"})  # Range is defined for GET only
        assert head.status_code == 200 and head.headers["content-length"] == str(size)


# --------------------------------------------------------------------------- client hints


def test_dpr_auto_follows_the_dpr_hint_and_varies_on_it(photo: dict[str, Any], server: Server) -> None:
    url = f"/img/{photo['id']}?w=400&dpr=auto&fmt=webp"
    cases = [
        ({"sec-ch-dpr": "2"}, 800),
        ({"sec-ch-dpr": "2.625"}, 800),
        ({"dpr": "1.7"}, 600),
        ({"sec-ch-dpr": "3", "dpr": "1"}, 1200),
        ({"sec-ch-dpr": "0.5"}, 400),
        ({"sec-ch-dpr": "junk"}, 400),
        ({}, 400),
    ]
    with server.client() as c:
        for _ in range(2):  # rendered, then from the memo + memory tier: the memo key must hold the hint
            for hints, width in cases:
                r = c.get(url, headers=hints)
                assert size_of(r)[0] == width, hints
                assert r.headers["vary"] == "Sec-CH-DPR, DPR", hints
                assert r.headers["accept-ch"] == "Sec-CH-DPR, Sec-CH-Width"
        assert r.headers["x-cache-tier"] == "memory"
        negotiated = c.get(f"/img/{photo['id']}?w=400&dpr=auto", headers={"accept": "image/webp", "sec-ch-dpr": "2"})
        assert negotiated.headers["vary"] == "Accept, Sec-CH-DPR, DPR" and size_of(negotiated)[0] == 800
        assert (
            c.get(f"/img/{photo['id']}?p=small&dpr=auto&fmt=webp", headers={"sec-ch-dpr": "2"}).headers["etag"]
            == c.get(f"/img/{photo['id']}?w=640&fmt=webp").headers["etag"]
        )


def test_urls_without_auto_ignore_hints_and_do_not_vary(photo: dict[str, Any], server: Server) -> None:
    """Opt-in per URL: the default URL stays one cache entry per format, whatever devices ask."""
    hints = {"sec-ch-dpr": "2", "sec-ch-width": "1000", "dpr": "3", "width": "1500"}
    with server.client() as c:
        for query, width in (("w=400&fmt=webp", 400), ("w=400&dpr=1.5&fmt=webp", 600), ("fmt=webp", 1800)):
            r = c.get(f"/img/{photo['id']}?{query}", headers=hints)
            assert size_of(r)[0] == width, query
            assert "vary" not in r.headers, query


def test_w_auto_follows_the_width_hint(photo: dict[str, Any], server: Server) -> None:
    url = f"/img/{photo['id']}?w=auto&fmt=webp"
    with server.client() as c:
        for hints, width in (
            ({"sec-ch-width": "500"}, 560),
            ({"width": "64"}, 64),
            ({"sec-ch-width": "1"}, 64),
            ({"sec-ch-width": "3000"}, 1800),
            ({}, 1800),
        ):
            r = c.get(url, headers=hints)
            assert size_of(r)[0] == width, hints
            assert r.headers["vary"] == "Sec-CH-Width, Width"
        assert (
            c.get(f"/img/{photo['id']}?width=AUTO&fmt=webp", headers={"sec-ch-width": "300"}).headers["etag"]
            == c.get(f"/img/{photo['id']}?w=320&fmt=webp").headers["etag"]
        )
        for clash in ("w=auto&dpr=2", "w=auto&h=300", "w=auto&dpr=auto", "p=small&w=auto"):
            r = c.get(f"/img/{photo['id']}?{clash}", headers={"sec-ch-width": "500"})
            assert r.status_code == 400 and r.json()["error"] == "bad_parameter", clash


# --------------------------------------------------------------------------- the meta document


class Tags(HTMLParser):
    """(tag, attributes) of every start tag."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse_srcset(srcset: str) -> list[tuple[str, int]]:
    return [(url, int(w.removesuffix("w"))) for url, w in (item.split(" ") for item in srcset.split(", "))]


def test_meta_offers_srcset_per_format_with_true_widths(photo: dict[str, Any], server: Server) -> None:
    with server.client() as c:
        doc = c.get(f"/img/{photo['id']}/meta").json()
        assert list(doc["srcset"]) == ["avif", "webp", "jpeg"]
        for fmt, srcset in doc["srcset"].items():
            entries = parse_srcset(srcset)
            assert [w for _, w in entries] == [w for w in WIDTHS if w < 1800] + [1800], fmt
            assert all(url == f"{server.url}/img/{photo['id']}?w={w}&fmt={fmt}" for url, w in entries[:-1])
            for url, width in (entries[0], entries[-1]):  # the descriptor is the width the browser gets
                r = c.get(url, headers={"accept": "*/*"})
                assert size_of(r)[0] == width and r.headers["content-type"] == f"image/{fmt}", url


def test_meta_picture_snippet(photo: dict[str, Any], server: Server) -> None:
    with server.client() as c:
        doc = c.get(f"/img/{photo['id']}/meta").json()
    tags = Tags(doc["picture"]).tags
    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]
    (_, avif), (_, webp), (_, img) = tags[1:]
    assert (avif["type"], avif["srcset"]) == ("image/avif", doc["srcset"]["avif"])  # unescaped by the parser
    assert (webp["type"], webp["srcset"]) == ("image/webp", doc["srcset"]["webp"])
    assert img["srcset"] == doc["srcset"]["jpeg"] and img["src"] == f"{doc['url']}?w=800&fmt=jpeg"
    assert (img["width"], img["height"], img["loading"], img["alt"]) == ("1800", "1200", "lazy", "")
    assert avif["sizes"] == img["sizes"] == "(max-width: 1800px) 100vw, 1800px"
    assert "&amp;" in doc["picture"] and "&fmt" not in doc["picture"]  # attribute values are escaped


def test_placeholder_is_a_tiny_faithful_preview_made_once(photo: dict[str, Any], server: Server) -> None:
    """Made with the upload, then served from memory: no variant render, nothing stored (speed is bench/'s to
    measure; the render counter says no work was done)."""
    renders, stored = server.health()["renders"], server.stored_files()
    with server.client(anonymous=True) as c:  # the public document: a token adds the caller's references
        docs = [c.get(f"/img/{photo['id']}/meta").json() for _ in range(5)]
        assert server.health()["renders"] == renders and server.stored_files() == stored
        full = Image.open(io.BytesIO(c.get(f"/img/{photo['id']}?w=400&fmt=png").content)).convert("RGB")
    uri = docs[0]["placeholder"]
    assert all(d == docs[0] for d in docs) and uri.startswith("data:image/webp;base64,")
    data = base64.b64decode(uri.removeprefix("data:image/webp;base64,"))
    assert len(data) < 1024
    preview = Image.open(io.BytesIO(data))
    assert preview.format == "WEBP" and preview.size == (16, 11)
    mean_preview, mean_full = ImageStat.Stat(preview.convert("RGB")).mean, ImageStat.Stat(full).mean
    assert all(abs(a - b) < 12 for a, b in zip(mean_preview, mean_full)), (mean_preview, mean_full)
    # as the upload answered, but for the upload's own reference
    assert docs[0] == {k: v for k, v in photo.items() if k not in ("uploaded_between", "ref")}


@pytest.mark.parametrize(
    "path,formats,fallback_width",
    [
        ("formats/png_rgba.png", ["avif", "webp", "png"], 200),  # transparent: a PNG fallback, never a white box
        ("formats/gif_animated.gif", ["webp", "jpeg"], 245),  # animated: no AVIF (a still) ahead of WebP
    ],
)
def test_meta_formats_fit_the_image(
    server: Server, corpus: Path, path: str, formats: list[str], fallback_width: int
) -> None:
    upload = server.upload((corpus / path).read_bytes())
    with server.client(anonymous=True) as c:  # the public document: a token adds the caller's references
        doc = c.get(f"/img/{upload['id']}/meta").json()
    assert doc == {k: v for k, v in upload.items() if k != "ref"}  # the upload answer, but for its reference
    assert list(doc["srcset"]) == formats
    assert parse_srcset(doc["srcset"][formats[-1]])[-1][1] == fallback_width


def test_signed_documents_sign_every_url_and_hints_stay_in_the_allow_list(
    make_server: ServerFactory, corpus: Path
) -> None:
    public = "https://img.example.test"
    srv = make_server(security={"signing_keys": [KEY]}, server={"public_url": public})
    with srv.client() as c:
        doc = c.post("/img", content=(corpus / PHOTO).read_bytes()).json()
        local = [url.replace(public, srv.url) for fmt in doc["srcset"] for url, _ in parse_srcset(doc["srcset"][fmt])]
        assert all("&s=" in url for url in local)
        for url in (local[0], local[-1]):
            assert c.get(url).status_code == 200, url
        assert c.get(local[0].split("&s=")[0]).status_code == 403  # the unsigned form is refused
        hinted = sign_url(f"{srv.url}/img/{doc['id']}?w=400&dpr=auto&fmt=webp", KEY)
        assert size_of(c.get(hinted, headers={"sec-ch-dpr": "9"}))[0] == 1200  # snapped to dprs (max 3)
        page = c.get("/")
    assert f"img-src 'self' data: {public};" in page.headers["content-security-policy"]


# --------------------------------------------------------------------------- the demo page


def test_demo_page_has_its_own_csp_and_no_inline_code(server: Server) -> None:
    with server.client() as c:
        page = c.get("/")
        script = c.get("/static/demo.js")
        style = c.get("/static/demo.css")
        api = [c.get("/healthz"), c.get("/static/missing.js"), c.get("/img/" + "0" * 32)]
    csp = page.headers["content-security-policy"]
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self';" in csp and "img-src 'self' data:;" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["accept-ch"] == "Sec-CH-DPR, Sec-CH-Width"
    scripts = [attrs for tag, attrs in Tags(page.text).tags if tag == "script"]
    assert scripts == [{"src": "/static/demo.js", "defer": None}]  # a file, nothing inline
    assert "<script>" not in page.text and "style=" not in page.text and not re.search(r"\son\w+=", page.text)
    assert script.headers["content-type"].startswith("text/javascript") and 'fetch("/img"' in script.text
    assert style.headers["content-type"].startswith("text/css")
    for r in api:  # everything else keeps the strict API policy
        assert r.headers["content-security-policy"].startswith("default-src 'none'"), r.url
        assert "script-src" not in r.headers["content-security-policy"]
