"""BlazeFace's decoding by hand: anchors, boxes and keypoints, the letterbox both ways,
weighted NMS, and the shipped file's SHA-256."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ferkit.core.errors import FerkitError
from ferkit.modelfile.shipped import recorded_sha256, sha256_file, shipped_model_path
from ferkit.vision.blazeface import (
    MODEL_FILE,
    BlazeFaceDetector,
    anchors,
    decode,
    letterbox,
    tiles,
    weighted_nms,
)


def test_anchors_are_the_centres_of_a_48_by_48_grid_row_by_row():
    a = anchors()
    assert a.shape == (2304, 2)
    np.testing.assert_allclose(a[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(a[1], [1.5 / 48, 0.5 / 48])  # x moves first
    np.testing.assert_allclose(a[48], [0.5 / 48, 1.5 / 48])  # then the next row
    np.testing.assert_allclose(a[-1], [47.5 / 48, 47.5 / 48])


def test_decode_adds_offsets_to_the_anchor_and_applies_a_clipped_sigmoid():
    centres = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    # anchor 0: centre moved by (+19.2, -9.6) px, 96x48 px, right eye 9.6 px left of centre
    raw[0, :4] = [19.2, -9.6, 96, 48]
    raw[0, 4:6] = [-9.6, 0]
    scores = np.array([0.0, 500.0], np.float32)  # logits; 500 is clipped to 100
    boxes, kps, p = decode(raw, scores, centres)
    cx, cy = 0.25 + 0.1, 0.5 - 0.05
    np.testing.assert_allclose(boxes[0], [cx - 0.25, cy - 0.125, cx + 0.25, cy + 0.125], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.25 - 0.05, 0.5], atol=1e-6)
    np.testing.assert_allclose(kps[1], np.tile([0.75, 0.75], (6, 1)), atol=1e-6)  # no offsets
    np.testing.assert_allclose(boxes[1], [0.75, 0.75, 0.75, 0.75], atol=1e-6)  # no size
    np.testing.assert_allclose(p, [0.5, 1.0])


@pytest.mark.parametrize(
    ("h", "w", "scale", "pad"),
    [(100, 200, 0.96, (0, 48)), (400, 100, 0.48, (72, 0)), (192, 192, 1.0, (0, 0)),
     (480, 640, 0.3, (0, 24))],
)  # fmt: skip
def test_letterbox_fits_pads_and_maps_back(h, w, scale, pad):
    image = np.full((h, w, 3), 255, np.uint8)
    x, lb = letterbox(image)
    assert x.shape == (1, 3, 192, 192) and x.dtype == np.float32
    assert (lb.scale, lb.pad_x, lb.pad_y) == pytest.approx((scale, *pad))
    # the photo is white (1.0), the padding black (-1.0)
    assert x[0, :, pad[1] + 1, pad[0] + 1].tolist() == [1.0, 1.0, 1.0]
    if pad[1]:
        assert x[0, :, pad[1] - 1, 96].tolist() == [-1.0, -1.0, -1.0]
    corners = np.array([[0, 0], [w, h], [w / 4, h / 2]], np.float32)
    inside = (corners * lb.scale + np.array(pad)) / 192  # photo px -> 0..1 of the input
    np.testing.assert_allclose(lb.to_photo(inside), corners, atol=1e-3)


def test_letterbox_sends_rgb_from_bgr_and_gray():
    bgr = np.zeros((10, 10, 3), np.uint8)
    bgr[..., 2] = 255  # red in BGR
    x, _ = letterbox(bgr)
    assert x[0, :, 96, 96].tolist() == [1.0, -1.0, -1.0]  # R, G, B
    x, _ = letterbox(np.full((10, 10), 255, np.uint8))
    assert x[0, :, 96, 96].tolist() == [1.0, 1.0, 1.0]


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_rest():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    kps[1] += 4
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    (b1, k1, s1), (b2, _, s2) = weighted_nms(boxes, kps, scores, overlap=0.3)
    # the first cluster: boxes 1 (0.9) and 0 (0.6), weighted 0.6 / 0.4
    np.testing.assert_allclose(b1, [0.6, 0, 10.6, 10], atol=1e-6)
    np.testing.assert_allclose(k1, np.full((6, 2), 0.6 * 4), atol=1e-6)
    assert s1 == pytest.approx(0.9) and s2 == pytest.approx(0.7)
    np.testing.assert_allclose(b2, boxes[2])
    assert weighted_nms(boxes[:0], kps[:0], scores[:0]) == []


def test_the_shipped_model_is_the_recorded_one_and_a_tampered_one_is_refused(monkeypatch):
    path = shipped_model_path(MODEL_FILE)
    assert recorded_sha256(MODEL_FILE) == sha256_file(path)
    fake = lambda name: "0" * 64  # noqa: E731
    monkeypatch.setattr("ferkit.modelfile.shipped.recorded_sha256", fake)
    with pytest.raises(FerkitError, match="does not match the recorded"):
        BlazeFaceDetector()


def test_min_face_drops_smaller_faces():
    import cv2

    from tests.conftest import EXAMPLES

    photo = cv2.imread(str(EXAMPLES / "astronaut.jpg"))
    (face,) = BlazeFaceDetector(min_face=40).detect(photo)
    assert BlazeFaceDetector(min_face=face.box[2] + 1).detect(photo) == []


def test_each_detector_has_its_own_smallest_face_unless_told():
    from ferkit.vision.detect import make_detector

    one_pass = make_detector("blazeface")  # the default: one pass, faces under 40 px dropped
    assert (one_pass.min_face, one_pass.tiled) == (40, False)
    assert make_detector("haar").min_face == 80  # the cascade's time grows as it shrinks
    told = make_detector("blazeface", min_face=60)
    assert (told.min_face, told.tiled) == (60, True)


@pytest.mark.parametrize(("w", "h", "min_face"), [(640, 480, 40), (1920, 1080, 40), (500, 900, 25)])
def test_tiles_hold_every_face_down_to_min_face_wholly_in_one_window(w, h, min_face):
    windows = tiles(w, h, min_face)
    sides = sorted({x1 - x0 for x0, _, x1, _ in windows if x1 - x0 < w})
    assert sides[0] == max(192, min_face * 8)  # min_face spans TILE_FACE = 24 of 192 px
    assert all(b == 2 * a for a, b in itertools.pairwise(sides))  # doubling
    assert all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in windows)
    rng = np.random.default_rng(0)
    for side in sides:  # any square up to half a tile lies inside one tile of that side
        for _ in range(200):
            f = int(rng.integers(min_face, side // 2 + 1))
            x, y = int(rng.integers(0, w - f + 1)), int(rng.integers(0, h - f + 1))
            assert any(
                x0 <= x and y0 <= y and x + f <= x1 and y + f <= y1
                for x0, y0, x1, y1 in windows
                if x1 - x0 == side or y1 - y0 == min(side, h)
            )
    assert tiles(640, 480, 80) == []  # one pass already gives an 80 px face 24 px


def test_tile_counts_the_docs_quote():
    """README and docs/benchmarks.md: 7 passes for 40 px in 640x480, 31 for 20 px, 84 for
    40 px in 1920x1080 (the whole photo, plus its tiles)."""
    assert [1 + len(tiles(w, h, m)) for w, h, m in ((640, 480, 40), (640, 480, 20),
                                                    (1920, 1080, 40))] == [7, 31, 84]  # fmt: skip


def test_tiles_find_a_small_face_that_one_pass_misses():
    import cv2

    from tests.conftest import EXAMPLES

    small = cv2.resize(cv2.imread(str(EXAMPLES / "astronaut.jpg")), None, fx=0.3, fy=0.3)
    photo = np.full((960, 1280, 3), 90, np.uint8)
    photo[500 : 500 + small.shape[0], 700 : 700 + small.shape[1]] = small  # a 30 px face
    one_pass, tiled = BlazeFaceDetector(), BlazeFaceDetector(min_face=20)
    assert one_pass.detect(photo) == []  # 4 px at 192
    (face,) = tiled.detect(photo)
    x, y, w, h = face.box
    assert 740 < x < 770 and 505 < y < 535 and 20 <= min(w, h) <= max(w, h) <= 40
    assert 700 < face.eyes[0][0] < face.eyes[1][0] < 800  # keypoints moved with the tile


def test_blazeface_finds_the_turned_cameraman_that_dlib_misses():
    from ferkit import EmotionRecognizer
    from tests.conftest import EXAMPLES

    photo = EXAMPLES / "cameraman.png"
    (face,) = EmotionRecognizer(threads=1).predict(photo)  # the default detector
    x, y, w, h = face.box
    assert 180 < x < 240 and 100 < y < 150 and 50 < min(w, h) <= max(w, h) < 100  # his head
    pytest.importorskip("dlib", reason="the dlib detector is the ferkit[dlib] extra")
    assert EmotionRecognizer(detector="dlib", threads=1).predict(photo) == []  # HOG: no face
