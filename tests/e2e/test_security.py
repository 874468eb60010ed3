"""Security: signed URLs, safe import from a URL (SSRF), abuse limits, response hardening.

The import tests run a small HTTP server on 127.0.0.2 (loopback, but outside
127.0.0.1) and allow exactly that address with fetch.allowed_networks; every
other private target (127.0.0.1, ::1, 169.254.169.254, 10.x) must be refused
before any connection is made.
"""

from __future__ import annotations

import http.client
import http.server
import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from proxy.signing import sign_url
from support.checks import assert_error
from support.corpus import REPO
from support.processes import free_port
from support.servers import Server

KEY_NEW = "new-signing-key-0123456789abcdefghij"
KEY_OLD = "old-signing-key-0123456789abcdefghij"
KEY_RETIRED = "retired-key-0123456789abcdefghijklmn"


# --------------------------------------------------------------------------- signed URLs


@pytest.fixture
def signed_server(make_server: Any) -> Server:
    return make_server(
        security={"signing_keys": [KEY_NEW, KEY_OLD], "max_width": 3000, "max_height": 3000, "max_pixels": 3_000_000}
    )


def test_unsigned_forged_tampered_and_retired_key_signatures_get_403(signed_server: Server, corpus: Path) -> None:
    image = signed_server.upload(corpus / "photos/orientation_1.jpg", expect=201)["id"]
    good = sign_url(f"/img/{image}?w=400&fmt=webp", KEY_NEW)
    with signed_server.client() as c:
        assert c.get(good).status_code == 200
        assert_error(c.get(f"/img/{image}?w=400&fmt=webp"), 403, "bad_signature")
        assert_error(
            c.get(f"/img/{image}?w=400&fmt=webp&s=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 403, "bad_signature"
        )
        assert_error(c.get(good.replace("w=400", "w=480")), 403, "bad_signature")  # tampered size
        assert_error(c.get(good.replace(image, "0" * 32)), 403, "bad_signature")  # another image
        assert_error(c.get(good + "&s=again"), 403, "bad_signature")  # two signatures
        assert_error(c.get(sign_url(f"/img/{image}?w=400&fmt=webp", KEY_RETIRED)), 403, "bad_signature")
        assert c.get(sign_url(f"/img/{image}?w=400&fmt=webp", KEY_OLD)).status_code == 200  # rotation


def test_signature_covers_the_canonical_request(signed_server: Server, corpus: Path) -> None:
    image = signed_server.upload(corpus / "photos/orientation_2.jpg", expect=201)["id"]
    signature = sign_url(f"/img/{image}?w=400&fmt=webp", KEY_NEW).rsplit("s=", 1)[1]
    with signed_server.client() as c:
        assert c.get(f"/img/{image}?fmt=webp&w=400&s={signature}").status_code == 200  # order
        assert c.get(f"/img/{image}?width=400&format=webp&s={signature}").status_code == 200  # aliases


def test_a_value_cannot_carry_the_signature_of_other_parameters(signed_server: Server, corpus: Path) -> None:
    """`?fmt=webp%26w%3D400` is one parameter (fmt = "webp&w=400"); it once verified with the
    signature of `?w=400&fmt=webp`, the signed message being the same text."""
    image = signed_server.upload(corpus / "photos/orientation_4.jpg", expect=201)["id"]
    signature = sign_url(f"/img/{image}?w=400&fmt=webp", KEY_NEW).rsplit("s=", 1)[1]
    with signed_server.client() as c:
        assert c.get(f"/img/{image}?w=400&fmt=webp&s={signature}").status_code == 200
        assert_error(c.get(f"/img/{image}?fmt=webp%26w%3D400&s={signature}"), 403, "bad_signature")
        # Signed as what it is, it passes the signature and is refused as the format it names.
        assert_error(c.get(sign_url(f"/img/{image}?fmt=webp%26w%3D400", KEY_NEW)), 400, "bad_parameter")


def test_signed_urls_may_leave_the_allow_list_within_the_caps(signed_server: Server, corpus: Path) -> None:
    image = signed_server.upload(corpus / "photos/nokia_8.3_5g_gps_9mp.jpg", expect=201)["id"]  # 4608x1976
    with signed_server.client() as c:
        off_list = c.get(sign_url(f"/img/{image}?w=333&q=77&fmt=webp", KEY_NEW))
        assert off_list.status_code == 200
        assert Image.open(io.BytesIO(off_list.content)).size == (333, 143)
        assert_error(c.get(sign_url(f"/img/{image}?w=3001", KEY_NEW)), 400, "bad_parameter")  # over max_width
        assert_error(c.get(sign_url(f"/img/{image}?w=1500&dpr=3", KEY_NEW)), 400, "bad_parameter")
        over_pixels = c.get(sign_url(f"/img/{image}?w=2500&h=2500&fit=cover", KEY_NEW))  # 1976x1976 > 3 Mpx
        assert "hard cap" in assert_error(over_pixels, 400, "bad_parameter")["detail"]


def test_json_documents_carry_signed_urls_and_the_cli_signs(signed_server: Server, corpus: Path) -> None:
    doc = signed_server.upload(corpus / "photos/orientation_3.jpg", expect=201)
    with httpx.Client(timeout=30) as c:
        assert c.get(doc["url"]).status_code == 200
        assert all(c.get(url).status_code == 200 for url in doc["variants"].values())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy",
            "sign",
            "--config",
            str(signed_server.config),
            f"{signed_server.url}/img/{doc['id']}?w=320&fmt=jpeg",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert httpx.get(result.stdout.strip(), timeout=30).headers["content-type"] == "image/jpeg"


def test_without_keys_the_allow_list_alone_applies(server: Server, corpus: Path) -> None:
    image = server.upload(corpus / "photos/orientation_4.jpg")["id"]
    with server.client() as c:
        assert c.get(f"/img/{image}?w=400").status_code == 200
        snapped = c.get(f"/img/{image}?w=333")  # not a size of its own: served as the next one on the list
        assert snapped.status_code == 200 and snapped.headers["x-image-width"] == "400"


# --------------------------------------------------------------------------- import from a URL


class Origin(http.server.BaseHTTPRequestHandler):
    """A tiny web server on 127.0.0.2 serving the cases the importer must handle."""

    photo = b""
    private_port = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/photo.jpg":
            self._send(200, self.photo)
        elif self.path == "/big":
            self._send(200, b"\xff\xd8" + b"\x00" * 3_000_000)
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.end_headers()
            for _ in range(300):
                self.wfile.write(b"\x00" * 10_000)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("content-length", str(len(self.photo)))
            self.end_headers()
            for i in range(0, len(self.photo), 1000):
                self.wfile.write(self.photo[i : i + 1000])
                self.wfile.flush()
                time.sleep(0.5)
        elif self.path == "/to-private":
            self._redirect(f"http://127.0.0.1:{self.private_port}/photo.jpg")
        elif self.path == "/to-other-host":
            self._redirect("http://localhost/photo.jpg")
        elif self.path == "/to-same":
            self._redirect("/photo.jpg")
        else:
            self._send(404, b"no")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("location", location)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin(corpus: Path) -> Iterator[str]:
    """http://127.0.0.2:<port> and a decoy on 127.0.0.1 that must never be reached."""
    Origin.photo = (corpus / "photos/orientation_5.jpg").read_bytes()
    decoy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    Origin.private_port = decoy.server_address[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.2", free_port()), Origin)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (server, decoy)]
    for t in threads:
        t.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    for s in (server, decoy):
        s.shutdown()
        s.server_close()


@pytest.fixture
def importer(make_server: Any) -> Server:
    return make_server(
        limits={"max_upload_bytes": 1_000_000},
        fetch={
            "allowed_hosts": [
                "127.0.0.2",
                "127.0.0.1",
                "::1",
                "localhost",
                "169.254.169.254",
                "10.0.0.1",
                "::ffff:127.0.0.1",
                "fd00:ec2::254",
            ],
            "allowed_networks": ["127.0.0.2/32"],
            "read_timeout_s": 1.0,
            "total_timeout_s": 3.0,
        },
    )


def import_url(srv: Server, url: str) -> httpx.Response:
    with srv.client() as c:
        return c.post("/img", json={"url": url})


def test_import_from_an_allowed_host(importer: Server, origin: str) -> None:
    r = import_url(importer, f"{origin}/photo.jpg")
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (1800, 1200)
    assert import_url(importer, f"{origin}/to-same").status_code == 200  # same host redirect, same image


@pytest.mark.parametrize(
    "target,status",
    [
        ("http://127.0.0.1:{port}/photo.jpg", 403),
        ("http://[::1]:{port}/photo.jpg", 403),
        ("http://[::ffff:127.0.0.1]:{port}/photo.jpg", 403),
        ("http://169.254.169.254/latest/meta-data/", 403),
        ("http://[fd00:ec2::254]/latest/meta-data/", 403),
        ("http://10.0.0.1/photo.jpg", 403),
        ("http://localhost:{port}/photo.jpg", 403),  # a name that resolves to loopback
        ("http://example.com/photo.jpg", 403),  # not on the host allow-list
        ("{origin}/to-private", 403),
        ("{origin}/to-other-host", 403),
        ("file:///etc/passwd", 400),
        ("ftp://127.0.0.2/photo.jpg", 400),
        ("http://user:pw@127.0.0.2/photo.jpg", 400),
        ("{origin}/big", 413),
        ("{origin}/big-chunked", 413),
        ("{origin}/missing", 422),
    ],
)
def test_ssrf_and_bad_imports_are_refused_and_store_nothing(
    importer: Server, origin: str, target: str, status: int
) -> None:
    before = importer.stored_versions()
    url = target.format(origin=origin, port=Origin.private_port)
    r = import_url(importer, url)
    assert r.status_code == status, (url, r.text)
    assert r.json()["error"] and r.json()["detail"]
    assert importer.stored_versions() == before


def test_a_slow_body_is_cut_off_by_the_total_time_limit(importer: Server, origin: str) -> None:
    started = time.monotonic()
    r = import_url(importer, f"{origin}/slow")
    assert_error(r, 422, "fetch_failed")
    assert time.monotonic() - started < 6
    assert importer.stored_files() == set()


def test_import_is_off_without_allowed_hosts(server: Server) -> None:
    assert_error(import_url(server, "http://127.0.0.2/photo.jpg"), 403, "fetch_refused")


# --------------------------------------------------------------------------- abuse limits


def test_rate_limits_answer_429_while_hits_keep_flowing(make_server: Any, corpus: Path) -> None:
    srv = make_server(rate_limits={"uploads_per_minute": 2, "upload_burst": 2, "misses_per_minute": 2, "miss_burst": 3})
    photos = ["photos/orientation_6.jpg", "photos/orientation_7.jpg", "photos/orientation_8.jpg"]
    with srv.client() as c:
        ids = [c.post("/img", content=(corpus / p).read_bytes()) for p in photos]
        assert [r.status_code for r in ids] == [201, 201, 429]
        limited = assert_error(ids[2], 429, "rate_limited")
        assert int(ids[2].headers["retry-after"]) >= 1 and limited["detail"]
        image = ids[0].json()["id"]
        misses = [c.get(f"/img/{image}?w={w}&fmt=webp") for w in (160, 200, 240, 320)]
        assert [r.status_code for r in misses] == [200, 200, 200, 429]
        assert "retry-after" in misses[3].headers
        for _ in range(20):  # cached variants are never rate limited
            hit = c.get(f"/img/{image}?w=160&fmt=webp")
            assert hit.status_code == 200 and hit.headers["x-cache-tier"] == "memory"


# --------------------------------------------------------------------------- hardening


@pytest.mark.parametrize(
    "path",
    [
        "/img/..%2F..%2Fetc%2Fpasswd",
        "/img/%2e%2e",
        "/img/..",
        "/img/.%2e/meta",
        "/img/" + "0" * 31 + "%00",
        "/img/" + "A" * 32,
        "/img/%252e%252e%252f",
    ],
)
def test_traversal_ids_are_rejected(server: Server, path: str) -> None:
    """Sent byte for byte (http.client): httpx would resolve `/img/..` to `/`, the demo page."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        status, content_type, body = r.status, r.getheader("content-type"), r.read()
    finally:
        conn.close()
    assert status in (400, 404), (path, status)
    assert content_type == "application/json"
    assert b"root:" not in body


def test_every_response_is_hardened(server: Server, corpus: Path) -> None:
    image = server.upload(corpus / "photos/orientation_1.jpg")["id"]
    with server.client() as c:
        answers = [
            c.get("/healthz"),
            c.get("/readyz"),
            c.get(f"/img/{image}/meta"),
            c.get(f"/img/{image}?w=160"),
            c.get("/img/" + "0" * 32),
            c.get("/nope"),
            c.post("/img", content=b"not an image"),
            c.get(f"/img/{image}?w=3"),
        ]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert "server" not in r.headers, r.url
        if not r.headers["content-type"].startswith("image/"):
            assert "default-src 'none'" in r.headers["content-security-policy"], r.url
