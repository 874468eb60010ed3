"""How close an encoded variant is to the pixels it was made from: SSIM on luma.

Why SSIM, and why our own: `q=auto` needs a perceptual distance that is cheap
enough to compute several times per render (a 400 px variant: about 1 ms here),
deterministic, and available without a new native dependency. SSIM (Wang et al.
2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) on the luma plane is the
measure the issue's comparison with IPX uses, is what libwebp, libaom and
mozjpeg are tuned and judged by, and needs only a Gaussian blur, which OpenCV
(already a dependency, for g=auto) does in a few hundred microseconds. The
alternatives were weighed: butteraugli has no maintained wheel, and the
ssimulacra2 wheel on PyPI is a pure-Python port (seconds per image, young,
one maintainer). tests/unit/imaging/test_quality.py checks this implementation
against scikit-image's `structural_similarity` with the same parameters.

Luma is computed as the encoders see it (BT.601, the Y of JPEG's and WebP's
YCbCr), so chroma loss is not counted: colour is held by the colour tests
(CIEDE2000), luma by this.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

_SIGMA = 1.5
_WINDOW = (11, 11)
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(im: Image.Image) -> np.ndarray:
    """The Y plane of `im` (any mode; transparency is ignored) as float32, 0..255."""
    if im.mode in ("L", "LA"):
        return np.asarray(im.getchannel(0), dtype=np.float32)
    rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
    return rgb @ _BT601


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, _WINDOW, _SIGMA, borderType=cv2.BORDER_REFLECT)


def ssim(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean SSIM of two luma planes of the same shape (1.0: identical)."""
    if reference.shape != other.shape:
        raise ValueError(f"cannot compare planes of shapes {reference.shape} and {other.shape}")
    x, y = reference.astype(np.float32, copy=False), other.astype(np.float32, copy=False)
    mx, my = _blur(x), _blur(y)
    mxx, myy, mxy = mx * mx, my * my, mx * my
    vx, vy, cov = _blur(x * x) - mxx, _blur(y * y) - myy, _blur(x * y) - mxy
    score = ((2 * mxy + _C1) * (2 * cov + _C2)) / ((mxx + myy + _C1) * (vx + vy + _C2))
    # The border (half a window) is left out, as skimage and the paper's reference code do.
    pad = _WINDOW[0] // 2
    inner = score[pad:-pad, pad:-pad] if min(score.shape) > 2 * pad else score
    return float(inner.mean(dtype=np.float64))
