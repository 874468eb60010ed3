"""proxy.formats: the format descriptors, the tables derived from them, and that Pillow agrees."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import proxy.imaging.decode  # noqa: F401 - registers the HEIF plugin, as the service does
from proxy.formats import FALLBACK, FORMATS, INPUT_FORMATS, OUTPUT_FORMATS, OUTPUT_SPELLINGS, from_pil


def test_every_pillow_id_names_its_format_back() -> None:
    """The reverse map behind format_name: each plugin id, and MPO (a camera JPEG), give our name."""
    for fmt in FORMATS.values():
        for pil in (*fmt.pil, *fmt.pil_variants):
            assert from_pil(pil) is fmt
    assert from_pil("MPO").name == "jpeg"


def test_pillow_opens_and_writes_what_the_descriptors_name() -> None:
    """Every plugin id is one Pillow can open with, and every output's save name one it can write."""
    Image.init()
    for fmt in FORMATS.values():
        assert set(fmt.pil) <= set(Image.OPEN), fmt.name
    for name in OUTPUT_FORMATS:
        assert FORMATS[name].pil_save in Image.SAVE, name


def test_outputs_and_inputs_follow_the_flags() -> None:
    """variants.formats and sanitize.formats choose from exactly the flagged formats, outputs best first."""
    assert set(OUTPUT_FORMATS) == {f.name for f in FORMATS.values() if f.output}
    assert INPUT_FORMATS == tuple(f.name for f in FORMATS.values() if f.accepted)
    assert OUTPUT_FORMATS[:2] == ("avif", "webp")


def test_every_upload_is_stored_in_a_format_we_render_from() -> None:
    """Re-encodes go to an output format (BMP, TIFF -> PNG; HEIC -> JPEG), so every original renders."""
    stored = {name: FORMATS[name].store_format for name in INPUT_FORMATS}
    assert stored == {
        "jpeg": "jpeg",
        "png": "png",
        "webp": "webp",
        "gif": "gif",
        "avif": "avif",
        "heic": "jpeg",
        "bmp": "png",
        "tiff": "png",
    }
    assert all(FORMATS[target].output for target in stored.values())


def test_fallback_is_the_best_format_every_browser_decodes() -> None:
    assert FALLBACK == "jpeg"
    assert not FORMATS[FALLBACK].explicit_accept
    assert [n for n in OUTPUT_FORMATS if FORMATS[n].explicit_accept] == ["avif", "webp"]


def test_fmt_spellings_cover_outputs_only() -> None:
    """fmt= takes every output's name and alias (jpg), never an upload-only format."""
    assert OUTPUT_SPELLINGS == {
        "avif": "avif",
        "webp": "webp",
        "jpeg": "jpeg",
        "jpg": "jpeg",
        "png": "png",
        "gif": "gif",
    }


def test_the_facts_the_rest_of_the_code_reads() -> None:
    """Quality, animation and transparency per output, as keys, negotiation and rendering rely on them."""
    assert {n for n in OUTPUT_FORMATS if FORMATS[n].quality} == {"jpeg", "webp", "avif"}
    assert {n for n in OUTPUT_FORMATS if FORMATS[n].animates} == {"webp", "gif"}
    assert {n: FORMATS[n].transparency for n in OUTPUT_FORMATS} == {
        "avif": "alpha",
        "webp": "alpha",
        "jpeg": "none",
        "png": "alpha",
        "gif": "binary",
    }
    assert {n: (FORMATS[n].mime, FORMATS[n].extension) for n in OUTPUT_FORMATS} == {
        "avif": ("image/avif", "avif"),
        "webp": ("image/webp", "webp"),
        "jpeg": ("image/jpeg", "jpg"),
        "png": ("image/png", "png"),
        "gif": ("image/gif", "gif"),
    }
    assert {n for n in FORMATS if FORMATS[n].single_frame} == {"jpeg", "heic", "tiff"}  # previews, collections, pages


def _round_trip(fmt: str, size: tuple[int, int]) -> bool:
    """Whether Pillow writes a `size` image in `fmt` and reads it back at that size."""
    out = io.BytesIO()
    try:
        fastest = {"speed": 10} if fmt == "avif" else {}
        Image.new("RGB", size, (90, 30, 200)).save(out, FORMATS[fmt].pil_save, **fastest)
        back = Image.open(io.BytesIO(out.getvalue()))
        back.load()
    except (OSError, ValueError):
        return False
    return back.size == size


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_max_side_is_what_the_encoder_writes_and_the_decoder_reads(fmt: str) -> None:
    """Measured, not copied from the specs: libjpeg-turbo stops at 65500 (not the 65535 its header field holds),
    libavif's decoder at 32768 (its encoder writes more); GIF's and PNG's fields hold more than any upload."""
    side = FORMATS[fmt].max_side
    tested = min(side, 70_000)  # PNG's 2**31 - 1 is beyond any upload: 70,000 stands for it
    assert _round_trip(fmt, (16, tested)) and _round_trip(fmt, (tested, 16))
    if tested == side and fmt != "gif":  # a GIF's 16-bit fields cannot even say one more
        assert not _round_trip(fmt, (16, side + 1)) and not _round_trip(fmt, (side + 1, 16))


def test_holds_checks_both_sides_and_the_area() -> None:
    webp, avif, png = FORMATS["webp"], FORMATS["avif"], FORMATS["png"]
    assert webp.holds(16383, 16383) and not webp.holds(193, 31237) and not webp.holds(16384, 1)
    assert avif.holds(193, 31237) and not avif.holds(32769, 1) and not avif.holds(16385, 16385)
    assert png.holds(193, 31237) and png.holds(1, 50_000_000)
    assert "16383" in webp.limit() and "268435456" in avif.limit()
