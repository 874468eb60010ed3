"""Crops over real HTTP on real photos: g=auto keeps the face or the object that a centre crop loses,
the same on every EXIF orientation; gravities, fp, crop boxes and fit=pad give exact sizes, share
one stored variant per distinct output, and refuse bad values with a 400 naming the allowed form;
stores written before focal points existed still crop g=auto at the same point."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageOps

from proxy import keys
from support.checks import assert_error
from support.images import encoded, mean_difference
from support.photos import Scene, contains, scenes
from support.servers import Server, new_server

TOKEN = "crops-test-token-0123456789"  # the named token every write in this module sends
PRESETS = {
    "avatar": {"w": 240, "h": 240, "fit": "cover", "g": "auto"},
    "square": {"w": 320, "h": 320, "fit": "pad", "bg": "transparent"},
    "thumb": {"w": 160, "h": 160, "fit": "cover"},
}
SIDE = 240  # the square crops asked for: on the default width list, and below every scene's height


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    server = new_server(
        tmp_path_factory.mktemp("crops"),
        backend,
        request,
        auth={"tokens": {"app": TOKEN}},
        variants={"presets": PRESETS},
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def all_scenes() -> list[Scene]:
    return scenes()


def jpeg(im: Image.Image, **params: Any) -> bytes:
    return encoded(im, "JPEG", quality=95, **params)


def get_image(c: httpx.Client, image: str, query: str) -> Image.Image:
    r = c.get(f"/img/{image}?{query}")
    assert r.status_code == 200, r.text
    im = Image.open(io.BytesIO(r.content))
    im.load()
    return im


def placed_box(srv: Server, image: str) -> tuple[int, int, int, int]:
    """The source box of the image's one stored SIDE x SIDE placed crop, read from its canonical name."""
    placed = [n for n in srv.variant_files(image) if n.startswith(f"{SIDE}x{SIDE}-at") and n.endswith(".png")]
    assert len(placed) == 1, srv.variant_files(image)
    found = re.fullmatch(rf"{SIDE}x{SIDE}-at(\d+)_(\d+)_(\d+)_(\d+)\.png", placed[0])
    assert found, placed
    x0, y0, x1, y1 = (int(v) for v in found.groups())
    return x0, y0, x1, y1


def test_g_auto_keeps_the_face_or_object_that_the_centre_crop_loses(srv: Server, all_scenes: list[Scene]) -> None:
    with srv.client() as c:
        for scene in all_scenes:
            doc = srv.upload(jpeg(scene.image), token=TOKEN)
            image, w, h = doc["id"], *scene.image.size
            assert doc["focus"]["by"] == scene.by, scene.name
            assert c.get(f"/img/{image}/meta").json()["focus"] == doc["focus"]

            auto = get_image(c, image, f"w={SIDE}&h={SIDE}&fit=cover&g=auto&fmt=png")
            assert auto.size == (SIDE, SIDE)
            if (doc["focus"]["x"], doc["focus"]["y"]) == (0.5, 0.5) or scene.name == "portrait":
                continue  # the whole portrait's face is near the middle: its auto crop may be the centre one
            box = placed_box(srv, image)
            assert contains(box, scene.keep), (scene.name, box)
            # The pixels are that box of the photo, scaled.
            expected = scene.image.crop(box).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
            assert mean_difference(auto.convert("RGB"), expected) < 4, scene.name

            centre_before = set(srv.variant_files(image))
            get_image(c, image, f"w={SIDE}&h={SIDE}&fit=cover&fmt=png")
            (centre,) = set(srv.variant_files(image)) - centre_before
            assert centre == f"{SIDE}x{SIDE}-cover.png"  # the plain centre crop, which misses the subject
            side = min(w, h)
            x0, y0 = (w - side) // 2, (h - side) // 2
            assert not contains((x0, y0, x0 + side, y0 + side), scene.keep), scene.name


