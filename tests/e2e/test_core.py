"""End-to-end over real HTTP: upload the corpus photos, read variants, check every promise.

A real `python -m proxy serve` (uvicorn) on a loopback port, driven with httpx.
Stored files are read back from the server's data folder to prove what is on disk.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from proxy import keys
from support.checks import assert_error, assert_no_metadata
from support.corpus import corpus_files
from support.servers import Server
from support.uploads import upload_files

PHOTOS = corpus_files("photos")
ORIENTATIONS = [f"photos/orientation_{n}.jpg" for n in range(1, 9)]
FORMATS = {"webp": "WEBP", "avif": "AVIF", "jpeg": "JPEG", "png": "PNG"}


def upright_size(row: dict[str, str]) -> tuple[int, int]:
    w, h = (int(v) for v in row["size"].split("x"))
    return (h, w) if row["orientation"] in {"5", "6", "7", "8"} else (w, h)


def grey(data: bytes, size: tuple[int, int] = (96, 64)) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("L").resize(size)


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    return float(ImageStat.Stat(ImageChops.difference(a, b)).mean[0])


@pytest.fixture(scope="module")
def uploaded(server: Server, corpus: Path) -> dict[str, dict[str, Any]]:
    """Every corpus photo uploaded once (raw body), by corpus path."""
    with server.client() as c:
        return upload_files(c, corpus, PHOTOS, expect=201, content_type="image/jpeg")


# --------------------------------------------------------------------------- upload and storage


def test_upload_document_describes_the_upright_image(
    uploaded: dict[str, Any], manifest: dict[str, Any], server: Server
) -> None:
    for path, doc in uploaded.items():
        assert re.fullmatch(r"[0-9a-f]{32}", doc["id"])
        assert (doc["width"], doc["height"]) == upright_size(manifest[path]), path
        assert doc["format"] == "jpeg"  # the MPO camera file is a JPEG to users
        assert doc["bytes"] == len(server.stored(keys.original(doc["id"])))
        assert doc["url"] == f"{server.url}/img/{doc['id']}"
        assert set(doc["variants"]) == {"thumb", "small", "medium", "large"}
        assert doc["variants"]["small"] == f"{doc['url']}?p=small"


def test_stored_originals_have_no_metadata_and_no_gps(
    uploaded: dict[str, Any], manifest: dict[str, Any], server: Server
) -> None:
    for path, doc in uploaded.items():
        stored = server.stored(keys.original(doc["id"]))
        assert_no_metadata(stored, path)
        im = Image.open(io.BytesIO(stored))
        assert im.format == "JPEG" and getattr(im, "n_frames", 1) == 1, path  # MPO preview frame gone
        assert im.getexif().get_ifd(0x8825) == {}, f"{path}: GPS IFD survived"
        assert keys.metadata(doc["id"]) in server.stored_files()
    assert any(manifest[p]["has_gps"] == "yes" for p in uploaded), "the corpus must include GPS photos"


def test_unrotated_jpeg_is_stored_losslessly(uploaded: dict[str, Any], server: Server, corpus: Path) -> None:
    """Orientation 1: the stored original decodes to exactly the uploaded pixels (no re-encode)."""
    doc = uploaded["photos/orientation_1.jpg"]
    stored = Image.open(io.BytesIO(server.stored(keys.original(doc["id"]))))
    source = Image.open(corpus / "photos/orientation_1.jpg")
    assert stored.tobytes() == source.tobytes()


def test_same_upload_twice_returns_same_id_and_writes_only_a_reference(server: Server, corpus: Path) -> None:
    """The image is stored once; each upload adds only its caller's reference (README: References)."""
    data = (corpus / "photos/reconyx_trailcam.jpg").read_bytes()
    with server.client() as c:
        first = c.post("/img", files={"file": ("a.jpg", data, "image/jpeg")})
        assert first.status_code in (200, 201)
        before = server.stored_versions()
        again_raw = c.post("/img", content=data)
        again_multipart = c.post("/img", files={"file": ("other-name.png", data, "image/png")})
    assert again_raw.status_code == 200 and again_multipart.status_code == 200
    assert again_raw.json()["id"] == again_multipart.json()["id"] == first.json()["id"]
    after = server.stored_versions()
    assert {k: v for k, v in after.items() if k in before} == before
    added = [keys.parse_reference(k) for k in after.keys() - before.keys()]
    assert sorted((image, ref) for image, _, ref in added) == sorted(
        (first.json()["id"], r.json()["ref"]) for r in (again_raw, again_multipart)
    )


