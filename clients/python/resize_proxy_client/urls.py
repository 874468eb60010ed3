"""Image URLs and the markup that uses them, built locally: a template renders without a request to
the service. Signing and the markup rules are the server's own code (signing.py, markup.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from .markup import candidates, fallback_width, picture_html, srcset
from .signing import sign_url

# The service's default variants.widths and the <picture> formats it recommends, best first (the last one
# is the <img> fallback every browser decodes). Pass yours when the service's lists differ.
WIDTHS = (64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720, 800, 960, 1080, 1200, 1280, 1440, 1600, 1920, 2048)
FORMATS = ("avif", "webp", "jpeg")


class ImageUrls:
    """URLs of one service's images: `base_url` is its public address (server.public_url); with
    `signing_key` (the first of security.signing_keys) every URL is signed."""

    def __init__(
        self,
        base_url: str,
        signing_key: str | None = None,
        widths: tuple[int, ...] = WIDTHS,
        formats: tuple[str, ...] = FORMATS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signing_key = signing_key
        self.widths = widths
        self.formats = formats

    def link(self, image_id: str, query: str = "") -> str:
        url = f"{self.base_url}/img/{image_id}" + (f"?{query}" if query else "")
        return sign_url(url, self.signing_key) if self.signing_key else url

    def url(self, image_id: str, **params: object) -> str:
        """`.../img/<id>?w=400&fmt=webp`: the parameters as given (w, h, fit, fmt, q, dpr, p or aliases)."""
        return self.link(image_id, urlencode({name: str(value) for name, value in params.items()}))

    def srcset(
        self, image_id: str, fmt: str | None = None, width: int | None = None, widths: tuple[int, ...] | None = None
    ) -> str:
        """`<url> 320w, ...` over `widths` (default: the service's); `width`, the original's, stops the
        list there with the descriptor the service really sends. No `fmt`: negotiated from Accept."""
        found = candidates(widths or self.widths, width)
        return srcset(lambda query: self.link(image_id, query), found, f"fmt={fmt}" if fmt else "")

    def picture(
        self,
        image_id: str,
        sizes: str,
        width: int | None = None,
        height: int | None = None,
        alt: str = "",
        widths: tuple[int, ...] | None = None,
        formats: tuple[str, ...] | None = None,
    ) -> str:
        """A `<picture>`: one `<source>` per format and a lazy `<img>` fallback; `width`/`height` (the
        original's, from the upload answer) cap the candidates and give the `<img>` its size."""
        found = candidates(widths or self.widths, width)
        formats = formats or self.formats
        srcsets = {fmt: self.srcset(image_id, fmt, width, widths) for fmt in formats}
        src = self.link(image_id, f"w={fallback_width(found)}&fmt={formats[-1]}")
        return picture_html(srcsets, src, sizes, width, height, alt)
