"""A real cache in front: nginx's proxy_cache, configured as the README recommends
(support.nginx), before `python -m proxy serve`. Proves the origin's headers make a shared
cache behave: repeats are HITs the origin never sees, a negotiated URL is kept once per
normalised Accept (three entries at most), client-hint variants are kept apart, ranges and
revalidations are answered from the cache, and an error is kept no longer than its max-age.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from proxy.http.errors import ERROR_MAX_AGE
from support.nginx import NGINX, Nginx, start_nginx
from support.servers import Server

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)")

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX = "image/avif,image/webp,*/*"
SAFARI_14 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
OLD_CHROME = "image/webp,image/apng,image/*,*/*;q=0.8"
OLD_BROWSER = "image/png,image/*;q=0.8,*/*;q=0.5"


@pytest.fixture(scope="module")
def cdn(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx = start_nginx(tmp_path_factory.mktemp("nginx"), server.port)
    yield nginx
    nginx.stop()


def wait_for_entries(cdn: Nginx, count: int) -> int:
    """nginx renames a cache file into place just after the answer; give it a moment."""
    deadline = time.monotonic() + 2
    while cdn.entries() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return cdn.entries()


def test_a_repeat_is_a_hit_the_origin_never_sees(cdn: Nginx, server: Server, corpus: Path) -> None:
    image = server.upload(corpus / "photos/orientation_2.jpg")["id"]
    url = f"/img/{image}?w=320&fmt=webp"
    renders = server.health()["renders"]
    with cdn.client() as c:
        first, second = c.get(url), c.get(url)
        assert (first.headers["x-cache-status"], first.headers["x-cache-tier"]) == ("MISS", "render")
        assert second.headers["x-cache-status"] == "HIT" and second.content == first.content
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["cache-control"] == "public, max-age=31536000, immutable"
        revalidated = c.get(url, headers={"if-none-match": first.headers["etag"]})
        ranged = c.get(url, headers={"range": "bytes=10-19"})
    assert server.health()["renders"] == renders + 1
    assert (revalidated.status_code, revalidated.headers["x-cache-status"]) == (304, "HIT")
    assert (ranged.status_code, ranged.headers["x-cache-status"]) == (206, "HIT")
    assert ranged.content == first.content[10:20]


def test_a_negotiated_url_is_cached_once_per_normalised_accept(cdn: Nginx, server: Server, corpus: Path) -> None:
    image = server.upload(corpus / "photos/orientation_3.jpg")["id"]
    url = f"/img/{image}?w=400"
    renders, entries = server.health()["renders"], cdn.entries()
    browsers = {CHROME: "image/avif", SAFARI_14: "image/webp", OLD_BROWSER: "image/jpeg"}
    with cdn.client() as c:
        for accept, media in browsers.items():
            for status in ("MISS", "HIT"):
                r = c.get(url, headers={"accept": accept})
                assert (r.headers["x-cache-status"], r.headers["content-type"]) == (status, media), accept
                assert r.headers["vary"] == "Accept"  # passed on to browser caches
                assert Image.open(io.BytesIO(r.content)).size == (400, 267)
        # Other browsers' Accept strings land on the same three entries.
        for accept, media in {FIREFOX: "image/avif", OLD_CHROME: "image/webp", "": "image/jpeg"}.items():
            r = c.get(url, headers={"accept": accept})
            assert (r.headers["x-cache-status"], r.headers["content-type"]) == ("HIT", media), accept
    assert server.health()["renders"] == renders + 3
    assert wait_for_entries(cdn, entries + 3) == entries + 3


def test_client_hint_variants_are_cached_apart(cdn: Nginx, server: Server, corpus: Path) -> None:
    image = server.upload(corpus / "photos/orientation_4.jpg")["id"]
    url = f"/img/{image}?w=320&dpr=auto&fmt=webp"
    with cdn.client() as c:
        for hints, width in (({"sec-ch-dpr": "2"}, 640), ({}, 320), ({"dpr": "2"}, 640), ({"sec-ch-dpr": "1"}, 320)):
            r = c.get(url, headers=hints)
            assert Image.open(io.BytesIO(r.content)).size[0] == width, hints
            assert r.headers["vary"] == "Sec-CH-DPR, DPR"
        statuses = [c.get(url, headers=h).headers["x-cache-status"] for h in ({"sec-ch-dpr": "2"}, {})]
    assert statuses == ["HIT", "HIT"]


def test_an_error_is_cached_no_longer_than_its_max_age(cdn: Nginx, server: Server, corpus: Path) -> None:
    """A 404 for an id is kept for ERROR_MAX_AGE seconds: once the image exists, the CDN shows it
    after at most that long, not after a year."""
    image = server.upload(corpus / "photos/orientation_7.jpg")["id"]
    with server.client() as c:
        assert c.delete(f"/img/{image}").status_code == 204
    url = f"/img/{image}?w=200&fmt=webp"
    with cdn.client() as c:
        missing = c.get(url)
        cached_at = time.monotonic()
        assert (missing.status_code, missing.headers["x-cache-status"]) == (404, "MISS")
        assert missing.headers["cache-control"] == f"public, max-age={ERROR_MAX_AGE}"
        assert c.get(url).headers["x-cache-status"] == "HIT"
        server.upload(corpus / "photos/orientation_7.jpg")  # the same bytes: the same id exists again
        with server.client() as origin:
            assert origin.get(url).status_code == 200
        assert c.get(url).status_code == 404  # the CDN still answers from its copy
        while (r := c.get(url)).status_code == 404:
            assert time.monotonic() - cached_at < ERROR_MAX_AGE + 2, "the 404 outlived its max-age"
            time.sleep(0.25)
    assert time.monotonic() - cached_at >= ERROR_MAX_AGE - 2  # nginx counts whole seconds
    assert r.status_code == 200 and r.headers["x-cache-status"] in ("EXPIRED", "MISS")
