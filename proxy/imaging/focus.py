"""Where `g=auto` crops: the focal point of an image, found once, at upload.

Faces first: OpenCV's Haar cascade for frontal faces (`haarcascade_frontalface_alt2.xml`,
shipped inside the opencv-python-headless wheel, so no model is fetched at run time) on a
copy of about `focus.detect_size`² pixels, histogram-equalised. Sized by area, not by the long
side, so the cost is the same for every aspect and a panorama's faces do not shrink away. The focal point is the
centre of the faces, weighted by their area (faces far smaller than the largest are
passers-by and are ignored), and the box around them is kept too. In a colour image a detection
must be mostly skin-coloured, which drops the cascade's usual false faces in rock and bark.

No face: a saliency map in the spirit of libvips' "attention" crop: edges (Sobel
magnitude), colour saturation and skin tones, each scaled to its own 99th percentile, summed,
and blurred at a tenth of the image, so the focal point lands on the busiest, most colourful
area rather than on one sharp pixel: the centre of mass of the map's top fifth.

Deterministic for the same bytes: the same decoder, fixed parameters, OpenCV on one thread
(its parallel loops are then ordered), and results rounded to 4 decimals, so the same URL
always crops the same pixels. Limits: profile faces, faces under `focus.min_face` px on the
detection copy (about 5% of a 384 x 384 copy's side), heavily rotated faces, and faces in
lighting that puts skin outside the chrominance range are not found (saliency decides then);
a busy background can outweigh a plain subject.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import cv2.data  # the folder of the Haar cascades shipped in the wheel
import numpy as np
from PIL import Image

from proxy.config import FocusSettings
from proxy.imaging.decode import guarded
from proxy.imaging.render import resizable

cv2.setNumThreads(1)  # ordered, repeatable detections; the work pool already runs one job per core
CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml"
_SCALE_STEP = 1.2  # the cascade's pyramid step: 20% per level (1.1 finds the same faces here, 3x slower)
_SKIN = 0.5  # share of a colour face box in skin tones; below it a detection is taken for a pattern
_PASSER_BY = 0.2  # faces with less than this share of the largest face's area are ignored
_BLUR = 0.1  # saliency blur, as a share of the long side
_MAP_SIDE = 128  # the saliency map is blurred at this long side: about the same point as full size, 10x cheaper
_TOP = 0.8  # the focal point is the centre of mass of the map at or above this share of its peak
_DIGITS = 4
_SKIN_LOW, _SKIN_HIGH = (0, 133, 77), (255, 173, 127)  # YCrCb: a common chrominance range of skin tones
_GREY = 8  # mean HSV saturation under which an image counts as greyscale (no skin to check)
_cascades = threading.local()  # a classifier per thread: detectMultiScale is not documented as thread-safe

FractionBox = tuple[float, float, float, float]  # x, y, width, height as fractions of the image


@dataclass(frozen=True)
class Focus:
    """The focal point (fractions of the upright image) and how it was found."""

    x: float
    y: float
    by: str  # "faces" or "saliency"
    box: FractionBox | None = None  # around the faces found
    faces: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "y": self.y,
            "by": self.by,
            "box": list(self.box) if self.box else None,
            "faces": self.faces,
        }

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Focus:
        box = fields.get("box")
        return cls(
            fields["x"],
            fields["y"],
            fields["by"],
            tuple(box) if box else None,
            fields.get("faces", 0),
        )


def find_focus(data: bytes, settings: FocusSettings) -> Focus:
    """The focal point of the image in `data` (its first frame); a Pillow failure is an ImageRejected."""
    rgb = _detection_copy(data, settings.detect_size**2)
    height, width = rgb.shape[:2]
    faces = _faces(rgb, settings)
    if faces:
        return _from_faces(faces, width, height)
    y, x = _salient_point(rgb)
    return Focus(_round(x / width), _round(y / height), "saliency")


def _round(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), _DIGITS)


def detection_scale(size: tuple[int, int], pixels: int) -> float:
    """The scale that brings an image of `size` down to about `pixels` pixels (never up)."""
    # float(): typeshed types float ** float as Any (a negative base gives a complex); this base is positive
    return min(1.0, float((pixels / (size[0] * size[1])) ** 0.5))


def _detection_copy(data: bytes, pixels: int) -> np.ndarray:
    """RGB pixels, about `pixels` of them at most (transparency over mid-grey: neither face nor edge)."""
    with guarded():
        im: Image.Image = Image.open(io.BytesIO(data))
        scale = detection_scale(im.size, pixels)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        if im.format == "JPEG":
            im.draft("RGB", (size[0] * 2, size[1] * 2))
        im = resizable(im)
        if im.mode in ("RGBA", "LA"):
            flat = Image.new("RGB", im.size, (128, 128, 128))
            flat.paste(im.convert("RGBA"), mask=im.convert("RGBA").getchannel("A"))
            im = flat
        im = im.convert("RGB").resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        return np.asarray(im)


def _classifier() -> Any:
    found = getattr(_cascades, "face", None)
    if found is None:
        found = _cascades.face = cv2.CascadeClassifier(CASCADE)
        if found.empty():
            raise RuntimeError(f"the face cascade {CASCADE} did not load")
    return found


def _skin(rgb: np.ndarray) -> np.ndarray:
    """1.0 where a pixel's chrominance is in the skin range, else 0.0."""
    return cv2.inRange(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb), _SKIN_LOW, _SKIN_HIGH).astype(np.float32) / 255


