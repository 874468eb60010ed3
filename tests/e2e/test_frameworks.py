"""The frameworks people write `<img>` tags with, against `python -m proxy serve`: Next.js
(`getImageProps` from next/image with our loader file, JS and TS), Nuxt Image (`createImage` from its
runtime with our provider) and @unpic/core (with our transformer), each from npm
(tests/e2e/frameworks/package-lock.json), with the framework's default config and with the one we
recommend (clients/js/). The node scripts print every URL the framework wrote for a few ordinary
usages; each must load as an image of the width the service promises for it: the URL's w (and h)
snapped up onto variants.widths (heights), capped at the largest, never larger than the original.

Also here: a snapped request and an exact request of the same allowed size share one render and one
stored object.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from proxy.config import VariantSettings
from proxy.imaging.geometry import plan
from support.corpus import REPO
from support.servers import Server, ServerFactory
from support.tokens import APP_AUTH, BEARER

NODE = shutil.which("node")
SCRIPTS = REPO / "tests" / "e2e" / "frameworks"
PHOTO = "photos/orientation_1.jpg"  # 1800x1200
LISTS = VariantSettings()  # the service below runs the default lists

pytestmark = pytest.mark.skipif(
    not (NODE and (SCRIPTS / "node_modules" / "next").is_dir()),
    reason="needs node and the frameworks from npm (npm ci --prefix tests/e2e/frameworks); "
    "scripts/install-test-deps.sh installs both",
)


@pytest.fixture(scope="module")
def photo(token_server: Server, corpus: Path) -> dict[str, Any]:
    with token_server.client() as c:
        r = c.post("/img", content=(corpus / PHOTO).read_bytes(), headers=BEARER)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def framework_urls(script: str, job: dict[str, str]) -> list[dict[str, Any]]:
    """What tests/e2e/frameworks/<script> reports: per usage its src, srcset candidates and sizes."""
    done = subprocess.run(
        [NODE or "node", str(SCRIPTS / script)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SCRIPTS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    usages: list[dict[str, Any]] = json.loads(done.stdout)
    return usages


def snapped(value: int, allowed: tuple[int, ...]) -> int:
    """The README's rule: the smallest allowed value at or above it, else the largest."""
    return min((a for a in allowed if a >= value), default=max(allowed))


def promised_width(url: str, original: tuple[int, int]) -> int:
    """The width the service promises for `url`: w and h snapped, then fitted to the original."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    w = snapped(int(query["w"]), LISTS.widths) if "w" in query else None
    h = snapped(int(query["h"]), LISTS.heights) if "h" in query else None
    if w is None and h is None:  # no size: the largest box
        w, h = max(LISTS.widths), max(LISTS.heights)
    return plan(*original, w, h, query.get("fit", "inside")).width


def assert_every_url_loads(usages: list[dict[str, Any]], photo: dict[str, Any], token_server: Server) -> int:
    """Each src and srcset candidate: a 200 image, as wide as promised (decoded and in X-Image-Width)."""
    urls = {u["src"] for u in usages} | {url for u in usages for url, _ in u["srcset"]}
    assert all(url.startswith(f"{token_server.url}/img/{photo['id']}") for url in urls), urls
    with httpx.Client(timeout=60) as c:
        for url in sorted(urls):
            r = c.get(url, headers={"accept": "image/avif,image/webp,*/*"})
            assert r.status_code == 200, (url, r.text)
            assert r.headers["content-type"].startswith("image/"), url
            width = Image.open(io.BytesIO(r.content)).width
            assert width == int(r.headers["x-image-width"]) == promised_width(url, (photo["width"], photo["height"])), (
                url
            )
    return len(urls)


@pytest.mark.parametrize("config", ["default", "recommended"])
@pytest.mark.parametrize("loader", ["js", "ts"])
def test_nextjs_get_image_props_urls_all_load(
    config: str, loader: str, photo: dict[str, Any], token_server: Server
) -> None:
    """Five ordinary <Image> usages (fixed 400, fill 100vw, fill 50vw, a 48 px avatar, a 1200 px hero at
    q=90). With Next's defaults that is 640, 750, 828, 3840, 48, 384 ...: all load, snapped."""
    usages = framework_urls(
        "next.mjs", {"base": token_server.url, "id": photo["id"], "config": config, "loader": loader}
    )
    assert len(usages) == 5
    wanted = {int(parse_qs(urlsplit(url).query)["w"][0]) for u in usages for url, _ in u["srcset"]}
    if config == "default":  # the widths issue 18 found answering 400 before snapping
        assert {48, 384, 750, 828, 3840} <= wanted
    else:  # ours asks only for listed widths: nothing snaps
        assert wanted <= set(LISTS.widths)
    assert assert_every_url_loads(usages, photo, token_server) >= 11


