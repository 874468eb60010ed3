"""proxy.formats: the format descriptors, the tables derived from them, and that Pillow agrees."""

from __future__ import annotations

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
    assert stored == {"jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "gif", "avif": "avif", "heic": "jpeg",
                      "bmp": "png", "tiff": "png"}
    assert all(FORMATS[target].output for target in stored.values())


def test_fallback_is_the_best_format_every_browser_decodes() -> None:
    assert FALLBACK == "jpeg"
    assert not FORMATS[FALLBACK].explicit_accept
    assert [n for n in OUTPUT_FORMATS if FORMATS[n].explicit_accept] == ["avif", "webp"]


def test_fmt_spellings_cover_outputs_only() -> None:
    """fmt= takes every output's name and alias (jpg), never an upload-only format."""
    assert OUTPUT_SPELLINGS == {"avif": "avif", "webp": "webp", "jpeg": "jpeg", "jpg": "jpeg", "png": "png",
                                "gif": "gif"}


def test_the_facts_the_rest_of_the_code_reads() -> None:
    """Quality, animation and transparency per output, as keys, negotiation and rendering rely on them."""
    assert {n for n in OUTPUT_FORMATS if FORMATS[n].quality} == {"jpeg", "webp", "avif"}
    assert {n for n in OUTPUT_FORMATS if FORMATS[n].animates} == {"webp", "gif"}
    assert {n: FORMATS[n].transparency for n in OUTPUT_FORMATS} == {
        "avif": "alpha", "webp": "alpha", "jpeg": "none", "png": "alpha", "gif": "binary"}
    assert {n: (FORMATS[n].mime, FORMATS[n].extension) for n in OUTPUT_FORMATS} == {
        "avif": ("image/avif", "avif"), "webp": ("image/webp", "webp"), "jpeg": ("image/jpeg", "jpg"),
        "png": ("image/png", "png"), "gif": ("image/gif", "gif")}
    assert {n for n in FORMATS if FORMATS[n].single_frame} == {"jpeg", "heic"}