# --------------------------------------------------------------------------- variants


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_photo_renders_in_every_format_without_metadata(
    uploaded: dict[str, Any], server: Server, fmt: str
) -> None:
    with server.client() as c:
        for path, doc in uploaded.items():
            r = c.get(f"/img/{doc['id']}", params={"w": 400, "fmt": fmt})
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"] == f"image/{fmt}"
            im = Image.open(io.BytesIO(r.content))
            assert im.format == FORMATS[fmt]
            assert im.size == (400, round(doc["height"] * 400 / doc["width"])), path
            assert_no_metadata(r.content, f"{path} as {fmt}")
            assert "icc_profile" not in im.info  # pixels are converted to sRGB instead
            ext = {"jpeg": ".jpg"}.get(fmt, f".{fmt}")
            assert any(name.endswith(ext) for name in server.variant_files(doc["id"]))


def test_sizes_fits_presets_and_dpr(uploaded: dict[str, Any], server: Server) -> None:
    doc = uploaded["photos/nokia_8.3_5g_gps_9mp.jpg"]  # 4608x1976
    cases = {
        "h=320&fmt=png": (746, 320),
        "w=400&h=400&fmt=webp": (400, 172),  # inside: fits the box
        "w=400&h=400&fit=cover&fmt=webp": (400, 400),
        "p=thumb&fmt=jpeg": (160, 160),
        "p=small&fmt=webp": (320, 137),
        "w=400&dpr=2&fmt=webp": (800, 343),
        "w=2048&h=2048&fit=cover&fmt=jpeg": (1976, 1976),  # never upscaled: the crop stays at full size
    }
    with server.client() as c:
        for query, size in cases.items():
            r = c.get(f"/img/{doc['id']}?{query}")
            assert r.status_code == 200, (query, r.text)
            assert Image.open(io.BytesIO(r.content)).size == size, query


def test_never_upscales_past_the_original(uploaded: dict[str, Any], server: Server) -> None:
    doc = uploaded["photos/orientation_3.jpg"]  # 1800x1200
    with server.client() as c:
        big = c.get(f"/img/{doc['id']}?w=2048&fmt=webp")
        also_big = c.get(f"/img/{doc['id']}?w=1920&fmt=webp")
    assert Image.open(io.BytesIO(big.content)).size == (1800, 1200)
    assert big.headers["etag"] == also_big.headers["etag"]  # one canonical variant for both


def test_orientations_one_to_eight_come_out_upright(uploaded: dict[str, Any], server: Server) -> None:
    """Each orientation_N photo is the same picture retagged; upright, all match orientation_1."""
    with server.client() as c:
        images = {p: grey(c.get(f"/img/{uploaded[p]['id']}?w=480&fmt=png").content) for p in ORIENTATIONS}
    reference = images[ORIENTATIONS[0]]
    for path, im in images.items():
        assert im.size == reference.size
        assert mean_diff(im, reference) < 12, f"{path} is not upright"
    # The check can tell: a mirrored or turned picture is far from the reference.
    assert mean_diff(ImageOps.mirror(reference), reference) > 20
    assert mean_diff(reference.rotate(180), reference) > 20


def test_camera_orientation_6_is_portrait(uploaded: dict[str, Any], server: Server) -> None:
    doc = uploaded["photos/canon_sx60_orientation6.jpg"]
    assert (doc["width"], doc["height"]) == (1536, 2048)
    with server.client() as c:
        r = c.get(f"/img/{doc['id']}?w=400&fmt=webp")
    assert Image.open(io.BytesIO(r.content)).size == (400, 533)


