"""ImageService.quality_for: which quality and q=auto target a request renders with, from q= and [encoders]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.config import parse_settings
from proxy.service import ImageService
from proxy.variants import AUTO


def service(**encoders: Any) -> ImageService:
    settings = parse_settings({"encoders": encoders}, Path("/srv"))
    return ImageService(settings, store=None, pool=None)  # type: ignore[arg-type]  # quality_for uses neither


def test_q_auto_gets_the_configured_target_and_a_listed_q_none() -> None:
    s = service(auto_target=970)
    assert s.quality_for("webp", AUTO) == (80, 970)
    assert s.quality_for("webp", 60) == (60, None)
    assert s.quality_for("webp", None) == (80, None)


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "avif"])
def test_auto_quality_on_makes_q_auto_the_default_for_formats_that_take_a_quality(fmt: str) -> None:
    s = service(auto_quality=True)
    quality, target = s.quality_for(fmt, None)
    assert target == 960
    assert s.quality_for(fmt, 75) == (75, None)  # an explicit q= still wins


def test_lossless_formats_never_get_a_target() -> None:
    assert service(auto_quality=True).quality_for("png", AUTO)[1] is None
    assert service().quality_for("gif", AUTO)[1] is None