def _faces(rgb: np.ndarray, settings: FocusSettings) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in pixels of `rgb`, in a fixed order; passers-by dropped, and in a
    colour image boxes that are mostly not skin-coloured (Haar cascades see faces in bark and rock)."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    found = _classifier().detectMultiScale(
        gray,
        scaleFactor=_SCALE_STEP,
        minNeighbors=settings.face_neighbors,
        minSize=(settings.min_face, settings.min_face),
    )
    boxes = sorted(tuple(int(v) for v in box) for box in found)
    if boxes and cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[:, :, 1].mean() >= _GREY:
        skin = _skin(rgb)
        boxes = [(x, y, w, h) for x, y, w, h in boxes if skin[y : y + h, x : x + w].mean() >= _SKIN]
    if not boxes:
        return []
    largest = max(w * h for _, _, w, h in boxes)
    return [b for b in boxes if b[2] * b[3] >= _PASSER_BY * largest]  # type: ignore[misc]


def _from_faces(faces: list[tuple[int, int, int, int]], width: int, height: int) -> Focus:
    area = sum(w * h for _, _, w, h in faces)
    cx = sum((x + w / 2) * w * h for x, _, w, h in faces) / area
    cy = sum((y + h / 2) * w * h for _, y, w, h in faces) / area
    x0, y0 = min(x for x, _, _, _ in faces), min(y for _, y, _, _ in faces)
    x1, y1 = max(x + w for x, _, w, _ in faces), max(y + h for _, y, _, h in faces)
    box = (_round(x0 / width), _round(y0 / height), _round((x1 - x0) / width), _round((y1 - y0) / height))
    return Focus(_round(cx / width), _round(cy / height), "faces", box, len(faces))


def _scaled(channel: np.ndarray) -> np.ndarray:
    """A channel scaled so its 99th percentile is 1 (a few extreme pixels cannot dominate), capped at 1."""
    top = float(np.percentile(channel, 99))
    return np.clip(channel / top, 0, 1) if top > 0 else np.zeros_like(channel)


def _salient_point(rgb: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of the most salient area: edges + saturation + skin, blurred."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    saturation = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[:, :, 1].astype(np.float32)
    saliency = _scaled(edges) + _scaled(saturation) + _skin(rgb)
    height, width = saliency.shape
    scale = min(1.0, _MAP_SIDE / max(height, width))
    small = cv2.resize(
        saliency, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    blurred = cv2.GaussianBlur(small, (0, 0), max(1.0, _BLUR * max(small.shape)), borderType=cv2.BORDER_CONSTANT)
    peak = float(blurred.max())
    if peak <= 0:  # a flat image: nothing stands out
        return height / 2, width / 2
    weights = np.where(blurred >= _TOP * peak, blurred, 0).astype(np.float64)
    rows, cols = np.indices(weights.shape)
    total = weights.sum()
    sy, sx = height / small.shape[0], width / small.shape[1]
    return (float((rows * weights).sum() / total) + 0.5) * sy, (float((cols * weights).sum() / total) + 0.5) * sx
