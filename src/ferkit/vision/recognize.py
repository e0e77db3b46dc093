"""`EmotionRecognizer`: find faces in a photo, crop them as the model expects, classify.

    from ferkit import EmotionRecognizer
    rec = EmotionRecognizer()            # shipped model, default (BlazeFace) detector
    faces = rec.predict("group.jpg")     # path, numpy array, PIL image or bytes
    faces[0].box, faces[0].label, faces[0].probs

The model is loaded once; `classify` takes a batch of crops and runs them in one call.
Cropping: the square the detector placed from its landmarks to frame the face as FER-2013
does (BlazeFace's `frame`), or else a square around the detector's box, enlarged by `margin`
of its side (by default the detector's own `margin`, measured so crops frame faces as
FER-2013 does); rotated so the eyes are level when the detector gives eyes and `align` is
on, then grayscale and resized to the model's input size, which the model file states.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ferkit.modelfile.classifier import Classifier
from ferkit.vision.detect import DEFAULT_DETECTOR, make_detector
from ferkit.vision.detection import Detection, Detector
from ferkit.vision.images import ImageInput, load_photo


@dataclass(frozen=True)
class Face:
    """One recognised face. `box` is `[x, y, width, height]` in pixels of the upright image;
    `score` is the detector's (1.0 with no detection); `probs` maps emotion -> probability."""

    box: tuple[int, int, int, int]
    score: float
    label: str
    confidence: float
    probs: dict[str, float]

    def scaled(self, k: int) -> Face:
        """This face with its box in pixels `k` times finer (a photo read `k` times smaller:
        `ferkit.core.decoding.Decoded.scale`)."""
        return self if k == 1 else replace(self, box=tuple(v * k for v in self.box))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = list(self.box)
        return d


def eye_angle(eyes: tuple[tuple[float, float], tuple[float, float]]) -> float:
    """Degrees to rotate the image (counter-clockwise, OpenCV's convention) so the eyes are
    level."""
    (x1, y1), (x2, y2) = sorted(eyes)  # left to right in the image
    return math.degrees(math.atan2(y2 - y1, x2 - x1))


def crop_face(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    size: tuple[int, int],
    margin: float = 0.0,
    angle: float = 0.0,
) -> np.ndarray:
    """A square grayscale crop around `box`, `margin` x side larger, rotated by `angle`
    degrees about the box centre, resized to `size` (H, W). Parts outside the image repeat
    the border rather than turning black, which the model never saw in training."""
    import cv2

    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    side = max(1, round(max(w, h) * (1 + margin)))
    # One affine warp at scale 1 (rotation + translation), then INTER_AREA down to the model
    # size: warping straight to 48 px would alias on big faces.
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[:, 2] += (side / 2 - cx, side / 2 - cy)
    square = cv2.warpAffine(
        gray, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return cv2.resize(square, (size[1], size[0]), interpolation=cv2.INTER_AREA)


# The classifier's idle threads in a pipeline (`Classifier`'s SPINNING): they spin inside a
# call and stop when it returns, so the detector's own threads (OpenCV's, for Haar) get the
# cores back; measured per path in docs/benchmarks.md, "ONNX Runtime settings". The
# classifier alone (evaluate, crops) keeps ONNX Runtime's "on".
PIPELINE_SPINNING = "run"


class EmotionRecognizer:
    """Detector + ONNX classifier. `model`: an ONNX file (default: the shipped model);
    `detector`: a `Detector` or a name for `make_detector` (`blazeface`, `dlib`, `haar`,
    `yunet:PATH`);
    `min_face` (px), `margin` and `align` (level the eyes when the detector finds them):
    None for the detector's own (`align`: on for dlib and yunet, whose eyes are precise,
    +0.5 points on faces tilted up to 25 degrees; off for blazeface, whose are not);
    `threads` and `spinning`: the classifier's session (`open_session`)."""

    def __init__(
        self,
        model: str | Path | None = None,
        detector: Detector | str = DEFAULT_DETECTOR,
        min_face: int | None = None,
        margin: float | None = None,
        align: bool | None = None,
        threads: int = 0,
        spinning: str = PIPELINE_SPINNING,
    ) -> None:
        self.classifier = Classifier(model, threads=threads, spinning=spinning)
        self._detector_spec = detector
        self._detector: Detector | None = None if isinstance(detector, str) else detector
        self.min_face, self.margin, self.align = min_face, margin, align

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    @property
    def detector(self) -> Detector:
        """Created on first use, so `--no-detect` never needs a detector installed."""
        if self._detector is None:
            self._detector = make_detector(str(self._detector_spec), min_face=self.min_face)
        return self._detector

    def classify(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Probabilities [N, 7] for already-cropped faces (any size, gray or BGR)."""
        return self.classifier.classify(crops)

    def _faces(self, probs: np.ndarray, boxes: list, scores: list) -> list[Face]:
        out = []
        for p, box, score in zip(probs, boxes, scores, strict=True):
            top = int(np.argmax(p))
            out.append(
                Face(
                    box=tuple(int(v) for v in box),
                    score=round(float(score), 4),
                    label=self.labels[top],
                    confidence=float(p[top]),
                    probs={k: float(v) for k, v in zip(self.labels, p, strict=True)},
                )
            )
        return out

    def crops(self, image: np.ndarray, detections: list[Detection]) -> list[np.ndarray]:
        """Each face cropped as the model expects: its `frame` when the detector placed one
        and no `margin` was given, else its box grown by the margin."""
        size = self.classifier.info.input_size
        margin = self.detector.margin if self.margin is None else self.margin
        align = self.detector.align if self.align is None else self.align
        out = []
        for d in detections:
            framed = d.frame is not None and self.margin is None
            box, grow = (d.frame, 0.0) if framed else (d.box, margin)
            angle = eye_angle(d.eyes) if align and d.eyes is not None else 0.0
            out.append(crop_face(image, box, size, grow, angle))
        return out

    def predict(self, source: ImageInput, detect: bool = True) -> list[Face]:
        """Every face in the image, largest first. With `detect=False` the whole image is
        taken as one already-cropped face."""
        photo = load_photo(source)
        return [f.scaled(photo.scale) for f in self.predict_image(photo.image, detect)]

    def predict_image(self, image: np.ndarray, detect: bool = True) -> list[Face]:
        """`predict` for an already-loaded uint8 BGR or grayscale image."""
        if not detect:  # the centred square, as `ferkit data prepare` crops other datasets
            h, w = image.shape[:2]
            s = min(h, w)
            box = ((w - s) // 2, (h - s) // 2, s, s)
            crop = crop_face(image, box, self.classifier.info.input_size, margin=0.0)
            return self._faces(self.classify([crop]), [box], [1.0])
        found = sorted(self.detector.detect(image), key=lambda d: -d.box[2] * d.box[3])
        if not found:
            return []
        probs = self.classify(self.crops(image, found))
        return self._faces(probs, [d.box for d in found], [d.score for d in found])
