"""proxy.keys: the storage key layout, and the canonical variant names."""

from __future__ import annotations

import pytest

from proxy import keys
from proxy.imaging.geometry import Geometry, plan

ID = "dd52fea3fc9b1cffa6bca7c546bd0210"


def test_layout() -> None:
    """The layout the README documents, the same on disk and in S3."""
    assert keys.original(ID) == f"originals/{ID}"
    assert keys.metadata(ID) == f"originals/{ID}.json"
    assert keys.working_copy(ID, (480, 320)) == f"originals/{ID}.work-480x320"
    assert keys.variant(ID, "400x267-q80.webp") == f"variants/{ID}/400x267-q80.webp"
    assert keys.variant(ID, "x").startswith(keys.VARIANTS)
    assert keys.reference(ID, "shop", "a" * 26) == f"refs/{ID}/shop/{'a' * 26}.json"
    assert keys.deletion(ID, 1700000000123, "ab12") == f"deleting/{ID}/1700000000123-ab12.json"
    assert keys.idempotency("shop", "a" * 26) == f"idempotency/shop/{'a' * 26}.json"


def test_reference_prefixes_nest_and_take_no_other_image_or_owner() -> None:
    """Listing refs/<id>/ counts every holder of one image; refs/<id>/<owner>/ one holder's."""
    ref = keys.reference(ID, "shop", "r" * 26)
    assert ref.startswith(keys.held_by(ID, "shop")) and ref.startswith(keys.references(ID))
    assert ref.startswith(keys.REFS)
    assert not keys.reference(ID, "shop2", "r" * 26).startswith(keys.held_by(ID, "shop"))
    assert not keys.reference(ID + "0", "shop", "r" * 26).startswith(keys.references(ID))
    assert not keys.deletion(ID + "0", 1, "n").startswith(keys.deletions(ID))


def test_reference_metadata_and_marker_keys_parse_back() -> None:
    assert keys.parse_reference(keys.reference(ID, "shop", "r" * 26)) == (ID, "shop", "r" * 26)
    for other in (keys.metadata(ID), keys.idempotency("shop", "r" * 26), f"refs/{ID}/shop.json"):
        with pytest.raises(ValueError):
            keys.parse_reference(other)
    assert keys.parse_metadata(keys.metadata(ID)) == ID
    for other in (keys.original(ID), keys.working_copy(ID, (480, 320)), keys.reference(ID, "a", "b")):
        assert keys.parse_metadata(other) is None
    assert keys.deletion_started(keys.deletion(ID, 1700000000123, "ab12")) == 1700000000.123


def test_an_images_variant_prefix_takes_no_other_image() -> None:
    """Deleting "abc"'s variants by prefix must leave "abcd"'s alone."""
    assert keys.variant(ID, "a.webp").startswith(keys.variant_prefix(ID))
    assert not keys.variant(ID + "0", "a.webp").startswith(keys.variant_prefix(ID))


def test_variant_keys_parse_back() -> None:
    assert keys.parse_variant(keys.variant(ID, "400x267-cover-q80.webp")) == (ID, "400x267-cover-q80.webp")
    with pytest.raises(ValueError):
        keys.parse_variant(keys.original(ID))


def test_variant_names() -> None:
    """Size, crop, animation, quality (only where the format takes one) and the format's extension."""
    g = plan(1800, 1200, 400, None, "inside")
    assert keys.variant_name(g, "webp", 80) == "400x267-q80.webp"
    assert keys.variant_name(g, "jpeg", 75) == "400x267-q75.jpg"
    assert keys.variant_name(g, "avif", 60) == "400x267-q60.avif"
    assert keys.variant_name(g, "png", 80) == keys.variant_name(g, "png", 40) == "400x267.png"
    assert keys.variant_name(g, "gif", 80, animated=True) == "400x267-anim.gif"
    assert keys.variant_name(g, "webp", 80, animated=True) == "400x267-anim-q80.webp"
    assert keys.variant_name(Geometry(160, 160, (300, 0, 1500, 1200)), "webp", 80) == "160x160-cover-q80.webp"


def test_a_q_auto_variant_names_its_target_instead_of_a_quality() -> None:
    """q=auto's quality is found while rendering: the name holds the target, so a new target renders anew."""
    g = Geometry(400, 267, None)
    assert keys.variant_name(g, "webp", 80, target=985) == "400x267-qauto985.webp"
    assert keys.variant_name(g, "avif", 60, target=990) == "400x267-qauto990.avif"
    assert keys.variant_name(g, "webp", 80, target=985) != keys.variant_name(g, "webp", 80)
    assert keys.variant_name(g, "png", 100, target=985) == keys.variant_name(g, "png", 100) == "400x267.png"
