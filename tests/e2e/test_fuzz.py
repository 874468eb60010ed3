"""A bounded fuzz run: mutated corpus images posted to the real service, then rendered.

Hypothesis draws a seed image from the corpus and mutates it (byte flips,
truncation, inserted junk, a duplicated slice, overwritten header bytes). Each
case is uploaded over HTTP; accepted ones are rendered in two formats. Only
2xx/4xx may come back, never a 5xx or a hang (every request has a timeout),
and afterwards every original in the store must decode. The run is derandomized
(the same cases every time, so CI is repeatable); FUZZ_EXAMPLES sets its size.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageSequence

import proxy.imaging.decode  # noqa: F401 - registers the HEIF opener, as the service does
from support.corpus import ARTIFACTS, CORPUS
from support.servers import Server, new_server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
SEEDS = ["formats/jpeg_progressive.jpg", "formats/jpeg_grayscale.jpg", "formats/jpeg_cmyk_adobe.jpg",
         "formats/png_palette_trns.png", "formats/png_rgba.png", "formats/png_16bit_rgba.png",
         "formats/webp_lossless_alpha.webp", "formats/bmp_24bit.bmp", "formats/tiff_lzw.tif",
         "hostile/jpeg_corrupt_exif_with_gps.jpg", "hostile/jpeg_invalid_exif.jpg"]
OUTCOMES: Counter[str] = Counter()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray((CORPUS / draw(st.sampled_from(SEEDS))).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[max(1, at):]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 4096))]
        else:  # sizes and lengths live in the first bytes of every format
            spot = draw(st.integers(0, min(64, len(data) - 1)))
            data[spot] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest,
                corpus: Path) -> Iterator[Server]:
    srv = new_server(tmp_path_factory.mktemp("fuzz"), "local", request,
                     limits={"max_pixels": 20_000_000, "render_timeout_s": 10.0}).start()
    yield srv
    srv.stop()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_images_never_cause_a_5xx(fuzz_server: Server, data: bytes) -> None:
    with fuzz_server.client(timeout=30) as client:
        upload = client.post("/img", content=data)
        OUTCOMES[f"upload {upload.status_code}"] += 1
        assert upload.status_code in (200, 201) or 400 <= upload.status_code < 500, upload.text
        if upload.status_code >= 400:
            assert upload.json()["error"]
            return
        image = upload.json()["id"]
        for fmt in ("webp", "jpeg"):
            render = client.get(f"/img/{image}?w=64&fmt={fmt}")
            OUTCOMES[f"render {render.status_code}"] += 1
            assert render.status_code == 200, render.text  # what was accepted must render


def test_store_holds_only_valid_images_after_fuzzing(fuzz_server: Server) -> None:
    """Runs after the fuzz test (file order): every stored original and variant decodes in full."""
    assert sum(v for k, v in OUTCOMES.items() if k.startswith("upload")) == EXAMPLES
    keys = sorted(k for k in fuzz_server.stored_files() if not k.endswith(".json"))
    assert keys, "the fuzz run should have stored some images"
    for key in keys:
        im = Image.open(io.BytesIO(fuzz_server.stored(key)))
        for frame in ImageSequence.Iterator(im):
            frame.load()
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {"examples": EXAMPLES, "outcomes": dict(sorted(OUTCOMES.items())), "stored_objects": len(keys)}
    (ARTIFACTS / "fuzz-summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nfuzz: {json.dumps(summary)}")
