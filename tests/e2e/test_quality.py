"""q=auto and colour over HTTP: a q=auto variant keeps its target on every corpus photo, is the same bytes
under the same key from the same upload, and renders once; wide-gamut and CMYK photos keep their colours
(largest CIEDE2000 under 5) at 400 px and at full size.

The colour reference is support.images.reference: a full decode of the upload, ICC to sRGB by LittleCMS,
one LANCZOS resize. PNG variants are compared, so the encoders' own loss is not counted: what is measured
is the path (sanitize, working copy, resize, conversion). P3-tagged JPEG and PNG are made here from a
corpus photo and the iPhone HEIC's Display P3 profile.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from proxy.config import EncoderSettings
from proxy.imaging.quality import luma, ssim
from support.corpus import corpus_files
from support.images import encoded, reference
from support.servers import Server

TARGET = EncoderSettings().auto_target
PHOTOS = corpus_files("photos")
HEIC = "formats/heic_iphone11_p3.heic"
MAX_DELTA_E = 5.0


def get(server: Server, path: str) -> Any:
    with server.client() as c:
        r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return r


@pytest.fixture(scope="module")
def uploaded(server: Server, corpus: Path) -> dict[str, dict[str, Any]]:
    return {path: server.upload(corpus / path) for path in PHOTOS}


@pytest.mark.parametrize("path", PHOTOS)
def test_q_auto_keeps_its_target_on_every_corpus_photo(
    uploaded: dict[str, dict[str, Any]], server: Server, path: str
) -> None:
    """SSIM on luma of the decoded WebP against the pixels it encoded (the PNG of the same request)."""
    image = uploaded[path]["id"]
    auto = get(server, f"/img/{image}?w=400&fmt=webp&q=auto")
    pixels = Image.open(io.BytesIO(get(server, f"/img/{image}?w=400&fmt=png").content))
    assert ssim(luma(pixels), luma(Image.open(io.BytesIO(auto.content)))) * 1000 >= TARGET
    assert f"{pixels.width}x{pixels.height}-qauto{TARGET}.webp" in server.variant_files(image)


def test_q_auto_is_the_same_bytes_under_the_same_key_and_renders_once(make_server: Any, corpus: Path) -> None:
    data = (corpus / "photos/reconyx_trailcam.jpg").read_bytes()
    bodies, names = [], []
    for srv in (make_server(), make_server()):
        image = srv.upload(data)["id"]
        first = get(srv, f"/img/{image}?w=640&fmt=avif&q=auto")
        again = get(srv, f"/img/{image}?w=640&fmt=avif&q=AUTO")
        assert (first.headers["x-cache-tier"], again.headers["x-cache-tier"]) == ("render", "memory")
        assert first.content == again.content and srv.health()["renders"] == 1
        bodies.append(first.content)
        names.append(srv.variant_files(image))
    assert bodies[0] == bodies[1] and names[0] == names[1] == [f"640x480-qauto{TARGET}.avif"]


def test_auto_quality_on_makes_q_auto_the_default(make_server: Any, corpus: Path) -> None:
    srv = make_server(encoders={"auto_quality": True, "auto_target": 940})
    image = srv.upload(corpus / "photos/orientation_1.jpg")["id"]
    default, fixed = get(srv, f"/img/{image}?w=400&fmt=jpeg"), get(srv, f"/img/{image}?w=400&fmt=jpeg&q=80")
    assert sorted(srv.variant_files(image)) == ["400x267-q80.jpg", "400x267-qauto940.jpg"]
    assert len(default.content) < len(fixed.content)  # q80 keeps 0.953 on this photo: 0.940 needs less


# --------------------------------------------------------------------------- colour


def max_delta_e(a: Image.Image, b: Image.Image) -> float:
    colour = pytest.importorskip("skimage.color", reason="scikit-image (the test extra) computes CIEDE2000")
    lab = [colour.rgb2lab(np.asarray(im.convert("RGB"), dtype=np.float64) / 255) for im in (a, b)]
    return float(colour.deltaE_ciede2000(*lab).max())


def p3_tagged(corpus: Path, fmt: str) -> bytes:
    """A corpus photo's pixels declared Display P3 (the iPhone HEIC's profile), saved losslessly enough."""
    with Image.open(corpus / HEIC) as heic:
        icc = heic.info["icc_profile"]
    with Image.open(corpus / "photos/orientation_1.jpg") as im:
        picture = im.convert("RGB").resize((900, 600), Image.Resampling.LANCZOS)
    options = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    return encoded(picture, fmt, icc_profile=icc, **options)


@pytest.mark.parametrize(
    "source", ["formats/jpeg_icc_adobe_rgb.jpg", HEIC, "formats/jpeg_cmyk_adobe.jpg", "p3.jpg", "p3.png"]
)
def test_wide_gamut_and_cmyk_keep_their_colours_at_400_px_and_full_size(
    make_server: Any, corpus: Path, source: str
) -> None:
    data = (
        p3_tagged(corpus, source[-3:].upper().replace("JPG", "JPEG"))
        if source.startswith("p3")
        else (corpus / source).read_bytes()
    )
    srv = make_server()
    doc = srv.upload(data)
    for query in ("w=400", f"w={doc['width']}"):
        out = Image.open(io.BytesIO(get(srv, f"/img/{doc['id']}?{query}&fmt=png").content))
        worst = max_delta_e(out, reference(data, out.size))
        assert worst < MAX_DELTA_E, f"{source} {query}: largest CIEDE2000 {worst:.2f}"
