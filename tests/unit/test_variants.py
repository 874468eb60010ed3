"""Variant requests: query parsing (proxy.variants), output geometry (proxy.imaging.geometry.plan)
and the canonical variant name (proxy.keys.variant_name) that makes equivalent URLs share one
render and one stored object."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import EncoderSettings, VariantSettings, parse_settings
from proxy.imaging.geometry import Geometry, plan
from proxy.imaging.render import default_quality
from proxy.keys import variant_name
from proxy.negotiate import pick_format
from proxy.variants import VariantRequest, parse_query
from support.queries import bad, q

# The defaults a config without [variants] gets, built-in presets included.
V: VariantSettings = parse_settings({}, Path("/srv")).variants
V_OFF: VariantSettings = parse_settings({"variants": {"snap": "off"}}, Path("/srv")).variants
ENC = EncoderSettings()


# --------------------------------------------------------------------------- parse_query


def test_plain_width() -> None:
    """w alone gives an inside fit, no height, negotiated format and default quality."""
    assert q("w=320") == VariantRequest(w=320, h=None, fit="inside", fmt=None, q=None)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("width=320", "w=320"),
        ("W=320", "w=320"),
        ("height=240", "h=240"),
        ("format=webp", "fmt=webp"),
        ("f=webp", "fmt=webp"),
        ("fmt=jpg", "fmt=jpeg"),
        ("fmt=JPG", "fmt=jpeg"),
        ("w=320&quality=75", "w=320&q=75"),
        ("preset=small", "p=small"),
        ("w=320&h=240&fit=contain", "w=320&h=240&fit=inside"),
        ("w=320&h=240&fit=max", "w=320&h=240&fit=inside"),
        ("w=320&h=240&fit=crop", "w=320&h=240&fit=cover"),
        ("w=320&h=240&fit=fill", "w=320&h=240&fit=cover"),
        ("w=320&dpr=2x", "w=320&dpr=2"),
    ],
)
def test_aliases_fold_to_the_canonical_request(alias: str, canonical: str) -> None:
    """Every alias parses to exactly the request its canonical spelling gives."""
    assert q(alias) == q(canonical)


def test_jpg_means_jpeg_and_auto_means_negotiate() -> None:
    """fmt=jpg is stored as 'jpeg'; fmt=auto leaves the choice to Accept (fmt None)."""
    assert q("w=320&fmt=jpg").fmt == "jpeg"
    assert q("w=320&fmt=auto").fmt is None


def test_unknown_parameter_is_refused_listing_the_known_ones() -> None:
    """A typo such as wdth= is an error, not silently ignored (which would serve the wrong size)."""
    msg = bad("wdth=320")
    assert "wdth" in msg
    for name in ("w", "h", "fit", "fmt", "q", "dpr", "p"):
        assert name in msg


@pytest.mark.parametrize("query", ["w=320&w=640", "w=320&width=320", "fmt=webp&format=jpg", "q=80&quality=80"])
def test_duplicate_parameters_are_refused(query: str) -> None:
    """A parameter given twice, directly or through an alias, is ambiguous and refused."""
    assert "more than once" in bad(query)


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("w=321", V.widths),
        ("h=1000", V.heights),
        ("w=320&q=81", V.qualities),
    ],
)
def test_off_list_numbers_are_refused_listing_the_allowed_values(query: str, allowed: tuple[int, ...]) -> None:
    """With snap = "off", sizes and qualities outside the allow-list are refused; the message lists
    every allowed value."""
    msg = bad(query, V_OFF)
    assert "allowed values: " + ", ".join(str(a) for a in allowed) in msg


def test_off_list_dpr_lists_the_allowed_densities() -> None:
    """dpr=2.5 is not configured; the message lists 1, 1.5, 2, 3."""
    assert "allowed values: 1, 1.5, 2, 3" in bad("w=320&dpr=2.5")


@pytest.mark.parametrize("query", ["w=abc", "w=", "h=1.5", "q=high", "dpr=two"])
def test_malformed_numbers_are_refused(query: str) -> None:
    """Non-numeric values are a BadParameter, never a ValueError escaping as a 500."""
    bad(query)


def test_format_outside_the_configured_list_is_refused() -> None:
    """An operator who disabled AVIF gets no AVIF, even when asked explicitly."""
    v = parse_settings({"variants": {"formats": ["webp", "jpeg"]}}, Path("/srv")).variants
    msg = bad("w=320&fmt=avif", v)
    assert "allowed values: auto, webp, jpeg" in msg
    assert q("w=320&fmt=webp", v).fmt == "webp"
    assert "fmt=tiff" in bad("fmt=tiff")


def test_bad_fit_is_refused() -> None:
    """Only inside/cover (and their aliases) are fits."""
    assert "inside" in bad("w=320&h=320&fit=stretch")


def test_preset_expands_to_its_settings() -> None:
    """p=thumb gives the preset's size and fit; p=small only a width."""
    assert q("p=thumb") == VariantRequest(w=160, h=160, fit="cover", fmt=None, q=None)
    assert q("p=small") == VariantRequest(w=320, h=None, fit="inside", fmt=None, q=None)