def test_equivalent_requests_share_one_canonical_variant(uploaded: dict[str, Any], server: Server) -> None:
    doc = uploaded["photos/orientation_2.jpg"]
    queries = [
        "w=560&fmt=webp",
        "fmt=webp&w=560",
        "width=560&format=webp",
        "w=560&fmt=webp&fit=inside",
        "w=560&fmt=webp&q=80",
        "w=560&fmt=webp&dpr=1",
        "W=560&FMT=WEBP",
        "w=560&h=2048&fmt=webp",
    ]
    with server.client() as c:
        etags = {q: c.get(f"/img/{doc['id']}?{q}").headers["etag"] for q in queries}
    assert len(set(etags.values())) == 1, etags
    stored = [name for name in server.variant_files(doc["id"]) if name.startswith("560x")]
    assert stored == ["560x373-q80.webp"]


# --------------------------------------------------------------------------- CDN headers


def test_cache_headers_etag_and_304(uploaded: dict[str, Any], server: Server) -> None:
    url = f"/img/{uploaded['photos/orientation_4.jpg']['id']}?w=320&fmt=webp"
    with server.client() as c:
        r = c.get(url)
        etag = r.headers["etag"]
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-length"] == str(len(r.content))
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong
        assert "vary" not in r.headers  # the format was asked for explicitly
        for header in (etag, f'"nope", {etag}', "*", f"W/{etag}"):
            not_modified = c.get(url, headers={"if-none-match": header})
            assert not_modified.status_code == 304, header
            assert not_modified.content == b""
            assert not_modified.headers["etag"] == etag
            assert not_modified.headers["cache-control"] == r.headers["cache-control"]
        assert c.get(url, headers={"if-none-match": '"other"'}).status_code == 200


def test_head_has_the_same_headers_as_get(uploaded: dict[str, Any], server: Server) -> None:
    url = f"/img/{uploaded['photos/orientation_5.jpg']['id']}?w=320"
    accept = {"accept": "image/avif,image/webp,*/*"}
    with server.client() as c:
        get = c.get(url, headers=accept)
        head = c.head(url, headers=accept)
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "etag", "cache-control", "vary", "x-content-type-options"):
        assert head.headers[name] == get.headers[name], name


@pytest.mark.parametrize(
    "accept,expected",
    [
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "image/avif"),
        ("image/webp,*/*", "image/webp"),
        ("image/avif;q=0,image/webp", "image/webp"),
        ("*/*", "image/jpeg"),
        ("", "image/jpeg"),
    ],
)
def test_format_negotiation_sends_vary_accept(
    uploaded: dict[str, Any], server: Server, accept: str, expected: str
) -> None:
    url = f"/img/{uploaded['photos/orientation_6.jpg']['id']}?w=200"
    with server.client() as c:
        for query in ("", "&fmt=auto"):
            for _ in range(2):  # rendered, then from memory: Vary on every tier
                r = c.get(url + query, headers={"accept": accept})
                assert r.headers["content-type"] == expected
                assert r.headers["vary"] == "Accept"


# --------------------------------------------------------------------------- errors


