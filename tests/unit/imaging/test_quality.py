"""proxy.imaging.quality (SSIM on luma) and q=auto in proxy.imaging.render: the lowest quality that keeps
the target, found in a bounded number of encodes, the same bytes for the same input.

SSIM is checked against scikit-image's implementation (the test extra), with the parameters of Wang et
al. 2004 that both use. The photo is scikit-image's `astronaut` (see support.photos for its licence).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

import proxy.imaging.render as render_module
from proxy.config import EncoderSettings
from proxy.imaging.geometry import Geometry
from proxy.imaging.quality import luma, ssim
from proxy.imaging.render import AUTO_MAX_ENCODES, AUTO_QUALITIES, RenderJob, render
from support.images import encoded, opened
from support.photos import photo

WHITE = (255, 255, 255)
TARGET = EncoderSettings().auto_target


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return photo("astronaut").resize((320, 320), Image.Resampling.LANCZOS)


def test_ssim_is_scikit_images_structural_similarity(astronaut: Image.Image) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    for other in (astronaut.filter(ImageFilter.GaussianBlur(1.2)), opened(encoded(astronaut, "JPEG", quality=30))):
        a, b = luma(astronaut), luma(other)
        expected = metrics.structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert ssim(a, b) == pytest.approx(expected, abs=1e-5)


def test_ssim_of_the_same_plane_is_one_and_falls_with_damage(astronaut: Image.Image) -> None:
    a = luma(astronaut)
    assert ssim(a, a) == pytest.approx(1.0)
    light, heavy = (luma(astronaut.filter(ImageFilter.GaussianBlur(r))) for r in (0.8, 3))
    assert 1.0 > ssim(a, light) > ssim(a, heavy)
    with pytest.raises(ValueError):
        ssim(a, a[:-1])


def test_luma_is_bt601_y_and_gray_is_its_own() -> None:
    rgb = Image.new("RGB", (4, 4), (200, 100, 50))
    assert luma(rgb)[0, 0] == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    gray = Image.new("L", (4, 4), 77)
    assert np.all(luma(gray) == 77)
    assert luma(Image.new("RGBA", (4, 4), (200, 100, 50, 0)))[0, 0] == pytest.approx(luma(rgb)[0, 0])


def auto_job(fmt: str, size: tuple[int, int], quality: int = 80, target: int = TARGET) -> RenderJob:
    return RenderJob(Geometry(*size, None), fmt, quality, WHITE, EncoderSettings(), target=target)


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "avif"])
def test_auto_keeps_the_target_at_the_lowest_quality_that_does(fmt: str, astronaut: Image.Image) -> None:
    source = encoded(astronaut, "PNG")
    job = auto_job(fmt, astronaut.size)
    body = render(source, job)
    before = luma(astronaut)
    assert ssim(before, luma(opened(body))) * 1000 >= TARGET
    chosen = next(
        q for q in AUTO_QUALITIES if render(source, RenderJob(job.geometry, fmt, q, WHITE, EncoderSettings())) == body
    )
    assert chosen > AUTO_QUALITIES[0]
    one_lower = render(source, RenderJob(job.geometry, fmt, chosen - 1, WHITE, EncoderSettings()))
    assert ssim(before, luma(opened(one_lower))) * 1000 < TARGET, "one quality lower would have kept it"


def test_auto_is_deterministic_and_a_higher_target_costs_bytes(astronaut: Image.Image) -> None:
    source = encoded(astronaut, "PNG")
    first, again = (render(source, auto_job("webp", astronaut.size)) for _ in range(2))
    assert first == again
    assert len(render(source, auto_job("webp", astronaut.size, target=995))) > len(first)
    assert len(render(source, auto_job("webp", astronaut.size, target=950))) < len(first)


@pytest.mark.parametrize("start", [20, 45, 60, 80, 95])
@pytest.mark.parametrize("target", [900, 960, 999])
def test_auto_needs_at_most_max_encodes_from_any_first_probe(
    start: int, target: int, astronaut: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    encode = render_module._encode

    def counted(im: Image.Image, job: RenderJob, animation: dict[str, object] | None = None) -> bytes:
        calls.append(job.quality)
        return encode(im, job, animation)

    monkeypatch.setattr(render_module, "_encode", counted)
    small = astronaut.resize((96, 96))
    render(encoded(small, "PNG"), auto_job("webp", small.size, start, target))
    assert 1 <= len(calls) <= AUTO_MAX_ENCODES
    assert len(set(calls)) == len(calls), "no quality is encoded twice"


def test_a_format_without_quality_ignores_the_target(astronaut: Image.Image) -> None:
    source = encoded(astronaut, "PNG")
    plain = RenderJob(Geometry(*astronaut.size, None), "png", 100, WHITE, EncoderSettings())
    assert render(source, auto_job("png", astronaut.size)) == render(source, plain)
    assert Image.open(io.BytesIO(render(source, plain))).format == "PNG"
