"""Every corpus file in formats/ and hostile/, end to end: the right output or the right 4xx.

Accepted files render to every allowed output format with the right size, upright,
with their colours and transparency, and without metadata. Hostile files get a 4xx
JSON error and leave the store exactly as it was.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageSequence, ImageStat

from proxy import keys
from support.checks import assert_error, assert_no_metadata
from support.corpus import corpus_files, corpus_rows
from support.servers import Server
from support.uploads import upload_files

OUTPUTS = {"webp": "WEBP", "avif": "AVIF", "jpeg": "JPEG", "png": "PNG", "gif": "GIF"}
READABLE = {"JPEG", "MPO", "PNG", "WEBP", "GIF", "AVIF", "BMP", "TIFF"}
HEIC = "formats/heic_iphone11_p3.heic"


def accepted(row: dict[str, str]) -> bool:
    """What the service must accept: files Pillow decodes in an accepted format, and the iPhone HEIC."""
    return row["path"] == HEIC or (row["decode"].startswith("ok") and row["format"] in READABLE)


ROWS = {r["path"]: r for r in corpus_rows() if r["path"].startswith(("formats/", "hostile/"))}
GOOD = sorted(p for p, r in ROWS.items() if accepted(r))
BAD = sorted(p for p, r in ROWS.items() if not accepted(r))


def reference(path: Path, size: tuple[int, int]) -> Image.Image:
    """What the picture should look like: Pillow's own upright decode (first frame), resized, as RGB."""
    im = Image.open(path)
    if im.mode.startswith("I;16"):  # 16-bit grey shows its levels scaled to 8 bits (Pillow's convert clips them)
        im = im.convert("I").point(lambda v: v / 257).convert("L")
    im = ImageOps.exif_transpose(im.convert("RGBA") if im.mode in ("P", "PA", "LA") else im)
    if im.mode == "RGBA":
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    return im.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def has_transparent_pixels(path: Path) -> bool:
    """Whether the first frame really shows transparency (an opaque alpha channel may be dropped)."""
    im = Image.open(path)
    if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
        return False
    return im.convert("RGBA").getchannel("A").getextrema()[0] < 255


def flat_rgb(im: Image.Image) -> Image.Image:
    if "A" in im.getbands() or im.mode == "P":
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im.convert("RGB")


