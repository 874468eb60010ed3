"""A real cache in front: nginx's proxy_cache, configured as the README recommends, before
`python -m proxy serve`. Proves the origin's headers make a shared cache behave:
repeats are HITs the origin never sees, a negotiated URL is kept once per normalised
Accept (three entries at most), client-hint variants are kept apart, ranges and
revalidations are answered from the cache, and an error is kept no longer than its max-age.

nginx listens on 127.0.0.1 only, with every file (config, cache, logs, pid) in a temp folder.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from PIL import Image

from support.processes import HttpProcess
from support.servers import Server
from proxy.http.errors import ERROR_MAX_AGE

NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)")

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX = "image/avif,image/webp,*/*"
SAFARI_14 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
OLD_CHROME = "image/webp,image/apng,image/*,*/*;q=0.8"
OLD_BROWSER = "image/png,image/*;q=0.8,*/*;q=0.5"

# The README's "Behind a CDN" example, with the paths and ports filled in.
CONFIG = """
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;

    proxy_cache_path {folder}/cache levels=1:2 keys_zone=images:10m max_size=1g inactive=30d use_temp_path=off;

    # Accept reduced to what the origin tells apart, for the cache key ...
    map $http_accept $cache_accept {{
        default       other;
        ~*image/avif  avif;
        ~*image/webp  webp;
    }}
    # ... and sent to the origin in that form, so its answer always matches the key.
    map $cache_accept $origin_accept {{
        avif     "image/avif,image/webp,*/*";
        webp     "image/webp,*/*";
        default  "*/*";
    }}
    # Client hints (only URLs with dpr=auto / w=auto use them): the Sec-CH- name, else the legacy one.
    map $http_sec_ch_dpr $hint_dpr {{
        ""       $http_dpr;
        default  $http_sec_ch_dpr;
    }}
    map $http_sec_ch_width $hint_width {{
        ""       $http_width;
        default  $http_sec_ch_width;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept $origin_accept;
            proxy_set_header Sec-CH-DPR $hint_dpr;
            proxy_set_header DPR "";
            proxy_set_header Sec-CH-Width $hint_width;
            proxy_set_header Width "";

            proxy_cache images;
            proxy_cache_key "$scheme$host$request_uri|$cache_accept|$hint_dpr|$hint_width";
            proxy_ignore_headers Vary;     # the key holds everything the origin varies on
            proxy_cache_lock on;           # one origin request per missing entry
            proxy_cache_revalidate on;     # refresh expired entries with If-None-Match / If-Modified-Since
            # No proxy_cache_valid: lifetimes come from the origin's Cache-Control
            # (a year for images, {error_max_age} s for 400/404, no-store for the rest).
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    folder: Path
    process: HttpProcess

    @property
    def url(self) -> str:
        return self.process.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def entries(self) -> int:
        """Cache files on disk (each is one key)."""
        return sum(1 for p in (self.folder / "cache").rglob("*") if p.is_file())

    def stop(self) -> None:
        self.process.stop()


def start_nginx(folder: Path, origin: Server) -> Nginx:
    """nginx in the foreground on a free port; ready once it accepts a connection (any request would be cached)."""
    for sub in ("cache", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    assert NGINX is not None
    nginx = NGINX
    process = HttpProcess("nginx", lambda _port: [nginx, "-p", str(folder), "-c", str(config), "-e",
                                                  str(folder / "error.log")],
                          folder / "error.log", ready_path=None, stop_grace_s=10)
    user = "user root root;" if os.geteuid() == 0 else ""  # workers must reach the temp folder
    config.write_text(CONFIG.format(folder=folder, user=user, port=process.port, origin=origin.port,
                                    error_max_age=ERROR_MAX_AGE), encoding="utf-8")
    return Nginx(folder, process.start(timeout=10))


@pytest.fixture(scope="module")
def cdn(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx = start_nginx(tmp_path_factory.mktemp("nginx"), server)
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