def test_preset_combines_with_format_quality_and_dpr() -> None:
    """A preset fixes the size only; format, quality and density may still be chosen."""
    assert q("p=thumb&fmt=webp&q=60&dpr=2") == VariantRequest(w=320, h=320, fit="cover", fmt="webp", q=60)


@pytest.mark.parametrize("query", ["p=thumb&w=320", "p=small&h=240", "p=thumb&fit=inside", "preset=small&width=320"])
def test_preset_and_explicit_size_clash(query: str) -> None:
    """p= sets the size, so adding w, h or fit is contradictory and refused."""
    assert "cannot be combined" in bad(query)


def test_unknown_preset_lists_the_presets() -> None:
    """An unknown preset name is refused, naming the configured presets."""
    msg = bad("p=huge")
    for name in ("thumb", "small", "medium", "large"):
        assert name in msg


def test_dpr_multiplies_both_dimensions() -> None:
    """w and h are already multiplied by dpr in the request; a missing dimension stays missing."""
    assert q("w=320&h=240&dpr=2") == VariantRequest(w=640, h=480, fit="inside", fmt=None, q=None)
    assert q("w=320&dpr=1.5").w == 480
    assert q("w=320&dpr=1.5").h is None
    assert q("h=200&dpr=3") == VariantRequest(w=None, h=600, fit="inside", fmt=None, q=None)


def test_no_size_means_the_largest_allowed_box() -> None:
    """Without w, h or p the request asks for the biggest configured box (never more than the original)."""
    r = q("")
    assert (r.w, r.h, r.fit) == (max(V.widths), max(V.heights), "inside")
    assert q("fmt=webp").w == max(V.widths)


# --------------------------------------------------------------------------- snapping (variants.snap = "up")


@pytest.mark.parametrize(
    ("query", "served"),
    [
        ("w=48", "w=64"),  # Next.js's 48 px avatar: the smallest allowed width at or above it
        ("w=384", "w=400"),
        ("w=750", "w=800"),
        ("w=828", "w=960"),
        ("w=3840", "w=2048"),  # past the list: the largest allowed width
        ("w=6016", "w=2048"),  # unpic's widest breakpoint
        ("h=267", "h=320"),  # <NuxtImg width=400 height=267> sends h=267
        ("w=750&dpr=2", "w=800&dpr=2"),  # the width snaps first, then the density multiplies it
        ("w=320&q=78", "w=320&q=80"),  # q: the nearest allowed quality
        ("w=320&q=77", "w=320&q=75"),
        ("w=320&q=100", "w=320&q=90"),
        ("w=320&q=45", "w=320&q=50"),  # a tie goes to the higher quality
    ],
)
def test_off_list_values_are_served_as_the_allowed_value_they_snap_to(query: str, served: str) -> None:
    """A snapped request is the very request for the allowed value, so both share one variant key."""
    assert q(query) == q(served)


@pytest.mark.parametrize("query", ["w=0", "w=-400", "h=0", "q=0", "q=101", "w=abc"])
def test_values_outside_any_size_or_quality_are_still_refused(query: str) -> None:
    """Snapping maps real sizes onto the list; nonsense (0, negative, q over 100) stays a 400."""
    bad(query)


def test_presets_off_the_lists_snap_like_requests() -> None:
    """With Next.js's widths the built-in presets start and snap: small 320 -> 384, large 1600 -> 1920."""
    next_widths = parse_settings(
        {"variants": {"widths": [640, 750, 828, 1080, 1200, 1920, 2048, 3840, 16, 32, 48, 64, 96, 128, 256, 384]}},
        Path("/srv"),
    ).variants
    assert q("p=small", next_widths) == q("w=384", next_widths) == VariantRequest(384, None, "inside", None, None)
    assert q("p=large", next_widths).w == 1920
    assert q("p=thumb", next_widths) == VariantRequest(256, 160, "cover", None, None)


