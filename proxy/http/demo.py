"""GET / (the demo page) and GET /static/<name> (its script and style sheet).

Plain files from `static/`, no build step. The page gets its own
Content-Security-Policy: scripts and styles only from files of this origin (no
inline code), images from this origin, `data:` (the placeholder) and the
public URL's origin when one is configured. Every other non-image answer keeps
the strict API policy. The page also sends Accept-CH, so Chromium browsers send
client hints with the page's image requests.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from proxy.http.errors import ApiError
from proxy.negotiate import ACCEPT_CH

STATIC = Path(__file__).parent / "static"
PAGE = (STATIC / "demo.html").read_bytes()
ASSETS = {
    name: ((STATIC / name).read_bytes(), media)
    for name, media in (("demo.js", "text/javascript; charset=utf-8"), ("demo.css", "text/css; charset=utf-8"))
}
CACHE = "public, max-age=300"


def page_csp(public_url: str) -> str:
    parts = urlsplit(public_url)
    images = " ".join(["'self'", "data:", *([f"{parts.scheme}://{parts.netloc}"] if parts.netloc else [])])
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; connect-src 'self'; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


async def demo_page(request: Request) -> Response:
    csp = page_csp(request.app.state.settings.server.public_url)
    return Response(
        PAGE,
        media_type="text/html; charset=utf-8",
        headers={
            "cache-control": CACHE,
            "content-security-policy": csp,
            "accept-ch": ACCEPT_CH,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )


async def demo_asset(request: Request) -> Response:
    found = ASSETS.get(request.path_params["name"])
    if found is None:
        raise ApiError(404, "not_found", "no such file")
    body, media = found
    return Response(body, media_type=media, headers={"cache-control": CACHE, "x-content-type-options": "nosniff"})
