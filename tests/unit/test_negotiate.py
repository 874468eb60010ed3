"""proxy.negotiate: output format from the Accept header (AVIF > WebP > PNG-for-alpha > JPEG)."""

from __future__ import annotations

import itertools

import pytest

from proxy.config import VariantSettings
from proxy.negotiate import accepted_types, hint_value, pick_format, snap_dpr, snap_width

WIDTHS = VariantSettings().widths

ALL = ("avif", "webp", "jpeg", "png")
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX_OLD = "image/webp,*/*"
SAFARI_OLD = "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (CHROME, "avif"),
        ("image/webp,image/avif", "avif"),  # preference is ours, not the header's order
        ("image/avif;q=0.1,image/webp;q=1", "avif"),  # any non-zero q counts as accepted
        (FIREFOX_OLD, "webp"),
        ("image/webp", "webp"),
        (SAFARI_OLD, "jpeg"),
        ("image/jpeg", "jpeg"),
        ("", "jpeg"),
    ],
)
def test_avif_then_webp_then_jpeg(accept: str, expected: str) -> None:
    """AVIF beats WebP beats JPEG for opaque images, whatever the header's order or q weights."""
    assert pick_format(accept, ALL, has_alpha=False) == expected


def test_png_for_transparent_images_without_a_modern_format() -> None:
    """A transparent image goes to PNG (JPEG would lose the alpha) unless WebP or AVIF is accepted."""
    assert pick_format(SAFARI_OLD, ALL, has_alpha=True) == "png"
    assert pick_format("*/*", ALL, has_alpha=True) == "png"
    assert pick_format(FIREFOX_OLD, ALL, has_alpha=True) == "webp"
    assert pick_format(CHROME, ALL, has_alpha=True) == "avif"


@pytest.mark.parametrize(
    ("size", "alpha", "expected"),
    [
        ((193, 31237), False, "avif"),  # AVIF holds 32768 a side: WebP (16383) would not be needed anyway
        ((193, 40000), False, "jpeg"),  # past AVIF and WebP: the next format that holds it
        ((193, 40000), True, "png"),  # ... and keeps the alpha
        ((16383, 100), False, "avif"),
    ],
)
def test_formats_that_cannot_hold_the_output_are_skipped(size: tuple[int, int], alpha: bool, expected: str) -> None:
    assert pick_format(CHROME, ALL, has_alpha=alpha, size=size) == expected


def test_webp_falls_back_for_an_output_taller_than_it_holds() -> None:
    assert pick_format(FIREFOX_OLD, ALL, has_alpha=False, size=(193, 16383)) == "webp"
    assert pick_format(FIREFOX_OLD, ALL, has_alpha=False, size=(193, 16384)) == "jpeg"
    assert pick_format(FIREFOX_OLD, (*ALL, "gif"), has_alpha=False, animated=True, size=(100, 20000)) == "gif"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/avif;q=0,image/webp", "webp"),
        ("image/avif;q=0.0,image/webp;q=0.000,*/*", "jpeg"),
        ("image/avif; q=0, image/webp; q=0.00", "jpeg"),
        ("image/avif;q = 0,image/webp", "webp"),
        ("image/avif;level=1;q=0,image/webp", "webp"),  # q after another parameter
        (CHROME.replace("image/avif", "image/avif;q=0"), "webp"),
    ],
)
def test_q_zero_refuses_a_type(accept: str, expected: str) -> None:
    """q=0 (in any spelling) means 'not acceptable', so that type is never chosen."""
    assert pick_format(accept, ALL, has_alpha=False) == expected


@pytest.mark.parametrize("accept", ["*/*", "image/*", "image/*,*/*;q=0.8", "*/*;q=1", "image/*;q=1.0"])
def test_wildcards_do_not_imply_modern_formats(accept: str) -> None:
    """Old clients send */* and cannot decode AVIF or WebP: a wildcard gives JPEG (PNG with alpha)."""
    assert pick_format(accept, ALL, has_alpha=False) == "jpeg"
    assert pick_format(accept, ALL, has_alpha=True) == "png"


@pytest.mark.parametrize("accept", [CHROME, FIREFOX_OLD, SAFARI_OLD, "*/*", "image/png", "image/avif", ""])
def test_formats_outside_the_allowed_tuple_are_never_picked(accept: str) -> None:
    """For every allowed subset (JPEG is always configured) and both alpha cases, the pick is allowed."""
    optional = ("avif", "webp", "png")
    for n in range(len(optional) + 1):
        for subset in itertools.combinations(optional, n):
            allowed = ("jpeg", *subset)
            for alpha in (False, True):
                assert pick_format(accept, allowed, alpha) in allowed, (accept, allowed, alpha)