@pytest.mark.parametrize("config", ["default", "recommended"])
def test_nuxt_image_urls_all_load(config: str, photo: dict[str, Any], token_server: Server) -> None:
    """<NuxtImg width=400 height=267> (h=267), sizes with screens, a cover avatar, AVIF at q=90, and a
    <NuxtPicture> with one source per format: every URL loads."""
    usages = framework_urls("nuxt.mjs", {"base": token_server.url, "id": photo["id"], "config": config})
    assert any("h=267" in u["src"] for u in usages)
    formats = {parse_qs(urlsplit(u["src"]).query).get("fmt", ["auto"])[0] for u in usages}
    assert formats >= ({"avif", "webp", "jpeg"} if config == "recommended" else {"webp", "jpeg"})
    assert assert_every_url_loads(usages, photo, token_server) >= 15


@pytest.mark.parametrize("config", ["default", "recommended"])
def test_unpic_urls_all_load(config: str, photo: dict[str, Any], token_server: Server) -> None:
    """Constrained, fullWidth (unpic's breakpoints reach 6016), a fixed avatar and an aspect ratio."""
    usages = framework_urls("unpic.mjs", {"base": token_server.url, "id": photo["id"], "config": config})
    widest = max(int(parse_qs(urlsplit(url).query)["w"][0]) for u in usages for url, _ in u["srcset"])
    assert widest == (6016 if config == "default" else 2400)
    assert assert_every_url_loads(usages, photo, token_server) >= 20


def test_a_snapped_and_an_exact_request_share_one_render_and_one_stored_object(
    make_server: ServerFactory, corpus: Path
) -> None:
    srv = make_server(auth=APP_AUTH)
    with srv.client() as c:
        image = c.post("/img", content=(corpus / PHOTO).read_bytes(), headers=BEARER).json()["id"]
        first = c.get(f"/img/{image}?w=750&fmt=webp&q=78")  # Next's 750 at a quality off the list
        assert first.status_code == 200 and first.headers["x-cache-tier"] == "render"
        assert (first.headers["x-image-width"], first.headers["x-image-height"]) == ("800", "533")
        exact = c.get(f"/img/{image}?w=800&fmt=webp&q=80")
        assert exact.headers["x-cache-tier"] == "memory" and exact.headers["etag"] == first.headers["etag"]
        assert c.get(f"/img/{image}?w=790&fmt=webp").headers["x-cache-tier"] == "memory"  # default q is 80
        assert srv.health()["renders"] == 1
        assert srv.variant_files(image) == ["800x533-q80.webp"]
    srv.stop()
    srv.start()  # memory gone: the next snapped request is the stored object, still no render
    with srv.client() as c:
        again = c.get(f"/img/{image}?w=761&fmt=webp")
        assert again.headers["x-cache-tier"] == "store" and again.headers["etag"] == first.headers["etag"]
    assert srv.health()["renders"] == 0 and srv.variant_files(image) == ["800x533-q80.webp"]
