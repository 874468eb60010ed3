"""proxy.http.urls.picture_formats: the <picture> sources and fallback per image and config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.config import parse_settings
from proxy.http.urls import picture_formats
from proxy.service import ImageMeta


def meta(frames: int = 1, has_alpha: bool = False) -> ImageMeta:
    return ImageMeta(
        id="0" * 32,
        width=800,
        height=600,
        format="gif" if frames > 1 else "jpeg",
        bytes=1,
        frames=frames,
        has_alpha=has_alpha,
        created=0.0,
    )


def formats_for(image: ImageMeta, **sections: Any) -> tuple[str, ...]:
    return picture_formats(image, parse_settings(sections, Path(".")))


def test_stills_get_both_modern_sources_and_a_fallback_that_keeps_transparency() -> None:
    assert formats_for(meta()) == ("avif", "webp", "jpeg")
    assert formats_for(meta(has_alpha=True)) == ("avif", "webp", "png")
    assert formats_for(meta(has_alpha=True), variants={"formats": ["webp", "jpeg"]}) == ("webp", "jpeg")


def test_a_kept_animation_gets_no_avif_source() -> None:
    """Its AVIF variant would be a still ahead of the animated WebP; the <img> fallback is a still JPEG."""
    assert formats_for(meta(frames=10)) == ("webp", "jpeg")
    assert formats_for(meta(frames=10), variants={"formats": ["avif", "jpeg", "gif"]}) == ("jpeg",)


@pytest.mark.parametrize("render", [{"animation": False}, {"max_animation_frames": 9}])
def test_an_animation_served_as_stills_gets_avif_again(render: dict[str, Any]) -> None:
    """With render.animation off, or more frames than render.max_animation_frames, every variant is a still."""
    assert formats_for(meta(frames=10), render=render) == ("avif", "webp", "jpeg")