def test_disabled_avif_falls_back_to_webp() -> None:
    """An operator without AVIF still serves WebP to browsers that take both."""
    assert pick_format(CHROME, ("webp", "jpeg", "png"), has_alpha=False) == "webp"
    assert pick_format(CHROME, ("jpeg", "png"), has_alpha=False) == "jpeg"
    assert pick_format(CHROME, ("jpeg",), has_alpha=True) == "jpeg"


def test_transparency_never_falls_back_to_a_palette_gif() -> None:
    """Without PNG, a transparent still is composited into JPEG rather than cut to GIF's on/off alpha."""
    assert pick_format(SAFARI_OLD, ("jpeg", "gif"), has_alpha=True) == "jpeg"
    assert pick_format(SAFARI_OLD, ("jpeg", "png", "gif"), has_alpha=True) == "png"


@pytest.mark.parametrize(
    ("accept", "allowed", "has_alpha", "expected"),
    [
        (CHROME, ALL + ("gif",), False, "webp"),  # AVIF would be a still: WebP keeps the frames
        (CHROME, ALL + ("gif",), True, "webp"),
        ("image/avif", ALL + ("gif",), False, "gif"),
        (SAFARI_OLD, ALL + ("gif",), True, "gif"),  # the frames matter more than partial alpha
        (SAFARI_OLD, ALL, False, "jpeg"),  # nothing animates: a still, as for any image
        (SAFARI_OLD, ALL, True, "png"),
        (CHROME, ("avif", "jpeg", "gif"), False, "gif"),
        (CHROME, ("avif", "jpeg"), False, "avif"),
    ],
)
def test_animations_prefer_formats_that_keep_their_frames(
    accept: str, allowed: tuple[str, ...], has_alpha: bool, expected: str
) -> None:
    """WebP when accepted, then GIF; a still (AVIF, PNG, JPEG) only when no allowed format animates."""
    assert pick_format(accept, allowed, has_alpha, animated=True) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "IMAGE/AVIF",
        "Image/Avif,Image/WebP",
        "  image/avif  ,image/webp",
        "image/avif\t,*/*",
        "image/avif ; Q=0.5",
    ],
)
def test_case_and_whitespace_do_not_matter(accept: str) -> None:
    """Media types compare case-insensitively and surrounding whitespace is ignored."""
    assert pick_format(accept, ALL, has_alpha=False) == "avif"


def test_case_insensitive_q_zero() -> None:
    """Q=0 refuses a type just like q=0."""
    assert pick_format("IMAGE/AVIF;Q=0, IMAGE/WEBP", ALL, has_alpha=False) == "webp"


def test_accepted_types_normalises_and_drops_parameters() -> None:
    """accepted_types lower-cases, strips parameters and whitespace, and leaves out refused and empty entries."""
    assert accepted_types(" Image/AVIF;q=0.9 , image/webp;q=0 ,, */*;q=0.1") == {"image/avif", "*/*"}


def test_q_zero_with_a_bare_dot_refuses_a_type() -> None:
    """'q=0.' is a valid spelling of q=0 and must refuse the type."""
    assert pick_format("image/avif;q=0.,image/webp", ALL, has_alpha=False) == "webp"


def test_hints_snap_to_the_allow_list() -> None:
    dprs = (1.0, 1.5, 2.0, 3.0)
    assert [snap_dpr(h, dprs) for h in (0.5, 1, 1.3, 1.5, 2.625, 3, 4)] == [1, 1, 1, 1.5, 2, 3, 3]
    assert [snap_width(h, WIDTHS) for h in (1, 64, 65, 500, 2048, 5000)] == [64, 64, 96, 560, 2048, 2048]
    assert hint_value({"Sec-CH-DPR": "2", "DPR": "3"}, ("Sec-CH-DPR", "DPR")) == 2  # the Sec- name wins
    assert hint_value({"Sec-CH-DPR": "abc", "DPR": "3"}, ("Sec-CH-DPR", "DPR")) == 3
    for junk in ("", "0", "-2", "inf", "nan", "2x"):
        assert hint_value({"DPR": junk}, ("DPR",)) is None, junk
