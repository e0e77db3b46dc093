"""Face detectors behind one small interface: `detect(bgr) -> list[Detection]`.

Every detector here works offline straight after its install; none downloads weights:

- `blazeface` (default): MediaPipe's BlazeFace full-range CNN, shipped in `ferkit/weights/`
  and run by ONNX Runtime (`ferkit.vision.blazeface`); finds turned faces, gives eye
  positions, and costs the same at any face size.
- `dlib` (the `ferkit[dlib]` extra): dlib's HOG + linear SVM frontal-face detector (dlib-bin
  wheel), with the 5-point landmark model that `face_recognition_models` ships for the eyes.
- `haar`: OpenCV 4.x's frontal-face Haar cascade, shipped inside the opencv wheel; no
  landmarks. (OpenCV 5 dropped the cascades, so ferkit pins opencv < 5.)
- `yunet`: OpenCV's YuNet CNN from an ONNX file the user supplies (`yunet:PATH.onnx`); it
  gives eye positions too.

`benchmarks/detectors.py` measures them on real photos; docs/benchmarks.md has the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.vision.detection import (
    DEFAULT_MIN_FACE,
    Detection,
    Detector,
    downscale,
    gray,
    scaled,
)

WINDOW_DLIB = 80  # px, the smallest face dlib's HOG detector sees without upsampling


class HaarDetector:
    """OpenCV's `haarcascade_frontalface_default.xml`; the score is the cascade's final-stage
    weight (`detectMultiScale3`), roughly 0..10 for true faces."""

    name = "haar"
    align = False  # no eyes
    # found faces: 76.1% at -0.1, 75.7% at 0, 74.1% at 0.1, 71.5% at 0.2 (docs/benchmarks.md)
    margin = 0.0

    def __init__(
        self,
        min_face: int = DEFAULT_MIN_FACE,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        max_side: int = 1024,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        import cv2

        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise FerkitError(
                f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 removed them); "
                "pip install 'opencv-python-headless<5' or choose --detector dlib|yunet:FILE"
            )
        path = Path(cv2.data.haarcascades) / cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FerkitError(f"{path}: cannot load the Haar cascade")
        self.min_face, self.scale_factor, self.min_neighbors = min_face, scale_factor, min_neighbors
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        import cv2

        small, s = downscale(gray(image), self.max_side)
        small = cv2.equalizeHist(small)  # the cascade was trained on equalised faces
        min_px = max(int(self.min_face / s), 20)  # the cascade's window is 24 px
        boxes, _, weights = self.cascade.detectMultiScale3(
            small,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_px, min_px),
            outputRejectLevels=True,
        )
        found = [
            Detection(tuple(int(v) for v in b), float(wt))
            for b, wt in zip(boxes, np.ravel(weights), strict=True)
        ]
        return [scaled(d, s) for d in found]


def _landmark_model() -> Path | None:
    """dlib's 5-point landmark file inside `face_recognition_models`, found without importing
    that package (its `__init__` needs `pkg_resources`, gone from current setuptools)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models"
    path /= "shape_predictor_5_face_landmarks.dat"
    return path if path.is_file() else None