def test_bad_parameters_get_400_listing_what_is_allowed(uploaded: dict[str, Any], server: Server) -> None:
    base = f"/img/{uploaded['photos/orientation_7.jpg']['id']}"
    with server.client() as c:
        assert "webp" in assert_error(c.get(base + "?fmt=bmp"), 400, "bad_parameter")["detail"]
        assert "thumb" in assert_error(c.get(base + "?p=huge"), 400, "bad_parameter")["detail"]
        assert "dpr" in assert_error(c.get(base + "?w=400&dpr=7"), 400, "bad_parameter")["detail"]
        assert_error(c.get(base + "?w=400&w=320"), 400, "bad_parameter")
        assert_error(c.get(base + "?w=abc"), 400, "bad_parameter")
        assert_error(c.get(base + "?q=0"), 400, "bad_parameter")
        assert_error(c.get(base + "?fit=stretch"), 400, "bad_parameter")
        assert_error(c.get(base + "?cb=123"), 400, "bad_parameter")
        assert_error(c.get("/img/not-an-id"), 400, "bad_id")
        assert_error(c.get("/img/" + "0" * 32), 404, "not_found")
        assert_error(c.get("/img/" + "0" * 32 + "/meta"), 404, "not_found")
        assert_error(c.get("/nothing-here"), 404, "not_found")
        assert_error(c.put("/img"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path,status,code",
    [
        ("hostile/zero_bytes.jpg", 415, "unsupported_format"),
        ("hostile/svg_onload_xss.svg", 415, "unsupported_format"),
        ("hostile/html_named_as.jpg", 415, "unsupported_format"),
        ("hostile/gif_magic_js_polyglot.gif", 415, "unsupported_format"),
        ("hostile/ossfuzz-5730089102868480.sgi", 415, "unsupported_format"),
        ("hostile/timeout-060745d3f534ad6e4128c51d336ea5489182c69d.blp", 415, "unsupported_format"),
        ("hostile/jpeg_truncated.jpg", 422, "invalid_image"),
        ("hostile/jpeg_truncated_pixel6_gps.jpg", 422, "invalid_image"),
        ("hostile/png_truncated.png", 422, "invalid_image"),
        ("hostile/apng_chunk_no_fctl.png", 422, "invalid_image"),
        ("hostile/crash-2020-10-test.tif", 422, "invalid_image"),
        ("hostile/gif_bomb_65535x66601.gif", 422, "too_many_pixels"),
        ("hostile/gif_bomb_frame_extents.gif", 422, "too_many_pixels"),
        ("hostile/bmp_bomb_3158064x48.bmp", 422, "too_many_pixels"),
        ("hostile/bmp_bad_width.bmp", 422, "too_many_pixels"),
    ],
)
def test_bad_uploads_get_their_4xx_and_store_nothing(
    server: Server, corpus: Path, path: str, status: int, code: str
) -> None:
    before = server.stored_files()
    with server.client() as c:
        # A lying Content-Type must not matter: the format is sniffed from the bytes.
        r = c.post("/img", files={"file": ("photo.jpg", (corpus / path).read_bytes(), "image/jpeg")})
    assert_error(r, status, code)
    assert server.stored_files() == before


def test_multipart_without_file_field_is_400(server: Server) -> None:
    with server.client() as c:
        assert_error(c.post("/img", files={"image": ("a.jpg", b"xx", "image/jpeg")}), 400, "bad_multipart")


def test_with_snap_off_a_width_or_quality_off_the_list_gets_400(make_server: Any, corpus: Path) -> None:
    """variants.snap = "off": an off-list w or q is refused, the detail listing what is allowed
    (with the default "up" such requests snap: tests/e2e/test_frameworks.py)."""
    srv = make_server(variants={"snap": "off"})
    with srv.client() as c:
        base = f"/img/{c.post('/img', content=(corpus / PHOTOS[0]).read_bytes()).json()['id']}"
        assert "400, 480" in assert_error(c.get(base + "?w=401"), 400, "bad_parameter")["detail"]
        assert "75, 80" in assert_error(c.get(base + "?q=33"), 400, "bad_parameter")["detail"]
        assert c.get(base + "?w=400&q=80").status_code == 200


def test_body_over_the_limit_is_413_before_it_is_read(make_server: Any, corpus: Path) -> None:
    srv = make_server(limits={"max_upload_bytes": 100_000})
    data = (corpus / "photos/orientation_1.jpg").read_bytes()  # ~340 KB

    def chunked() -> Any:
        for i in range(0, len(data), 16_384):
            yield data[i : i + 16_384]

    with srv.client() as c:
        assert_error(c.post("/img", content=data), 413, "payload_too_large")  # declared length
        assert_error(c.post("/img", content=chunked()), 413, "payload_too_large")  # counted while streaming
        ok = c.post("/img", content=(corpus / "hostile/jpeg_empty_exif.jpg").read_bytes())
        assert ok.status_code == 201
    image = ok.json()["id"]
    refs = {k for k in srv.stored_files() if k.startswith(keys.references(image))}
    assert [keys.parse_reference(k)[2] for k in refs] == [ok.json()["ref"]]  # the upload's reference
    assert srv.stored_files() - refs == {keys.original(image), keys.metadata(image)}


def test_too_many_frames_is_422(make_server: Any, corpus: Path) -> None:
    srv = make_server(limits={"max_frames": 10})
    with srv.client() as c:
        assert_error(c.post("/img", content=(corpus / "formats/gif_animated.gif").read_bytes()), 422, "too_many_frames")
    assert srv.stored_files() == set()


def test_upload_and_delete_need_the_token_when_one_is_configured(make_server: Any, corpus: Path) -> None:
    token = "s3cret-token-0123456789"
    srv = make_server(auth={"tokens": {"blog": "another-token-abcdefgh", "shop": token}})
    data = (corpus / "hostile/jpeg_empty_exif.jpg").read_bytes()
    with srv.client() as c:
        r = assert_error(c.post("/img", content=data), 401, "unauthorized")
        assert_error(
            c.post("/img", content=data, headers={"authorization": "Bearer wrong-token-123456"}), 401, "unauthorized"
        )
        assert_error(c.post("/img", content=data, headers={"authorization": f"Basic {token}"}), 401, "unauthorized")
        created = c.post("/img", content=data, headers={"authorization": f"Bearer {token}"})
        assert created.status_code == 201
        image = created.json()["id"]
        assert_error(c.delete(f"/img/{image}"), 401, "unauthorized")
        assert c.get(f"/img/{image}?w=64").status_code == 200  # reading needs no token
        assert c.delete(f"/img/{image}", headers={"authorization": f"Bearer {token}"}).status_code == 204
    assert r["detail"]
    assert token not in srv.log()  # tokens are never logged


def test_overload_answers_503_with_retry_after(make_server: Any, corpus: Path) -> None:
    srv = make_server(render={"max_concurrent": 1, "max_queue": 0})
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "photos/nokia_8.3_5g_gps_9mp.jpg").read_bytes()).json()["id"]

    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as ac:
            widths = [1920, 1600, 1440, 1280, 1200, 1080, 960, 800]
            return await asyncio.gather(*(ac.get(f"/img/{image}?w={w}&fmt=png") for w in widths))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    for r in responses:
        if r.status_code == 503:
            assert_error(r, 503, "overloaded")
            assert r.headers["retry-after"] == "1"
            assert r.headers["cache-control"] == "no-store"