def test_signed_requests_do_not_snap() -> None:
    """A signed URL renders exactly what was signed (within the hard caps), never a snapped size."""
    security = parse_settings({}, Path("/srv")).security
    assert parse_query([("w", "750"), ("q", "78")], V, security) == VariantRequest(
        750, None, "inside", None, 78, security.max_pixels
    )


def test_values_are_trimmed() -> None:
    """Stray whitespace around a value (common in hand-written URLs) is ignored."""
    assert q("w= 320 ") == q("w=320")


# --------------------------------------------------------------------------- plan()


@pytest.mark.parametrize(("w", "h"), [(2048, None), (None, 2048), (2048, 2048), (1801, 1201), (4000, 10)])
def test_inside_never_upscales(w: int | None, h: int | None) -> None:
    """A box at least as large as the original (in any given dimension) keeps the original size."""
    g = plan(1800, 1200, w, h, "inside")
    assert g.width <= 1800 and g.height <= 1200
    assert g.crop is None
    if (w is None or w >= 1800) and (h is None or h >= 1200):
        assert (g.width, g.height) == (1800, 1200)


def test_inside_scales_down_keeping_the_aspect() -> None:
    """The image fits in the box, limited by the tighter dimension."""
    assert plan(1800, 1200, 800, None, "inside") == Geometry(800, 533, None)
    assert plan(1800, 1200, None, 400, "inside") == Geometry(600, 400, None)
    assert plan(1800, 1200, 800, 800, "inside") == Geometry(800, 533, None)
    assert plan(1200, 1800, 800, 800, "inside") == Geometry(533, 800, None)


def test_inside_never_rounds_to_zero() -> None:
    """A very wide image scaled to a small width keeps at least one pixel of height."""
    assert plan(10000, 3, 64, None, "inside") == Geometry(64, 1, None)


def test_cover_crops_the_centre_to_the_box_aspect() -> None:
    """Cover: a square box on a landscape image trims equal amounts from left and right."""
    assert plan(1800, 1200, 400, 400, "cover") == Geometry(400, 400, (300, 0, 1500, 1200))
    assert plan(1200, 1800, 400, 400, "cover") == Geometry(400, 400, (0, 300, 1200, 1500))


def test_cover_never_upscales() -> None:
    """A box larger than the original keeps the crop at full size instead of enlarging it."""
    g = plan(100, 50, 200, 200, "cover")
    assert g == Geometry(50, 50, (25, 0, 75, 50))
    g = plan(300, 300, 2048, 1024, "cover")
    assert (g.width, g.height) == (300, 150)


SOURCES = [(1800, 1200), (1200, 1800), (1000, 667), (333, 1001), (4608, 1976), (101, 99), (7, 5)]
BOXES = [(160, 160), (320, 240), (240, 320), (1920, 1080), (64, 2048), (2048, 64)]


@pytest.mark.parametrize(("sw", "sh"), SOURCES)
def test_cover_crop_is_centred_with_the_requested_aspect(sw: int, sh: int) -> None:
    """For every box: output within the source, crop inside it, centred (margins differ by <= 1 px),
    one side uncut, the other cut to the box aspect (to the nearest pixel), output aspect = crop aspect."""
    for w, h in BOXES:
        g = plan(sw, sh, w, h, "cover")
        assert g.width <= sw and g.height <= sh, (w, h, g)
        if g.crop is None:  # only when the box has the source's aspect, to the nearest pixel
            assert round(sw * h / w) == sh or round(sh * w / h) == sw, (w, h, g)
            continue
        x0, y0, x1, y1 = g.crop
        cw, ch = x1 - x0, y1 - y0
        assert 0 <= x0 < x1 <= sw and 0 <= y0 < y1 <= sh
        assert abs(x0 - (sw - x1)) <= 1 and abs(y0 - (sh - y1)) <= 1, "crop is not centred"
        if cw == sw:
            assert ch == max(1, round(sw * h / w))
        else:
            assert ch == sh and cw == max(1, round(sh * w / h))
        # Output is the box itself, or (never upscaling) the crop at full size.
        assert (g.width, g.height) in ((w, h), (cw, ch))


@pytest.mark.parametrize(("sw", "sh"), SOURCES)
def test_nothing_ever_upscales(sw: int, sh: int) -> None:
    """Over every allowed width/height combination and both fits, the output is never larger."""
    for w in (*V.widths[::4], None):
        for h in (*V.heights[::4], None):
            for fit in ("inside", "cover"):
                g = plan(sw, sh, w, h, fit)
                assert 1 <= g.width <= sw and 1 <= g.height <= sh


