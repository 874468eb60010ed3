"""A bounded fuzz run: mutated images posted to the real service, then rendered.

Two stages. The first draws a seed image from the corpus and mutates it anywhere
(byte flips, truncation, inserted junk, a duplicated slice, overwritten header
bytes). The second mutates small valid files of every accepted format (JPEG, PNG,
WebP, GIF, AVIF, HEIC, BMP, TIFF, stills and animations; tests/support/wild.py)
inside their compressed pixel data only, keeping the container valid (lengths kept,
PNG CRCs recomputed), so the decoders themselves meet the damage instead of the
header checks; some cases are then cut short inside that data. Each case is
uploaded over HTTP; accepted ones are rendered in two formats. Only 2xx/4xx may come
back, never a 5xx or a hang (every request has a timeout), and afterwards every
original in the store must decode in full. The runs are derandomized (the same cases
every time, so CI is repeatable); FUZZ_EXAMPLES and FUZZ_STREAM_EXAMPLES set their sizes.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageSequence

import proxy.imaging.decode  # noqa: F401 - registers the HEIF opener, as the service does
from proxy.formats import INPUT_FORMATS, from_pil
from support.corpus import ARTIFACTS, CORPUS
from support.servers import Server, new_server
from support.wild import data_stream, seeds, with_crcs

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
STREAM_EXAMPLES = int(os.environ.get("FUZZ_STREAM_EXAMPLES", "400"))
STREAM_SEEDS = seeds()
SEEDS = [
    "formats/jpeg_progressive.jpg",
    "formats/jpeg_grayscale.jpg",
    "formats/jpeg_cmyk_adobe.jpg",
    "formats/png_palette_trns.png",
    "formats/png_rgba.png",
    "formats/png_16bit_rgba.png",
    "formats/webp_lossless_alpha.webp",
    "formats/bmp_24bit.bmp",
    "formats/tiff_lzw.tif",
    "hostile/jpeg_corrupt_exif_with_gps.jpg",
    "hostile/jpeg_invalid_exif.jpg",
]
OUTCOMES: Counter[str] = Counter()
STREAM_OUTCOMES: Counter[str] = Counter()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray((CORPUS / draw(st.sampled_from(SEEDS))).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[max(1, at) :]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 4096))]
        else:  # sizes and lengths live in the first bytes of every format
            spot = draw(st.integers(0, min(64, len(data) - 1)))
            data[spot] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(data)


@st.composite
def damaged_stream(draw: st.DrawFn) -> bytes:
    """A valid seed of an accepted format with its compressed pixel data damaged, the container kept."""
    data = bytearray(STREAM_SEEDS[draw(st.sampled_from(sorted(STREAM_SEEDS)))])
    start, end = data_stream(bytes(data))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(start, end - 1))
        kind = draw(st.sampled_from(["flip", "overwrite", "copy"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
            continue
        if kind == "overwrite":
            run = draw(st.binary(min_size=1, max_size=16))
        else:  # another stretch of the same stream, as a decoder desynchronised by one byte sees it
            source = draw(st.integers(start, end - 1))
            run = bytes(data[source : source + draw(st.integers(1, 64))])
        run = run[: end - at]
        data[at : at + len(run)] = run  # same length: every length field and offset stays right
    data = bytearray(with_crcs(bytes(data)))
    if draw(st.integers(0, 3)) == 0:  # one case in four also ends inside the pixel data
        del data[draw(st.integers(start, end)) :]
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, corpus: Path
) -> Iterator[Server]:
    srv = new_server(
        tmp_path_factory.mktemp("fuzz"), "local", request, limits={"max_pixels": 20_000_000, "render_timeout_s": 10.0}
    ).start()
    yield srv
    srv.stop()


def exercise(server: Server, data: bytes, outcomes: Counter[str]) -> None:
    """Upload `data`; a 4xx must be a JSON error, an accepted image must render; never a 5xx."""
    with server.client(timeout=30) as client:
        upload = client.post("/img", content=data)
        outcomes[f"upload {upload.status_code}"] += 1
        assert upload.status_code in (200, 201) or 400 <= upload.status_code < 500, upload.text
        if upload.status_code >= 400:
            assert upload.json()["error"]
            return
        image = upload.json()["id"]
        for fmt in ("webp", "jpeg"):
            render = client.get(f"/img/{image}?w=64&fmt={fmt}")
            outcomes[f"render {render.status_code}"] += 1
            assert render.status_code == 200, render.text  # what was accepted must render


def test_the_stream_seeds_cover_every_accepted_format() -> None:
    """The second stage damages every format sanitize.formats accepts, each decoding cleanly undamaged."""
    found = set()
    for name, data in STREAM_SEEDS.items():
        im = Image.open(io.BytesIO(data))
        im.load()
        found.add(from_pil(im.format).name)
        start, end = data_stream(data)
        assert 0 < start < end <= len(data), name
    assert found == set(INPUT_FORMATS)


FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
@given(data=mutated())
def test_mutated_images_never_cause_a_5xx(fuzz_server: Server, data: bytes) -> None:
    exercise(fuzz_server, data, OUTCOMES)


@settings(FUZZ_SETTINGS, max_examples=STREAM_EXAMPLES)
@given(data=damaged_stream())
def test_damaged_pixel_data_of_every_format_never_causes_a_5xx(fuzz_server: Server, data: bytes) -> None:
    exercise(fuzz_server, data, STREAM_OUTCOMES)


def test_store_holds_only_valid_images_after_fuzzing(fuzz_server: Server) -> None:
    """Runs after the fuzz tests (file order): every stored original and variant decodes in full."""
    assert sum(v for k, v in OUTCOMES.items() if k.startswith("upload")) == EXAMPLES
    assert sum(v for k, v in STREAM_OUTCOMES.items() if k.startswith("upload")) == STREAM_EXAMPLES
    keys = sorted(k for k in fuzz_server.stored_files() if not k.endswith(".json"))
    assert keys, "the fuzz run should have stored some images"
    for key in keys:
        im = Image.open(io.BytesIO(fuzz_server.stored(key)))  # fresh bytes: nothing else decoded them first
        for frame in ImageSequence.Iterator(im):
            frame.load()
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {
        "examples": EXAMPLES,
        "outcomes": dict(sorted(OUTCOMES.items())),
        "stream_examples": STREAM_EXAMPLES,
        "stream_outcomes": dict(sorted(STREAM_OUTCOMES.items())),
        "stored_objects": len(keys),
    }
    (ARTIFACTS / "fuzz-summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nfuzz: {json.dumps(summary)}")
