"""Faces as people photograph them, through the default detector and `EmotionRecognizer`:
a close-up that fills the frame, small faces in a large group photo, a photo with no face,
and a turned head whose crop must keep its mouth.

The faces are the bundled photos' (examples/): the astronaut's frontal smile and the
cameraman's semi-profile."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ferkit import EmotionRecognizer
from ferkit.vision.blazeface import BlazeFaceDetector
from ferkit.vision.detection import iou
from tests.conftest import EXAMPLES

ASTRONAUT_FACE = (176, 76, 96, 96)  # x, y, w, h: drawn by hand (benchmarks/heads.py)
CAMERAMAN_HEAD = (140, 50, 300, 240)  # x0, y0, x1, y1 around the head (benchmarks/heads.py)


@pytest.fixture(scope="module")
def det() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.imread(str(EXAMPLES / "astronaut.jpg"))


@pytest.mark.parametrize("side", [350, 640, 1200])
@pytest.mark.parametrize("fill", [1.0, 0.8])
def test_a_close_up_that_fills_the_frame_gives_one_face(det, astronaut, side, fill):
    """The astronaut's face cropped (`fill` of the crop is face) and enlarged to `side` px.
    Where the face fills the frame, the full-range pass alone (ferkit's detector before the
    close-up passes) finds nothing."""
    x, y, w, _ = ASTRONAUT_FACE
    grow = w / fill
    x0, y0 = round(x + w / 2 - grow / 2), round(y + w / 2 - grow / 2)
    crop = astronaut[y0 : y0 + round(grow), x0 : x0 + round(grow)]
    photo = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    if fill == 1.0:
        assert len(det.full.run(photo, 0.5)[2]) == 0
    (face,) = det.detect(photo)
    expected = (side * (1 - fill) / 2, side * (1 - fill) / 2, side * fill, side * fill)
    assert iou(face.box, expected) > 0.5, (face.box, expected)


@pytest.mark.parametrize("side", [64, 350])
@pytest.mark.parametrize("tilt", [0, 20])
def test_a_photo_cut_tighter_than_the_face_gives_it(det, astronaut, side, tilt):
    """A film still's framing: the astronaut's face cropped to its middle 70% (brow to
    lips, cheek to cheek), tilted `tilt` degrees, at `side` px. Passes 1-4 find nothing; the
    close-up looks (pass 5) find the face; its frame, larger than the photo, is kept inside
    it: the whole photo."""
    x, y, w, _ = ASTRONAUT_FACE
    inner = round(0.7 * w)
    x0, y0 = x + (w - inner) // 2, y + (w - inner) // 2
    photo = cv2.resize(
        astronaut[y0 : y0 + inner, x0 : x0 + inner], (side, side), interpolation=cv2.INTER_CUBIC
    )
    rotate = cv2.getRotationMatrix2D((side / 2, side / 2), tilt, 1.0)
    photo = cv2.warpAffine(photo, rotate, (side, side), borderMode=cv2.BORDER_REPLICATE)
    assert det.kept(det.merged(photo), photo) == []
    (face,) = det.detect(photo)
    assert face.box[2] >= 0.9 * side
    assert face.frame == (0, 0, side, side)


def group_photo(astronaut: np.ndarray, face_px: int = 90) -> tuple[np.ndarray, list]:
    """A 1920x1080 photo of four astronauts whose faces are `face_px` wide, on a textured
    grey; returns it and their face boxes."""
    x, y, w, _ = ASTRONAUT_FACE
    head = astronaut[y - 56 : y + w + 100, x - 60 : x + w + 60]  # head and shoulders
    s = face_px / w
    head = cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    photo = rng.normal(120, 20, (1080, 1920, 3)).clip(0, 255).astype(np.uint8)
    photo = cv2.GaussianBlur(photo, (0, 0), 3)
    boxes = []
    for px, py in ((150, 200), (700, 650), (1200, 150), (1650, 700)):
        photo[py : py + head.shape[0], px : px + head.shape[1]] = head
        boxes.append((px + round(60 * s), py + round(56 * s), face_px, face_px))
    return photo, boxes


def test_a_large_photo_with_four_small_faces_gives_each_of_them(det, astronaut):
    photo, boxes = group_photo(astronaut)
    assert len(det.full.run(photo, 0.5)[2]) == 0  # one look at 192 px: faces of 9 px
    found = det.detect(photo)
    assert len(found) == 4
    for box in boxes:
        assert max(iou(f.box, box) for f in found) > 0.5, (box, found)


def test_face_free_photos_give_no_face(det):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (720, 1280, 3), np.uint8)
    flat = np.full((480, 640, 3), 128, np.uint8)
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    for photo in (noise, cv2.GaussianBlur(noise, (0, 0), 4), flat, gradient):
        assert det.detect(photo) == []
    chelsea = cv2.imread(str(EXAMPLES / "chelsea.jpg"))  # a cat: no person
    assert det.detect(chelsea) == []


def test_the_crop_of_a_turned_head_keeps_its_mouth(det):
    """The cameraman, turned into semi-profile: his box sits on the visible eye and nose and
    ends near the mouth; the frame placed from the keypoints holds the mouth well inside,
    with room for the chin below it, as FER-2013's crops do (mouth at 0.75 of the side)."""
    photo = cv2.imread(str(EXAMPLES / "cameraman.png"))
    for image in (photo, photo[:, ::-1].copy()):  # turned either way
        (_, points, _), *_ = det.merged(image)
        (face,) = det.detect(image)
        x, y, side, _ = face.frame
        mouth = points[3]
        assert x < mouth[0] < x + side
        assert y + 0.6 * side < mouth[1] < y + 0.85 * side
        assert face.box[1] + face.box[3] < y + side  # the frame reaches below the box


@pytest.mark.parametrize("fill", [1.0, 1.5])
def test_predict_classifies_the_close_up(astronaut, fill):
    x, y, w, _ = ASTRONAUT_FACE
    inner = round(w / fill)
    x0, y0 = x + (w - inner) // 2, y + (w - inner) // 2
    crop = astronaut[y0 : y0 + inner, x0 : x0 + inner]
    photo = cv2.resize(crop, (350, 350), interpolation=cv2.INTER_CUBIC)
    (face,) = EmotionRecognizer(threads=1).predict(photo)
    assert face.label == "happy"