def test_cover_with_the_images_own_aspect_is_a_plain_resize() -> None:
    """Cover on a box of the original's aspect crops nothing: same geometry (and key) as inside."""
    g = plan(1800, 1200, 900, 600, "cover")
    assert g.crop is None
    assert g == plan(1800, 1200, 900, 600, "inside") == Geometry(900, 600, None)
    assert g.key == "900x600"
    assert plan(1800, 1200, 2048, 1024, "cover").crop == (0, 150, 1800, 1050)  # 2:1 on 3:2: a real crop
    assert plan(1800, 1200, 3600, 2400, "cover") == Geometry(1800, 1200, None)  # bigger, same aspect


def test_geometry_key_marks_crops() -> None:
    """The key text is WxH, plus -cover only when pixels were cropped."""
    assert Geometry(400, 400, (300, 0, 1500, 1200)).key == "400x400-cover"
    assert Geometry(400, 267, None).key == "400x267"


# --------------------------------------------------------------------------- canonical keys


def key(query: str, src: tuple[int, int] = (1800, 1200), accept: str = "image/webp,*/*") -> str:
    """The stored variant name for `query` on an opaque src-sized original, as the service derives it."""
    r = q(query)
    fmt = r.fmt or pick_format(accept, V.formats, has_alpha=False)
    quality = r.q if r.q is not None else default_quality(ENC, fmt)
    return variant_name(plan(src[0], src[1], r.w, r.h, r.fit), fmt, quality)


def test_parameter_order_does_not_change_the_key() -> None:
    """w=800&fmt=webp&q=75 and any permutation name one variant."""
    assert key("w=800&fmt=webp&q=75") == key("q=75&w=800&fmt=webp") == key("fmt=webp&q=75&w=800")


def test_aliases_do_not_change_the_key() -> None:
    """width/format=jpg/fit=crop spell the same variants as w/fmt=jpeg/fit=cover."""
    assert key("width=800&format=jpg") == key("w=800&fmt=jpeg") == "800x533-q80.jpg"
    assert key("w=320&h=320&fit=crop&quality=60") == key("w=320&h=320&fit=cover&q=60") == "320x320-cover-q60.webp"


def test_widths_beyond_the_original_share_the_originals_key() -> None:
    """On an 1800-wide original, w=2048, w=1920 and no size at all all give the 1800x1200 pixels."""
    expected = "1800x1200-q80.webp"
    assert key("w=2048") == key("w=1920") == key("") == key("h=1200") == key("w=1920&h=2048") == expected


def test_default_format_and_quality_do_not_change_the_key() -> None:
    """fmt absent, fmt=auto and the explicit negotiated format share a key; so do q absent and the default q."""
    assert key("w=800") == key("w=800&fmt=auto") == key("w=800&fmt=webp") == key(f"w=800&q={ENC.webp_quality}")


def test_dpr_and_the_multiplied_width_share_a_key() -> None:
    """w=400&dpr=2 is the same output as w=800."""
    assert key("w=400&dpr=2") == key("w=800")


def test_cover_with_own_aspect_shares_the_resize_key() -> None:
    """A crop that cuts nothing is the plain resize: one render, one object."""
    assert key("w=960&h=640&fit=cover") == key("w=960") == key("h=640")


def test_different_outputs_get_different_keys() -> None:
    """Keys only collapse for identical output: other sizes, fits, formats or qualities differ."""
    keys = {
        key("w=800"),
        key("w=640"),
        key("w=400&h=400"),
        key("w=400&h=400&fit=cover"),
        key("w=800&fmt=jpeg"),
        key("w=800&fmt=avif"),
        key("w=800&q=60"),
    }
    assert len(keys) == 7


def test_png_keys_have_no_quality() -> None:
    """PNG is lossless: q cannot change its bytes, so its key carries no q."""
    g = plan(1800, 1200, 800, None, "inside")
    assert variant_name(g, "png", 40) == variant_name(g, "png", 90) == "800x533.png"
    assert "-q" not in key("w=800&fmt=png&q=60")
    assert key("w=800&fmt=png&q=60") == key("w=800&fmt=png")
    assert variant_name(g, "jpeg", 40) != variant_name(g, "jpeg", 90)


def test_q_auto_is_parsed_as_auto_in_any_case_and_with_presets() -> None:
    from proxy.variants import AUTO

    assert q("w=400&q=auto").q == AUTO
    assert q("w=400&quality=AUTO").q == AUTO
    assert q("p=small&q=auto").q == AUTO
    assert "whole number" in bad("w=400&q=automatic")