# The stored pixels for each EXIF orientation: the inverse of what applying the tag does.
TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels, turned by its EXIF orientation tag, are `upright`."""
    turn = TO_STORED[orientation]
    stored = upright.transpose(turn) if turn is not None else upright.copy()
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg(stored, exif=exif.tobytes())
    assert mean_difference(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"), upright) < 3
    return data


@pytest.mark.parametrize("scene_index", [1, 3], ids=["faces", "saliency"])
def test_every_orientation_gives_the_crop_of_the_upright_photo(
    srv: Server, all_scenes: list[Scene], scene_index: int
) -> None:
    """The same point, so the same box (within the 1% a re-encode of turned pixels can move it), and the
    subject kept in each, cut from the upright pixels."""
    scene = all_scenes[scene_index]
    w, h = scene.image.size
    query = f"w={SIDE}&h={SIDE}&fit=cover&g=auto&fmt=png"
    crops: dict[int, Image.Image] = {}
    boxes = {}
    with srv.client() as c:
        for orientation in TO_STORED:
            doc = srv.upload(oriented(scene.image, orientation), token=TOKEN)
            assert (doc["width"], doc["height"]) == scene.image.size
            crops[orientation] = get_image(c, doc["id"], query).convert("RGB")
            boxes[orientation] = placed_box(srv, doc["id"])
    for orientation, box in boxes.items():
        assert contains(box, scene.keep), (orientation, box)
        assert all(abs(a - b) <= 0.01 * max(w, h) for a, b in zip(box, boxes[1])), (orientation, boxes)
        expected = scene.image.crop(box).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
        assert mean_difference(crops[orientation], expected) < 4, orientation  # upright pixels of that box


def test_gravity_fp_crop_and_pad_give_exact_sizes_and_share_stored_variants(srv: Server) -> None:
    photo = Image.new("RGB", (1800, 1200))
    photo.paste(Image.effect_mandelbrot((1800, 1200), (-2, -1, 1, 1), 100).convert("RGB"))
    image = srv.upload(jpeg(photo), token=TOKEN)["id"]
    sizes = {  # query -> output size
        "w=400&h=400&fit=cover&g=nw": (400, 400),
        "w=400&h=400&fit=cover&g=e": (400, 400),
        "w=640&h=200&fit=cover&g=s": (640, 200),
        "w=400&h=400&fit=cover&fp=0.4,0.9": (400, 400),
        "w=400&crop=0.25,0.25,0.5,0.5": (400, 267),
        "w=2048&crop=0,0,0.1,0.1": (180, 120),  # never enlarged
        "w=200&h=200&fit=cover&crop=0.5,0,0.5,1&g=n": (200, 200),
        "w=400&h=400&fit=pad": (400, 400),
        "w=400&h=160&fit=pad&bg=000000": (400, 160),
        "w=2048&h=2048&fit=pad&bg=transparent": (2048, 2048),  # padded to exactly the box, the photo unscaled
        "p=avatar": (240, 240),
        "p=avatar&dpr=2": (480, 480),
        "p=square": (320, 320),
        "p=avatar&crop=0,0,0.5,0.5": (240, 240),
    }
    with srv.client() as c:
        for query, size in sizes.items():
            assert get_image(c, image, f"{query}&fmt=png").size == size, query
        stored = set(srv.variant_files(image))
        assert len(stored) == len(sizes)
        for a, b in [
            ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&g=center"),
            ("w=400&h=400&fit=cover", "w=400&h=400&fit=cover&g=n"),
            ("w=400&h=400&fit=cover&g=nw", "w=400&h=400&fit=cover&fp=0,0"),
            ("w=400&h=400&fit=cover&g=e", "w=400&h=400&fit=cover&fp=0.99,0.01"),
            ("w=400", "w=400&crop=0,0,1,1"),
            ("w=240&h=160", "w=240&h=160&fit=pad&bg=000000"),
            ("w=400&h=400&fit=pad", "w=400&h=400&fit=pad&bg=ffffff"),
        ]:
            before = set(srv.variant_files(image))
            first = c.get(f"/img/{image}?{a}&fmt=png")
            again = c.get(f"/img/{image}?{b}&fmt=png")
            assert first.status_code == again.status_code == 200
            assert again.content == first.content and again.headers["etag"] == first.headers["etag"], (a, b)
            assert again.headers["x-cache-tier"] == "memory"
            assert len(set(srv.variant_files(image)) - before) <= 1


def test_pad_colours_and_transparency(srv: Server) -> None:
    image = srv.upload(jpeg(Image.new("RGB", (600, 300), (200, 30, 30))), token=TOKEN)["id"]
    with srv.client() as c:
        clear = get_image(c, image, "w=400&h=400&fit=pad&bg=transparent&fmt=png")
        assert clear.mode == "RGBA" and clear.getpixel((0, 0))[3] == 0 and clear.getpixel((200, 200))[3] == 255
        assert get_image(c, image, "w=400&h=400&fit=pad&bg=000000&fmt=png").convert("RGB").getpixel((0, 0)) == (0, 0, 0)
        white = get_image(c, image, "w=400&h=400&fit=pad&fmt=jpeg").getpixel((0, 0))
        assert all(v >= 250 for v in white)  # render.background
        # transparent in a format without alpha is the render.background canvas, under the same key
        a = c.get(f"/img/{image}?w=400&h=400&fit=pad&bg=transparent&fmt=jpeg")
        b = c.get(f"/img/{image}?w=400&h=400&fit=pad&bg=ffffff&fmt=jpeg")
        assert a.content == b.content
        # a transparent pad of an opaque photo negotiates a format with alpha
        r = c.get(f"/img/{image}?w=400&h=400&fit=pad&bg=transparent", headers={"accept": "image/png,*/*"})
        assert r.headers["content-type"] == "image/png"
        webp = c.get(f"/img/{image}?w=400&h=400&fit=pad&bg=transparent", headers={"accept": "image/webp,*/*"})
        assert webp.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(webp.content)).convert("RGBA").getpixel((0, 0))[3] == 0


@pytest.mark.parametrize(
    ("query", "form"),
    [
        ("w=400&h=400&fit=cover&fp=0.333,0.5", "fp=<x>,<y>"),
        ("w=400&h=400&fit=cover&fp=1.2,0.5", "fp=<x>,<y>"),
        ("w=400&crop=0.5,0.5,0.6,0.2", "crop=<x>,<y>,<w>,<h>"),
        ("w=400&crop=0.1,0.1,0,0.2", "crop=<x>,<y>,<w>,<h>"),
        ("w=400&crop=0.1,0.1,0.1234,0.2", "crop=<x>,<y>,<w>,<h>"),
        ("w=400&h=400&fit=cover&g=top", "g=<center|n|s|e|w|ne|nw|se|sw|auto>"),
        ("w=400&h=400&fit=pad&bg=ff00ff", "allowed values: transparent, ffffff, 000000"),
        ("w=400&fit=pad", "both w and h"),
        ("w=400&g=auto", "fit=cover"),
        ("w=0&h=400&fit=pad", "must be at least 1"),
    ],
)
def test_bad_values_are_400_with_the_allowed_form(srv: Server, query: str, form: str) -> None:
    image = srv.upload(jpeg(Image.new("RGB", (64, 48), (1, 2, 3))), token=TOKEN)["id"]
    with srv.client() as c:
        body = assert_error(c.get(f"/img/{image}?{query}"), 400, "bad_parameter")
    assert form in body["detail"], body


def test_the_document_carries_presets_with_their_placement(srv: Server, all_scenes: list[Scene]) -> None:
    doc = srv.upload(jpeg(all_scenes[1].image), token=TOKEN)
    avatar = doc["presets"]["avatar"]
    assert set(avatar["srcset"]) == set(doc["srcset"])  # the same formats as the image's own srcset
    webp = avatar["srcset"]["webp"]
    assert "?p=avatar&fmt=webp 240w, " in webp and "?p=avatar&dpr=2&fmt=webp 480w, " in webp
    assert webp.endswith("?p=avatar&dpr=3&fmt=webp 512w")  # the 512-px-high photo caps 3x, never enlarged
    assert 'width="240" height="240"' in avatar["picture"] and "p=avatar&amp;dpr=1.5" in avatar["picture"]
    with srv.client() as c:
        for candidate in avatar["srcset"]["avif"].split(", "):
            url, width = candidate.rsplit(" ", 1)
            assert get_image(c, doc["id"], url.split("?", 1)[1]).width == int(width[:-1])


def meta_without_focus(srv: Server, image: str) -> None:
    """Turn the image's metadata into what a store written before focal points holds."""
    key = keys.metadata(image)
    fields = json.loads(srv.stored(key))
    del fields["focus"]
    body = json.dumps(fields).encode()
    if srv.s3 is not None:
        srv.s3.put_object(Bucket=srv.bucket, Key=srv.prefix + key, Body=body)
    else:
        (srv.data / key).write_bytes(body)


