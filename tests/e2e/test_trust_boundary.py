"""The service as the README deploys it, behind a real nginx (support.nginx): who may write, and who a
request counts as.

Outside clients are played by sockets bound to other loopback addresses (127.0.0.x), which
nginx reports as `$remote_addr`, so "distinct real clients" are distinct to nginx and the
origin alike. Two nginx set-ups: the README's block, and the same block without its
`X-Forwarded-For` line (a deployment that forgot it; nginx then passes a client's own
X-Forwarded-For through). Proves, on both storage backends:

- no upload or delete passes without a valid token, whatever the client claims to be
  (X-Forwarded-For, X-Real-IP, Forwarded: 127.0.0.1) and through either nginx; the store is
  unchanged; with a token both work; the origin itself gives loopback clients nothing either;
- misses are counted per real client: 300 misses from 30 clients through nginx, none
  refused, while one client past its limit gets 429 with Retry-After and its neighbour
  does not; a proxy that names no client does not make its clients one;
- uploads are counted per token: 200 uploads from one address are governed by the token's
  bucket, which follows the token to another address and leaves another token alone;
- and (local disk only) a new install: the generated admin token, its file, `serve`
  printing it once, the CLI finding it, S3 refusing to start without a token.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from support.checks import assert_error
from support.corpus import REPO
from support.images import encoded
from support.nginx import FORWARD_CLIENT, LOCATION, NGINX, Nginx, start_nginx
from support.servers import TEST_TOKEN, Server, local_server, new_server, write_config

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)")

APP = "app-backend-token-0123456789"
BLOG = "blog-backend-token-0123456789"
BULK = "bulk-uploader-token-0123456789"  # used by one test only: its bucket starts full
OUTSIDE = "127.0.0.9"  # a client somewhere on the internet, as nginx sees it
SPOOFS = [
    {"x-forwarded-for": "127.0.0.1"},
    {"x-real-ip": "127.0.0.1"},
    {"forwarded": "for=127.0.0.1"},
    {"x-forwarded-for": "127.0.0.1", "via": "1.1 127.0.0.1"},
]
MISS_BURST = 20  # misses a client may start at once, here; the README's default is 100
UPLOAD_BURST = 150


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The service behind nginx, trusting it (server.trusted_proxies), with four tokens and limits
    small enough to reach: misses 20 at once then 1 a second per client, writes 150 then 1 a minute
    (so that what a test sees does not hang on how fast this machine is)."""
    srv = new_server(
        tmp_path_factory.mktemp("origin"),
        backend,
        request,
        server={"trusted_proxies": ["127.0.0.1"]},
        auth={"tokens": {"tests": TEST_TOKEN, "app": APP, "blog": BLOG, "bulk": BULK}, "admins": ["tests"]},
        rate_limits={
            "misses_per_minute": 60,
            "miss_burst": MISS_BURST,
            "uploads_per_minute": 1,
            "upload_burst": UPLOAD_BURST,
        },
    )
    srv.token = TEST_TOKEN
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def readme_nginx(origin: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx = start_nginx(tmp_path_factory.mktemp("nginx-readme"), origin.port)
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def forgetful_nginx(origin: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx = start_nginx(tmp_path_factory.mktemp("nginx-forgetful"), origin.port, forward_client=False)
    yield nginx
    nginx.stop()


@pytest.fixture(params=["readme", "forgetful"])
def nginx(request: pytest.FixtureRequest) -> Nginx:
    return request.getfixturevalue(f"{request.param}_nginx")  # type: ignore[no-any-return]


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (480, 320)) -> bytes:
    """A PNG of one colour: distinct colours are distinct images, cheap to render."""
    return encoded(Image.new("RGB", size, colour), "PNG")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def access_line(srv: Server, request_id: str) -> dict[str, Any]:
    """The origin's access-log line for the request carrying `request_id` (lines are batched: wait for it)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in srv.log().splitlines():
            if line.startswith("{") and f'"request_id":"{request_id}"' in line.replace(" ", ""):
                return dict(json.loads(line))
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for {request_id}")


# --------------------------------------------------------------------------- the README's block


def test_the_nginx_block_tested_here_is_the_readmes() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```nginx\n(.*?)```", readme, re.S)
    assert block, "README.md lost its nginx block"
    location = re.search(r"^ *location / \{\n.*?^ *\}\n", block[1], re.S | re.M)
    assert location, "the README's nginx block lost its location"

    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip()]

    assert lines(location[0]) == lines(LOCATION.format(origin=8000))
    assert FORWARD_CLIENT in location[0]


# --------------------------------------------------------------------------- writes need a credential


def test_no_write_passes_without_a_valid_token(origin: Server, nginx: Nginx) -> None:
    image = origin.upload(solid((10, 20, 30)))["id"]
    before = origin.stored_versions()
    photo = solid((40, 50, 60))
    with nginx.client(OUTSIDE) as outside:
        attempts = [
            outside.post("/img", content=photo),
            outside.post("/img", content=photo, headers=bearer("x" * 24)),
            outside.post("/img", files={"file": ("a.png", photo)}),
            outside.post("/img", json={"url": "http://127.0.0.2/a.png"}),
            outside.post("/img", content=photo, headers={"authorization": f"Basic {TEST_TOKEN}"}),
            outside.delete(f"/img/{image}"),
            outside.delete(f"/img/{image}", headers=bearer(APP[:-1])),
        ]
        attempts += [outside.post("/img", content=photo, headers=spoof) for spoof in SPOOFS]
        attempts += [outside.delete(f"/img/{image}", headers=spoof) for spoof in SPOOFS]
        for r in attempts:
            assert_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"].startswith("Bearer")
    with origin.client(anonymous=True) as local:  # the origin grants loopback nothing either
        assert_error(local.post("/img", content=photo), 401, "unauthorized")
        assert_error(local.delete(f"/img/{image}", headers=SPOOFS[0]), 401, "unauthorized")
    assert origin.stored_versions() == before
    with nginx.client(OUTSIDE) as outside:
        assert outside.get(f"/img/{image}?w=64").status_code == 200  # reading needs nothing


def test_with_a_token_an_outside_client_uploads_and_deletes(origin: Server, nginx: Nginx) -> None:
    with nginx.client(OUTSIDE, headers=bearer(APP)) as outside:
        created = outside.post("/img", content=solid((70, 80, 90)))
        assert created.status_code in (200, 201), created.text
        image = created.json()["id"]
        assert f"originals/{image}" in origin.stored_files()
        assert outside.delete(f"/img/{image}").status_code == 204
    assert f"originals/{image}" not in origin.stored_files()
    with origin.client() as c:
        assert c.get(f"/img/{image}/meta").status_code == 404


def test_a_spoofed_forwarded_for_changes_nothing_behind_the_readme_block(origin: Server, readme_nginx: Nginx) -> None:
    """nginx replaces the client's X-Forwarded-For with the address it saw, and the origin believes
    only nginx; a client talking to the origin directly is not believed at all."""
    image = origin.upload(solid((1, 2, 3)))["id"]
    direct_transport = httpx.HTTPTransport(local_address="127.0.0.10")
    with readme_nginx.client(OUTSIDE) as outside, origin.client(transport=direct_transport) as direct:
        for client, expected in ((outside, OUTSIDE), (direct, "127.0.0.10")):
            for width, spoof in zip((64, 96, 128, 160), SPOOFS):  # a URL each: nginx would answer a repeat itself
                rid = f"spoof-{expected}-{width}"
                r = client.get(f"/img/{image}?w={width}", headers=spoof | {"x-request-id": rid})
                assert r.status_code == 200
                assert access_line(origin, rid)["client"] == expected, spoof


def test_with_no_trusted_proxies_even_loopback_is_not_believed(server: Server) -> None:
    """The default: forwarding headers are ignored, also from 127.0.0.1, which uvicorn's own handling
    (off) would have believed."""
    claims = [{"x-forwarded-for": "203.0.113.5"}, {"forwarded": "for=203.0.113.5"}, {"x-real-ip": "203.0.113.5"}]
    with server.client() as c:
        for i, claim in enumerate(claims):
            rid = f"default-{i}-{time.monotonic_ns()}"
            assert c.get("/healthz", headers=claim | {"x-request-id": rid}).status_code == 200
            assert access_line(server, rid)["client"] == "127.0.0.1", claim


# --------------------------------------------------------------------------- misses per real client


def distinct_misses(images: list[str], count: int, start: int = 0) -> list[str]:
    """`count` variant URLs no one asked for before (distinct width, quality or format), from `start`."""
    combos = [
        f"/img/{image}?w={w}&q={q}&fmt={fmt}"
        for image in images
        for fmt in ("webp", "jpeg")
        for q in (40, 50, 60, 70, 75, 80, 85, 90)
        for w in (64, 96, 128, 160, 200, 240, 320, 400, 480)
    ]
    assert start + count <= len(combos)
    return combos[start : start + count]


@pytest.fixture(scope="module")
def miss_images(origin: Server) -> list[str]:
    return [origin.upload(solid((200, 10 * i, 100)))["id"] for i in range(3)]


def test_300_misses_from_30_clients_are_not_one_client(
    origin: Server, readme_nginx: Nginx, miss_images: list[str]
) -> None:
    urls = distinct_misses(miss_images, 331)
    clients = [f"127.0.0.{10 + i}" for i in range(30)]

    def browse(i: int) -> list[int]:
        with readme_nginx.client(clients[i]) as c:
            return [c.get(url).status_code for url in urls[10 * i : 10 * i + 10]]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = [s for batch in pool.map(browse, range(30)) for s in batch]
    elapsed = time.monotonic() - started
    assert len(statuses) == 300 and statuses.count(429) == 0 and set(statuses) == {200}, statuses
    assert elapsed < 60

    # One client past its limit: refused with Retry-After, while its neighbour is not.
    with readme_nginx.client("127.0.0.90") as greedy, readme_nginx.client("127.0.0.91") as neighbour:
        answers = [greedy.get(url) for url in urls[300:330]]
        assert neighbour.get(urls[330]).status_code == 200
    codes = [r.status_code for r in answers]
    assert codes[:MISS_BURST] == [200] * MISS_BURST and 429 in codes, codes
    refused = next(r for r in answers if r.status_code == 429)
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1


def test_a_proxy_that_names_no_client_does_not_make_its_clients_one(
    origin: Server, forgetful_nginx: Nginx, miss_images: list[str]
) -> None:
    """Without X-Forwarded-For from nginx the origin cannot tell its clients apart, so it keeps no
    bucket for them (the render slots and queue still bound the load): 40 misses, none refused."""
    with forgetful_nginx.client(OUTSIDE) as c:
        codes = [c.get(url).status_code for url in distinct_misses(miss_images, 40, start=331)]
    assert codes == [200] * 40, codes


# --------------------------------------------------------------------------- uploads per token


def test_200_uploads_from_one_address_are_governed_by_the_token(origin: Server, readme_nginx: Nginx) -> None:
    """An app backend uploads for all its users from one address with one token: the token's bucket
    (150 at once, then 1 a minute) decides, it follows the token to another address, and another
    token from the same address has its own."""
    photos = [solid((i % 256, i // 256, 7), (8, 8)) for i in range(200)]
    started = time.monotonic()
    with readme_nginx.client("127.0.0.50", headers=bearer(BULK)) as app:
        answers = [app.post("/img", content=photo) for photo in photos]
    elapsed = time.monotonic() - started
    codes = [r.status_code for r in answers]
    assert codes[:UPLOAD_BURST] == [201] * UPLOAD_BURST, codes
    assert codes.count(201) <= UPLOAD_BURST + elapsed / 60 and set(codes) == {201, 429}, (codes, elapsed)
    refused = next(r for r in answers if r.status_code == 429)
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    with readme_nginx.client("127.0.0.51", headers=bearer(BULK)) as elsewhere:
        assert elsewhere.post("/img", content=photos[-1]).status_code == 429  # the bucket is the token's
    with readme_nginx.client("127.0.0.50", headers=bearer(BLOG)) as blog:
        assert blog.post("/img", content=photos[-1]).status_code == 201  # same address, another token


# --------------------------------------------------------------------------- a new install


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args, "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_new_install_generates_a_private_admin_token_once(tmp_path: Path) -> None:
    """No auth.tokens (the shipped config): `serve` makes a token in data/.admin-token (0600) and
    prints it once; writes need it, the CLI finds it, a restart keeps it and does not print it again.
    Local disk only: on S3 there is no data folder of ours to keep it in (next test)."""
    srv = local_server(tmp_path, auth={}).start()
    try:
        path = srv.data / ".admin-token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert len(secret) >= 32 and srv.log().count(secret) == 1 and str(path) in srv.log()
        with srv.client() as c:
            assert_error(c.post("/img", content=solid((5, 5, 5))), 401, "unauthorized")
            assert c.post("/img", content=solid((5, 5, 5)), headers=bearer(secret)).status_code == 201
        (tmp_path / "photo.png").write_bytes(solid((6, 6, 6)))
        uploaded = cli(srv.config, "upload", "--url", srv.url, str(tmp_path / "photo.png"))
        assert uploaded.returncode == 0 and "new" in uploaded.stdout, uploaded.stderr  # no --token needed
        checked = cli(srv.config, "check-config")
        assert f"writes: the generated admin token in {path}" in checked.stdout
        srv.stop()
        srv.start()
        assert path.read_text().strip() == secret and srv.log().count(secret) == 1  # shown once, ever
        assert f"need the admin token kept in {path}" in srv.log()
        with srv.client() as c:
            assert c.post("/img", content=solid((7, 7, 7)), headers=bearer(secret)).status_code == 201
    finally:
        srv.stop()


def test_s3_without_a_token_does_not_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"storage": {"backend": "s3", "s3": {"bucket": "images"}}})
    for command in ("serve", "check-config"):
        result = cli(config, command)
        assert result.returncode == 2 and "auth.tokens: required" in result.stderr, result.stderr
