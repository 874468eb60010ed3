"""A real browser: headless Chromium (the system's /usr/bin/chromium) driven by playwright-core
from node (tests/e2e/browser/probe.mjs), against `python -m proxy serve`.

Proves what only a browser can: its own Accept gets AVIF, `srcset`/`sizes` pick the candidate
the layout needs and every image decodes, the meta document's `<picture>` works as pasted,
and the demo page uploads, shows its variants and gets client hints, all under the page's
CSP with no error. Chromium only reaches 127.0.0.1: host names resolve to nothing, and every
request it made is checked. The demo screenshot goes to test-artifacts/demo-page.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from support.corpus import ARTIFACTS, REPO
from support.servers import Server

CHROMIUM = "/usr/bin/chromium"
NODE = shutil.which("node")
PROBE = REPO / "tests" / "e2e" / "browser" / "probe.mjs"
PLAYWRIGHT = REPO / "tests" / "e2e" / "browser" / "node_modules" / "playwright-core"
PHOTO = "photos/orientation_1.jpg"  # 1800x1200

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and NODE and PLAYWRIGHT.is_dir()),
    reason="needs /usr/bin/chromium (apt-get install chromium), node, and playwright-core "
    "(npm ci --prefix tests/e2e/browser); .ci/run installs all three",
)


def probe(tmp_path: Path, page: dict[str, Any], width: int, scale: float) -> dict[str, Any]:
    """Run the node probe on `page` in a fresh Chromium profile; the browser's report."""
    job = {
        "chromium": CHROMIUM,
        "profile": str(tmp_path / "profile"),
        "viewport": {"width": width, "height": 900},
        "scale": scale,
        "page": page,
    }
    done = subprocess.run(
        [NODE or "node", str(PROBE)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=PROBE.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def param(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def assert_loopback_only(report: dict[str, Any], server: Server) -> None:
    strays = [u for u in report["requests"] if not (u.startswith(server.url + "/") or u in ("data:", "about:blank"))]
    assert strays == [], strays


def assert_all_decoded(report: dict[str, Any]) -> None:
    assert report["images"], "no images on the page"
    for img in report["images"]:
        assert img["naturalWidth"] > 0 and img["decodes"], img


def image_responses(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in report["responses"] if "/img/" in r["url"]}


@pytest.fixture
def photo(server: Server, corpus: Path) -> dict[str, Any]:
    with server.client() as c:
        r = c.post("/img", content=(corpus / PHOTO).read_bytes())
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_srcset_picks_the_layout_width_and_chromium_gets_avif(
    photo: dict[str, Any], server: Server, tmp_path: Path
) -> None:
    base = photo["url"]
    negotiated = ", ".join(f"{base}?w={w} {w}w" for w in (320, 400, 560, 800, 1080))
    html = f"""<!doctype html><meta charset="utf-8"><style>body {{ margin: 0 }} img {{ display: block }}</style>
        <img id="negotiated" srcset="{negotiated}" sizes="(max-width: 600px) 100vw, 50vw" style="width: 50vw" alt="">
        <div style="width: 300px">{photo["picture"].replace('loading="lazy"', 'loading="eager"')}</div>"""
    report = probe(tmp_path, {"html": html}, width=1000, scale=1)
    assert_loopback_only(report, server)
    assert_all_decoded(report)
    shown = {img["id"] or "picture": img for img in report["images"]}
    # 50vw of a 1000-px viewport at 1x: a 500-px slot, so the smallest candidate covering it. The
    # browser reports naturalWidth as pixels / (descriptor / slot): equal to the slot only if the
    # candidate really is as wide as its descriptor says.
    assert param(shown["negotiated"]["currentSrc"], "w") == "560"
    assert shown["negotiated"]["clientWidth"] == shown["negotiated"]["naturalWidth"] == 500
    # The snippet's sizes say 100vw up to the original's width: 1000 px, so 1080 from the AVIF source.
    assert (param(shown["picture"]["currentSrc"], "w"), param(shown["picture"]["currentSrc"], "fmt")) == (
        "1080",
        "avif",
    )
    assert shown["picture"]["naturalWidth"] == 1000
    responses = image_responses(report)
    got = responses[shown["negotiated"]["currentSrc"]]
    assert got["headers"]["content-type"] == "image/avif" and got["headers"]["vary"] == "Accept"
    assert "image/avif" in got["requestHeaders"]["accept"]
    assert {r["headers"]["content-type"] for r in responses.values()} <= {"image/avif", "image/webp"}
    assert len(responses) == 2  # one candidate per image, nothing else fetched


def test_demo_page_uploads_with_its_token_and_shows_the_variants(server: Server, corpus: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "demo-page.png"
    screenshot.unlink(missing_ok=True)
    page = {
        "url": server.url + "/",
        "upload": {"file": str(corpus / PHOTO), "token": server.token},
        "screenshot": str(screenshot),
    }
    report = probe(tmp_path, page, width=1000, scale=2)
    assert report["errors"] == []  # no CSP violation, no script error
    assert_loopback_only(report, server)
    assert_all_decoded(report)
    assert "This browser chose avif" in report["chosen"]
    upload = next(r for r in report["responses"] if r["url"] == server.url + "/img")
    assert upload["status"] in (200, 201)
    responses = image_responses(report)
    shown = {img["id"]: img for img in report["images"]}
    hinted = responses[shown["hinted"]["currentSrc"]]
    # The page sent Accept-CH, so Chromium sent its density, and dpr=auto used it: 320 css px at 2x.
    assert hinted["requestHeaders"]["sec-ch-dpr"] == "2"
    assert shown["hinted"]["naturalWidth"] == 640 and hinted["headers"]["vary"] == "Accept, Sec-CH-DPR, DPR"
    formats = {
        responses[img["currentSrc"]]["headers"]["content-type"]
        for img in report["images"]
        if img["currentSrc"] in responses and "fmt=" in img["currentSrc"]
    }
    assert {"image/avif", "image/webp", "image/jpeg"} <= formats
    assert shown["placeholder"]["naturalWidth"] == 16
    # the square crop side by side: around the centre and around the focal point (g=auto)
    crops = sorted(
        img["currentSrc"].endswith("&g=auto") for img in report["images"] if "fit=cover" in img["currentSrc"]
    )
    assert crops == [False, True]
    assert all(img["naturalWidth"] == 240 for img in report["images"] if "fit=cover" in img["currentSrc"])
    assert screenshot.stat().st_size > 10_000
    assert report["tokenAfterReload"] == server.token  # asked for once: the tab keeps it (sessionStorage)