def test_render_over_the_time_limit_is_503(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "photos/orientation_1.jpg").read_bytes()).json()["id"]
    srv.stop()
    srv.config.write_text(srv.config.read_text() + "[limits]\nrender_timeout_s = 0.001\n")
    srv.start()
    with srv.client() as c:
        r = c.get(f"/img/{image}?w=1600&fmt=png")
    assert_error(r, 503, "render_timeout")
    assert "retry-after" in r.headers


# --------------------------------------------------------------------------- caching tiers


def test_restart_serves_variants_from_disk_without_rendering(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    queries = ["w=400&fmt=webp", "p=thumb&fmt=jpeg", "w=200&fmt=avif"]
    with srv.client() as c:
        ids = [
            c.post("/img", content=(corpus / p).read_bytes()).json()["id"]
            for p in ("photos/orientation_1.jpg", "photos/canon_sx60_orientation6.jpg")
        ]
        first = {(i, q): c.get(f"/img/{i}?{q}") for i in ids for q in queries}
        assert {r.headers["x-cache-tier"] for r in first.values()} == {"render"}
        assert srv.health()["renders"] == 6
        assert {r.headers["x-cache-tier"] for r in (c.get(f"/img/{i}?{q}") for i in ids for q in queries)} == {"memory"}
    srv.stop()
    srv.start()
    with srv.client() as c:
        again = {(i, q): c.get(f"/img/{i}?{q}") for i in ids for q in queries}
    assert {r.headers["x-cache-tier"] for r in again.values()} == {"store"}
    assert all(
        again[k].content == first[k].content and again[k].headers["etag"] == first[k].headers["etag"] for k in first
    )
    assert srv.health()["renders"] == 0


def test_concurrent_requests_for_one_missing_variant_render_once(make_server: Any, corpus: Path) -> None:
    import asyncio

    srv = make_server()
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "photos/sony_hdr-as300_gps_8mp_mpo.jpg").read_bytes()).json()["id"]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as ac:
            return await asyncio.gather(*(ac.get(f"/img/{image}?w=1200&fmt=webp") for _ in range(12)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert srv.health()["renders"] == 1
    assert len(srv.variant_files(image)) == 1


def test_delete_removes_original_variants_and_cache(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "photos/orientation_8.jpg").read_bytes()).json()["id"]
        assert c.get(f"/img/{image}?w=320&fmt=webp").status_code == 200
        assert c.get(f"/img/{image}?w=320&fmt=webp").headers["x-cache-tier"] == "memory"
        assert c.get(f"/img/{image}/meta").json()["id"] == image
        assert c.delete(f"/img/{image}").status_code == 204
        assert_error(c.get(f"/img/{image}?w=320&fmt=webp"), 404, "not_found")
        assert_error(c.get(f"/img/{image}/meta"), 404, "not_found")
        assert_error(c.delete(f"/img/{image}"), 404, "not_found")
    assert srv.stored_files() == set()


def test_meta_endpoint(uploaded: dict[str, Any], server: Server) -> None:
    doc = uploaded["photos/reconyx_trailcam.jpg"]
    with server.client(anonymous=True) as c:  # the public document: a token adds the caller's references
        r = c.get(f"/img/{doc['id']}/meta")
    assert r.status_code == 200
    assert r.json() == {name: value for name, value in doc.items() if name != "ref"}  # the upload's own reference
    assert r.headers["cache-control"].startswith("public")


def test_healthz(server: Server) -> None:
    with server.client() as c:
        r = c.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.headers["cache-control"] == "no-store"


def test_working_copy_is_kept_for_large_originals_only(uploaded: dict[str, Any], server: Server, corpus: Path) -> None:
    big = uploaded["photos/nokia_8.3_5g_gps_9mp.jpg"]  # 4608x1976, over both render.working_sizes
    with server.client() as c:
        small = c.post("/img", content=(corpus / "formats/jpeg_progressive.jpg").read_bytes()).json()  # 256x160
    stored = server.stored_files()
    levels = ((1280, 549), (800, 343), (480, 206))
    assert {keys.working_copy(big["id"], size) for size in levels} <= stored
    assert not any(k.startswith(f"{keys.original(small['id'])}.work") for k in stored)
    assert keys.original(small["id"]) in stored
    for size in levels:
        work = server.stored(keys.working_copy(big["id"], size))
        assert Image.open(io.BytesIO(work)).format == "JPEG" and Image.open(io.BytesIO(work)).size == size
        assert_no_metadata(work, "working copy")


def test_variants_from_the_working_copy_match_the_original(make_server: Any, corpus: Path) -> None:
    """The same requests with and without a working copy give (nearly) the same pixels."""
    data = (corpus / "photos/sony_hdr-as300_gps_8mp_mpo.jpg").read_bytes()
    with_copy, without = make_server(), make_server(render={"working_sizes": []})
    queries = ["w=400&fmt=png", "p=thumb&fmt=png", "w=800&h=400&fit=cover&fmt=png", "w=1600&fmt=png"]
    results = {}
    for srv in (with_copy, without):
        with srv.client() as c:
            image = c.post("/img", content=data).json()["id"]
            results[srv.port] = [
                Image.open(io.BytesIO(c.get(f"/img/{image}?{q}").content)).convert("RGB") for q in queries
            ]
    assert keys.working_copy(image, (480, 270)) in with_copy.stored_files()
    assert not any(".work" in k for k in without.stored_files())
    for query, a, b in zip(queries, results[with_copy.port], results[without.port]):
        assert a.size == b.size, query
        difference = sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3
        assert difference < 3, f"{query}: mean difference {difference:.2f}"
    with with_copy.client() as c:
        assert c.delete(f"/img/{image}").status_code == 204
    assert with_copy.stored_files() == set()