def test_an_image_stored_before_focal_points_crops_at_the_same_point(
    srv: Server, all_scenes: list[Scene], tmp_path: Path
) -> None:
    data = jpeg(all_scenes[3].image)
    doc = srv.upload(data, token=TOKEN)
    image = doc["id"]
    with srv.client() as c:
        fresh = c.get(f"/img/{image}?w={SIDE}&h={SIDE}&fit=cover&g=auto&fmt=png").content
    meta_without_focus(srv, image)
    srv.stop()
    srv.start()  # no metadata in memory any more
    with srv.client() as c:
        assert c.get(f"/img/{image}/meta").json()["focus"] == doc["focus"]
        for name in srv.variant_files(image):  # rendered again, not read from the store
            srv.s3.delete_object(Bucket=srv.bucket, Key=srv.prefix + keys.variant(image, name)) if srv.s3 else (
                srv.data / keys.variant(image, name)
            ).unlink()
        again = c.get(f"/img/{image}?w={SIDE}&h={SIDE}&fit=cover&g=auto&fmt=png")
        assert again.headers["x-cache-tier"] == "render" and again.content == fresh
    assert "focus" not in json.loads(srv.stored(keys.metadata(image)))  # a read never writes metadata
    srv.upload(data, token=TOKEN, expect=200)  # the same bytes again store it
    assert json.loads(srv.stored(keys.metadata(image)))["focus"] == doc["focus"]
