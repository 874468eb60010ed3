"""proxy.imaging.jpegtables: the quality scaling is libjpeg's, and the flatter luma table needs fewer
bytes than Annex K's for the same SSIM on photos that took no part in choosing it (scikit-image's)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from proxy.imaging.jpegtables import ANNEX_K_CHROMA, ANNEX_K_LUMA, _scaled, ssim_tables
from proxy.imaging.quality import luma, ssim
from support.images import encoded, opened
from support.photos import photo


def _encode(im: Image.Image, **options: object) -> bytes:
    """As the service writes JPEG (optimized, progressive), with the tables or quality under test."""
    return encoded(im, "JPEG", optimize=True, progressive=True, **options)


@pytest.mark.parametrize("quality", [1, 10, 25, 49, 50, 51, 80, 95, 100])
def test_scaling_is_what_libjpeg_does_with_quality(quality: int) -> None:
    made = opened(_encode(Image.new("RGB", (16, 16)), quality=quality)).quantization
    assert _scaled(np.array(ANNEX_K_LUMA, dtype=float), quality) == tuple(made[0])
    assert _scaled(np.array(ANNEX_K_CHROMA, dtype=float), quality) == tuple(made[1])


def test_chroma_is_annex_k_and_every_entry_is_baseline() -> None:
    for quality in (1, 50, 80, 100):
        luma_table, chroma_table = ssim_tables(quality)
        assert chroma_table == _scaled(np.array(ANNEX_K_CHROMA, dtype=float), quality)
        assert len(luma_table) == 64 and all(1 <= x <= 255 for x in luma_table)


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_flatter_table_needs_fewer_bytes_for_the_same_ssim(name: str) -> None:
    im = photo(name).resize((400, 300), Image.Resampling.LANCZOS)
    reference = luma(im)

    def scored(body: bytes) -> tuple[int, float]:
        return len(body), ssim(reference, luma(opened(body)))

    standard_bytes, standard_ssim = scored(_encode(im, quality=80))
    # The smallest ssim-table encode that looks at least as good: fewer bytes than Annex K's q80.
    ours = [scored(_encode(im, qtables=ssim_tables(q))) for q in range(60, 96)]
    best = min(size for size, score in ours if score >= standard_ssim)
    assert best < standard_bytes * 0.98
