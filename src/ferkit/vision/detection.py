"""What every face detector answers: `Detection`s (box, score, eyes), and the helpers they
share (box overlap, shrinking big photos and mapping boxes back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Point = tuple[float, float]

DEFAULT_MIN_FACE = 80  # px in the original image: dlib's HOG window, Haar's and YuNet's default


@dataclass(frozen=True)
class Detection:
    """One face: box `(x, y, w, h)` in pixels, a detector-specific score (higher is surer),
    eye centres `(right_eye, left_eye)` (the person's right eye is on the image's left)
    when the detector finds them, and `frame`, a square `(x, y, side, side)` that crops the
    face as FER-2013 does, when the detector places one from its landmarks (else the crop
    is the box grown by the detector's `margin`)."""

    box: tuple[int, int, int, int]
    score: float
    eyes: tuple[Point, Point] | None = None
    frame: tuple[int, int, int, int] | None = None


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one `(x0, y0, x1, y1)` box with each of `others` [M, 4]: the one overlap
    formula, for the detectors' merges and the tracker alike."""
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two `(x, y, w, h)` boxes."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    corners = np.array([[ax, ay, ax + aw, ay + ah], [bx, by, bx + bw, by + bh]], float)
    return float(box_iou(corners[0], corners[1:])[0])


class Detector(Protocol):
    name: str
    # Share of the box side to add around it before cropping, so the crop frames the face as
    # FER-2013 does; each detector's boxes differ (benchmarks/detectors.py measures it).
    margin: float
    # Whether its eyes are precise enough to level the face by default (benchmarks/heads.py
    # measures the eye line); `EmotionRecognizer(align=...)` and `--align` override it.
    align: bool

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a uint8 BGR (H, W, 3) or grayscale (H, W) image."""
        ...


def gray(image: np.ndarray) -> np.ndarray:
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink big photos before detection (detectors scan every scale, so a 12 MP photo costs
    ~40x a 640x480 one); returns the image and the factor that maps its pixels back."""
    import cv2

    h, w = image.shape[:2]
    scale = max(h, w) / max_side
    if scale <= 1:
        return image, 1.0
    size = (round(w / scale), round(h / scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def scaled(d: Detection, s: float) -> Detection:
    if s == 1:
        return d
    x, y, w, h = d.box
    eyes = None if d.eyes is None else tuple((px * s, py * s) for px, py in d.eyes)
    frame = None if d.frame is None else tuple(round(v * s) for v in d.frame)
    return Detection((round(x * s), round(y * s), round(w * s), round(h * s)), d.score, eyes, frame)
