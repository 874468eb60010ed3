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