def mean_error(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.fixture(scope="module")
def uploaded_formats(server: Server, corpus: Path) -> dict[str, dict[str, Any]]:
    with server.client() as c:
        return upload_files(c, corpus, GOOD)


@pytest.mark.parametrize("fmt", list(OUTPUTS))
def test_accepted_files_render_right_in_every_format(
    uploaded_formats: dict[str, Any], server: Server, corpus: Path, fmt: str
) -> None:
    with server.client() as c:
        for path, doc in uploaded_formats.items():
            r = c.get(f"/img/{doc['id']}", params={"w": 96, "fmt": fmt})
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"] == f"image/{fmt}"
            assert_no_metadata(r.content, f"{path} as {fmt}")
            out = Image.open(io.BytesIO(r.content))
            assert out.format == OUTPUTS[fmt]
            scale = min(1.0, 96 / doc["width"])
            assert out.size == (max(1, round(doc["width"] * scale)), max(1, round(doc["height"] * scale))), path
            if fmt != "jpeg" and path != HEIC and has_transparent_pixels(corpus / path):
                assert "A" in out.getbands() or "transparency" in out.info, f"{path}: alpha lost in {fmt}"
            if path == HEIC:
                continue  # plain Pillow cannot decode the source for a reference
            error = mean_error(flat_rgb(out), reference(corpus / path, out.size))
            limit = 45 if fmt == "gif" else 12  # GIF quantises to 256 colours
            assert error < limit, f"{path} as {fmt}: mean error {error:.1f} against the upright original"


def test_transparency_is_composited_on_the_background_for_jpeg(
    uploaded_formats: dict[str, Any], server: Server
) -> None:
    """The rose's transparent background hides non-white RGB: JPEG must show white, not that garbage."""
    doc = uploaded_formats["formats/webp_lossless_alpha.webp"]
    with server.client() as c:
        jpeg = Image.open(io.BytesIO(c.get(f"/img/{doc['id']}?w=200&fmt=jpeg").content)).convert("RGB")
        webp = Image.open(io.BytesIO(c.get(f"/img/{doc['id']}?w=200&fmt=webp").content))
    assert all(v > 245 for v in jpeg.getpixel((2, 2)))
    assert webp.mode == "RGBA" and webp.getpixel((2, 2))[3] == 0


@pytest.mark.parametrize(
    "path,frames",
    [("formats/gif_animated.gif", 42), ("formats/webp_animated.webp", 42), ("formats/apng_animated.png", 41)],
)
def test_animations_stay_animated_in_webp_and_gif(
    uploaded_formats: dict[str, Any], server: Server, path: str, frames: int
) -> None:
    doc = uploaded_formats[path]
    assert doc["frames"] == frames
    with server.client() as c:
        for fmt in ("webp", "gif"):
            out = Image.open(io.BytesIO(c.get(f"/img/{doc['id']}?w=128&fmt={fmt}").content))
            assert out.n_frames == frames and out.size == (128, 128), fmt
            assert len({ImageSequence.Iterator(out)[i].convert("RGB").tobytes() for i in (0, frames // 2)}) == 2
        still = Image.open(io.BytesIO(c.get(f"/img/{doc['id']}?w=128&fmt=png").content))
        assert getattr(still, "n_frames", 1) == 1
        negotiated = c.get(f"/img/{doc['id']}?w=128", headers={"accept": "image/avif,image/webp,*/*"})
        assert negotiated.headers["content-type"] == "image/webp"  # AVIF would lose the animation
        legacy = c.get(f"/img/{doc['id']}?w=128", headers={"accept": "*/*"})
        assert legacy.headers["content-type"] == "image/gif"


def test_animation_off_gives_the_first_frame(make_server: Any, corpus: Path) -> None:
    srv = make_server(render={"animation": False})
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "formats/gif_animated.gif").read_bytes()).json()["id"]
        out = Image.open(io.BytesIO(c.get(f"/img/{image}?w=128&fmt=webp").content))
    assert getattr(out, "n_frames", 1) == 1


def test_iphone_heic_is_stored_as_jpeg_with_its_colour_profile(
    uploaded_formats: dict[str, Any], server: Server
) -> None:
    doc = uploaded_formats[HEIC]
    stored = server.stored(keys.original(doc["id"]))
    im = Image.open(io.BytesIO(stored))
    assert doc["format"] == "jpeg" and im.format == "JPEG"
    assert_no_metadata(stored, "stored HEIC")
    profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
    assert "P3" in ImageCms.getProfileDescription(profile)
    assert doc["height"] > doc["width"]  # the iPhone's rotation is applied: portrait


def test_grayscale_sixteen_bit_and_cmyk_keep_their_look(
    uploaded_formats: dict[str, Any], server: Server, corpus: Path
) -> None:
    with server.client() as c:
        cmyk = Image.open(
            io.BytesIO(c.get(f"/img/{uploaded_formats['formats/jpeg_cmyk_adobe.jpg']['id']}?w=96&fmt=png").content)
        )
        gray16 = Image.open(
            io.BytesIO(c.get(f"/img/{uploaded_formats['formats/png_16bit_gray.png']['id']}?fmt=png").content)
        )
    assert cmyk.mode == "RGB"
    red = [px for px in cmyk.getdata() if px[0] > 150 and px[1] < 90 and px[2] < 90]
    assert red, "the CMYK sample's red text must stay red"
    source16 = Image.open(corpus / "formats/png_16bit_gray.png")
    assert gray16.getextrema() == (0, 255) and source16.getextrema() == (0, 65535)  # scaled, not clipped


# --------------------------------------------------------------------------- colour


def _lab(im: Image.Image) -> list[tuple[float, float, float]]:
    srgb = ImageCms.createProfile("sRGB")
    lab = ImageCms.profileToProfile(im.convert("RGB"), srgb, ImageCms.createProfile("LAB"), outputMode="LAB")
    return [(l_ * 100 / 255, a - 128, b - 128) for l_, a, b in lab.getdata()]


def mean_delta_e(a: Image.Image, b: Image.Image) -> float:
    """Mean CIE76 colour difference of two same-size sRGB images."""
    pairs = zip(_lab(a), _lab(b))
    values = [math.dist(p, q) for p, q in pairs]
    return sum(values) / len(values)


def srgb_reference(source: Image.Image, size: tuple[int, int]) -> Image.Image:
    """LittleCMS's own conversion of the whole image to sRGB, then resized."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(source.info["icc_profile"]))
    converted = ImageCms.profileToProfile(source.convert("RGB"), profile, ImageCms.createProfile("sRGB"))
    return converted.resize(size, Image.Resampling.LANCZOS)


def test_adobe_rgb_photo_is_converted_to_srgb(uploaded_formats: dict[str, Any], server: Server, corpus: Path) -> None:
    """The real Adobe RGB photo: mean delta E (CIE76) against the reference stays under 2."""
    with server.client() as c:
        out = Image.open(
            io.BytesIO(c.get(f"/img/{uploaded_formats['formats/jpeg_icc_adobe_rgb.jpg']['id']}?w=400&fmt=png").content)
        ).convert("RGB")
    source = Image.open(corpus / "formats/jpeg_icc_adobe_rgb.jpg")
    assert mean_delta_e(out, srgb_reference(source, out.size)) < 2.0


def test_adobe_rgb_colours_inside_both_gamuts_survive(server: Server, corpus: Path) -> None:
    """Mid-saturation patches tagged Adobe RGB: ours stays under 2; ignoring the profile is far off.

    The corpus photo is nearly grey, where the two spaces barely differ, and
    pure primaries clip to the same sRGB edge either way; colours inside both
    gamuts shift by 10-20 delta E, so a wrong or missing conversion shows.
    """
    icc = Image.open(corpus / "formats/jpeg_icc_adobe_rgb.jpg").info["icc_profile"]
    patches = Image.new("RGB", (240, 160))
    colours = [(60, 160, 80), (40, 140, 140), (90, 180, 120), (120, 170, 60), (80, 120, 200), (150, 80, 160)]
    for i, colour in enumerate(colours):
        patches.paste(colour, (i % 3 * 80, i // 3 * 80, i % 3 * 80 + 80, i // 3 * 80 + 80))
    upload = io.BytesIO()
    patches.save(upload, "PNG", icc_profile=icc)
    with server.client() as c:
        image = c.post("/img", content=upload.getvalue()).json()["id"]
        out = Image.open(io.BytesIO(c.get(f"/img/{image}?w=128&fmt=png").content)).convert("RGB")
    source = Image.open(io.BytesIO(upload.getvalue()))
    expected = srgb_reference(source, out.size)
    ours = mean_delta_e(out, expected)
    ignored_profile = mean_delta_e(source.resize(out.size, Image.Resampling.LANCZOS), expected)
    assert ours < 2.0, f"mean delta E {ours:.2f}"
    assert ignored_profile > 5.0, f"dropping the profile should be visible, gave {ignored_profile:.2f}"


# --------------------------------------------------------------------------- hostile


@pytest.mark.parametrize("path", BAD)
def test_hostile_and_unreadable_files_get_4xx_and_change_nothing(server: Server, corpus: Path, path: str) -> None:
    before = server.stored_versions()
    with server.client() as c:
        r = c.post("/img", content=(corpus / path).read_bytes(), headers={"content-type": "image/png"})
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    body = assert_error(r, r.status_code, r.json()["error"])
    assert body["error"] in {"unsupported_format", "invalid_image", "too_many_pixels", "too_many_frames"}
    assert server.stored_versions() == before


def test_accepted_hostile_files_are_stored_clean(uploaded_formats: dict[str, Any], server: Server) -> None:
    """Broken EXIF must not fail the upload, and GPS inside broken EXIF must still go."""
    for path in (
        "hostile/jpeg_corrupt_exif_with_gps.jpg",
        "hostile/jpeg_invalid_exif.jpg",
        "hostile/jpeg_orientation_0_invalid.jpg",
        "hostile/jpeg_corrupt_gps_ifd.jpg",
    ):
        stored = server.stored(keys.original(uploaded_formats[path]["id"]))
        assert_no_metadata(stored, path)
    assert (
        uploaded_formats["hostile/jpeg_orientation_0_invalid.jpg"]["width"],
        uploaded_formats["hostile/jpeg_orientation_0_invalid.jpg"]["height"],
    ) == (1800, 1200)


def test_corpus_lists_are_not_empty(corpus: Path) -> None:
    assert len(GOOD) >= 20 and len(BAD) >= 15
    assert corpus_files("formats") and corpus_files("hostile")


# --------------------------------------------------------------------------- generated bombs and limits


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height, with a few hundred bytes of real data."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_bomb() -> bytes:
    """A small real JPEG whose SOF0 header is patched to claim 65000 x 65000."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (65000).to_bytes(2, "big") * 2
    return bytes(data)


def _webp_bomb() -> bytes:
    """A small lossless WebP whose VP8L header is patched to claim 16384 x 16384."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.index(b"VP8L") + 9  # after fourcc, size and the 0x2f signature byte
    bits = (16383) | (16383 << 14) | (int.from_bytes(data[at : at + 4], "little") & ~((1 << 28) - 1))
    data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(
    "name,make", [("png", lambda: _png_bomb(100_000, 100_000)), ("jpeg", _jpeg_bomb), ("webp", _webp_bomb)]
)
def test_generated_bombs_are_refused_from_the_header(server: Server, name: str, make: Any) -> None:
    import time

    data = make()
    assert len(data) < 2000
    before = server.stored_versions()
    started = time.monotonic()
    with server.client() as c:
        r = c.post("/img", content=data)
    assert r.status_code == 422 and r.json()["error"] == "too_many_pixels", (name, r.text)
    assert time.monotonic() - started < 5
    assert server.stored_versions() == before


def test_pixel_limit_is_exact(make_server: Any) -> None:
    srv = make_server(limits={"max_pixels": 4_000_000})
    at_limit, over = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (2000, 2000), (1, 2, 3)).save(at_limit, "PNG")
    Image.new("RGB", (2001, 2000), (1, 2, 3)).save(over, "PNG")
    with srv.client() as c:
        assert c.post("/img", content=at_limit.getvalue()).status_code == 201
        assert_error(c.post("/img", content=over.getvalue()), 422, "too_many_pixels")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF", "JPEG", "TIFF"])
def test_orientation_one_to_eight_in_every_format(server: Server, fmt: str) -> None:
    """An asymmetric picture tagged with each EXIF orientation comes out as Pillow's exif_transpose shows it."""
    base = Image.new("RGB", (96, 48), (255, 255, 255))
    base.paste((230, 20, 20), (0, 0, 32, 16))  # a red block in one corner
    base.paste((20, 20, 230), (64, 32, 96, 48))  # a blue one in the opposite corner
    with server.client() as c:
        for orientation in range(1, 9):
            exif = Image.Exif()
            exif[0x0112] = orientation
            upload = io.BytesIO()
            base.save(upload, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
            expected = ImageOps.exif_transpose(Image.open(io.BytesIO(upload.getvalue()))).convert("RGB")
            image = c.post("/img", content=upload.getvalue()).json()["id"]
            out = Image.open(io.BytesIO(c.get(f"/img/{image}?fmt=png").content)).convert("RGB")
            assert out.size == expected.size, (fmt, orientation)
            assert mean_error(out, expected) < 10, (fmt, orientation)