class DlibDetector:
    """dlib's HOG frontal-face detector plus its 5-point landmarks for the eye centres."""

    name = "dlib"
    align = True  # eye line within 0.5 degrees (median) of the truth on whole heads
    # On found faces (benchmarks/detectors.py, 600 photos, the VGG-64 default classifying):
    # 70.9% at -0.1, 72.0% at 0.0, 71.4% at 0.1, 70.7% at 0.2
    margin = 0.0

    def __init__(
        self, min_face: int = DEFAULT_MIN_FACE, threshold: float = 0.1, max_side: int = 1024
    ) -> None:
        try:
            import dlib

            landmarks = _landmark_model()
        except ImportError:
            dlib = landmarks = None
        if dlib is None or landmarks is None:
            raise FerkitError(
                "the dlib detector is an extra: pip install 'ferkit[dlib]' "
                "(dlib-bin and face_recognition_models), or use --detector blazeface"
            )
        self.hog = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(landmarks))
        self.min_face, self.max_side = min_face, max_side
        self.threshold = threshold  # SVM margin; 0 is dlib's own cut-off

    def detect(self, image: np.ndarray) -> list[Detection]:
        import cv2

        small, s = downscale(gray(image), self.max_side)
        # The HOG window is 80 px: to find faces down to min_face, enlarge the image first
        # (time grows with the square of the factor, so the default min_face is 80).
        grow = WINDOW_DLIB / (self.min_face / s)
        if grow > 1:
            small = cv2.resize(small, None, fx=grow, fy=grow, interpolation=cv2.INTER_LINEAR)
            s /= grow
        rects, scores, _ = self.hog.run(small, 0, self.threshold)
        found = []
        for r, score in zip(rects, scores, strict=True):
            box = (r.left(), r.top(), r.width(), r.height())
            if box[2] * s < self.min_face:
                continue
            p = self.landmarks(small, r).parts()
            # 5-point model: 0-1 the image-right eye's corners, 2-3 the image-left eye's.
            image_left = ((p[2].x + p[3].x) / 2, (p[2].y + p[3].y) / 2)
            image_right = ((p[0].x + p[1].x) / 2, (p[0].y + p[1].y) / 2)
            found.append(scaled(Detection(box, float(score), (image_left, image_right)), s))
        return found


class YuNetDetector:
    """OpenCV's YuNet (`cv2.FaceDetectorYN`) from a user-supplied ONNX file, e.g. OpenCV
    Zoo's `face_detection_yunet_2023mar.onnx`. The score is its confidence, 0..1."""

    name = "yunet"
    align = True  # five landmarks, like dlib's; not measured here
    margin = 0.1  # not measured here (no YuNet file offline); its boxes resemble dlib's

    def __init__(
        self,
        model: str | Path,
        min_face: int = DEFAULT_MIN_FACE,
        threshold: float = 0.7,
        max_side: int = 1024,
    ) -> None:
        import cv2

        path = Path(model)
        if not path.is_file():
            raise FerkitError(f"{path}: no such YuNet model file")
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), threshold, 0.3, 100)
        except cv2.error:
            raise FerkitError(f"{path}: OpenCV cannot load it as a YuNet model") from None
        self.min_face, self.max_side = min_face, max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        import cv2

        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        small, s = downscale(bgr, self.max_side)
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self.net.detect(small)
        found = []
        for f in faces if faces is not None else []:
            box = tuple(round(float(v)) for v in f[:4])
            if box[2] * s < self.min_face:
                continue
            eyes = ((float(f[4]), float(f[5])), (float(f[6]), float(f[7])))
            found.append(scaled(Detection(box, float(f[14]), eyes), s))
        return found


DEFAULT_DETECTOR = "blazeface"  # predict, video, serve, the API and the demo
DETECTORS = ("blazeface", "dlib", "haar", "yunet:PATH")


def make_detector(spec: str = DEFAULT_DETECTOR, min_face: int | None = None) -> Detector:
    """A detector by name: `blazeface`, `dlib`, `haar` or `yunet:PATH/TO/model.onnx`.
    `min_face`: the smallest face side to find, pixels; None for the detector's own default
    (80 for the scanning detectors, whose time grows as it shrinks; for `blazeface`, one
    pass over the photo, dropping faces under 40 px, while a given `min_face` adds tiles
    when one pass would miss faces that small)."""
    name, _, arg = spec.partition(":")
    size = {} if min_face is None else {"min_face": min_face}
    if name == "blazeface":
        from ferkit.vision.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(**size)
    if name == "haar":
        return HaarDetector(**size)
    if name == "dlib":
        return DlibDetector(**size)
    if name == "yunet":
        if not arg:
            raise FerkitError("yunet needs its ONNX file: --detector yunet:PATH.onnx")
        return YuNetDetector(arg, **size)
    raise FerkitError(f"unknown detector {spec!r}; choose one of {', '.join(DETECTORS)}")
