"""BlazeFace's decoding by hand: anchors, boxes and keypoints, the letterbox both ways,
weighted NMS, and the shipped file's SHA-256."""

from __future__ import annotations

import numpy as np
import pytest

from ferkit.core.errors import FerkitError
from ferkit.modelfile.shipped import recorded_sha256, sha256_file, shipped_model_path
from ferkit.vision.blazeface import (
    BlazeFaceDetector,
    frame,
    search_sizes,
    weighted_nms,
)
from ferkit.vision.blazenet import FULL_RANGE, SHORT_RANGE, anchors, decode, letterbox


def test_full_range_anchors_are_the_centres_of_its_4_px_cells_row_by_row():
    a = anchors(192, 192, FULL_RANGE.layers)
    assert a.shape == (2304, 2)
    np.testing.assert_allclose(a[0], [2, 2])
    np.testing.assert_allclose(a[1], [6, 2])  # x moves first
    np.testing.assert_allclose(a[48], [2, 6])  # then the next row
    np.testing.assert_allclose(a[-1], [190, 190])
    assert anchors(352, 576, FULL_RANGE.layers).shape == (88 * 144, 2)  # any input size


def test_short_range_anchors_are_mediapipes_896():
    a = anchors(128, 128, SHORT_RANGE.layers)
    assert a.shape == (896, 2)  # 16x16 cells of 8 px, 2 each; 8x8 of 16 px, 6 each
    np.testing.assert_allclose(a[:3], [[4, 4], [4, 4], [12, 4]])
    np.testing.assert_allclose(a[512:519], [[8, 8]] * 6 + [[24, 8]])
    np.testing.assert_allclose(a[-1], [120, 120])


def test_decode_adds_offsets_to_the_anchor_and_applies_a_clipped_sigmoid():
    centres = np.array([[48, 96], [144, 144]], np.float32)  # input px
    raw = np.zeros((2, 16), np.float32)
    # anchor 0: centre moved by (+19.2, -9.6) px, 96x48 px, right eye 9.6 px left of centre
    raw[0, :4] = [19.2, -9.6, 96, 48]
    raw[0, 4:6] = [-9.6, 0]
    scores = np.array([0.0, 500.0], np.float32)  # logits; 500 is clipped to 100
    boxes, kps, p = decode(raw, scores, centres)
    cx, cy = 48 + 19.2, 96 - 9.6
    np.testing.assert_allclose(boxes[0], [cx - 48, cy - 24, cx + 48, cy + 24], atol=1e-4)
    np.testing.assert_allclose(kps[0, 0], [48 - 9.6, 96], atol=1e-4)
    np.testing.assert_allclose(kps[1], np.tile([144, 144], (6, 1)), atol=1e-4)  # no offsets
    np.testing.assert_allclose(boxes[1], [144, 144, 144, 144], atol=1e-4)  # no size
    np.testing.assert_allclose(p, [0.5, 1.0])


@pytest.mark.parametrize(
    ("h", "w", "size", "zoom", "scale", "pad"),
    [(100, 200, (192, 192), 1, 0.96, (0, 48)), (400, 100, (192, 192), 1, 0.48, (72, 0)),
     (192, 192, (192, 192), 1, 1.0, (0, 0)), (480, 640, (192, 192), 1, 0.3, (0, 24)),
     (1080, 1920, (352, 576), 1, 0.3, (0, 14)), (100, 100, (128, 128), 1.5, 0.85, (21, 21))],
)  # fmt: skip
def test_letterbox_fits_pads_and_maps_back(h, w, size, zoom, scale, pad):
    image = np.full((h, w, 3), 255, np.uint8)
    x, lb = letterbox(image, *size, zoom_out=zoom)
    assert x.shape == (1, 3, *size) and x.dtype == np.float32
    assert (lb.scale, lb.pad_x, lb.pad_y) == pytest.approx((scale, *pad))
    # the photo is white (1.0), the padding black (-1.0)
    assert x[0, :, pad[1] + 1, pad[0] + 1].tolist() == [1.0, 1.0, 1.0]
    if pad[1]:
        assert x[0, :, pad[1] - 1, size[1] // 2].tolist() == [-1.0, -1.0, -1.0]
    corners = np.array([[0, 0], [w, h], [w / 4, h / 2]], np.float32)
    inside = corners * lb.scale + np.array(pad)  # photo px -> input px
    np.testing.assert_allclose(lb.to_photo(inside), corners, atol=1e-3)


def test_letterbox_sends_rgb_from_bgr_and_gray():
    bgr = np.zeros((10, 10, 3), np.uint8)
    bgr[..., 2] = 255  # red in BGR
    x, _ = letterbox(bgr, 192, 192)
    assert x[0, :, 96, 96].tolist() == [1.0, -1.0, -1.0]  # R, G, B
    x, _ = letterbox(np.full((10, 10), 255, np.uint8), 192, 192)
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


@pytest.mark.parametrize("network", [FULL_RANGE, SHORT_RANGE])
def test_the_shipped_models_are_the_recorded_ones_and_a_tampered_one_is_refused(
    monkeypatch, network
):
    path = shipped_model_path(network.file)
    assert recorded_sha256(network.file) == sha256_file(path)
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

    default = make_detector("blazeface")  # searches for 80 px faces, keeps them from 40 px
    assert (default.search_face, default.min_face) == (80, 40)
    assert make_detector("haar").min_face == 80  # the cascade's time grows as it shrinks
    told = make_detector("blazeface", min_face=60)
    assert (told.search_face, told.min_face) == (60, 60)


@pytest.mark.parametrize(
    ("w", "h", "min_face", "sizes"),
    [(640, 480, 80, []), (350, 350, 80, []), (720, 480, 80, [(192, 288)]),
     (1920, 1080, 80, [(448, 768)]), (640, 480, 40, [(384, 512)]),
     (4000, 3000, 80, [(960, 1280), (320, 448)]), (8000, 6000, 80, [(960, 1280), (320, 448)]),
     (1280, 960, 20, [(960, 1280), (320, 448)])],
)  # fmt: skip
def test_search_sizes_give_a_min_face_face_32_px_then_a_third_as_large(w, h, min_face, sizes):
    assert search_sizes(w, h, min_face) == sizes


def test_a_larger_input_finds_a_small_face_that_192_misses():
    import cv2

    from tests.conftest import EXAMPLES

    small = cv2.resize(cv2.imread(str(EXAMPLES / "astronaut.jpg")), None, fx=0.3, fy=0.3)
    photo = np.full((960, 1280, 3), 90, np.uint8)
    photo[500 : 500 + small.shape[0], 700 : 700 + small.shape[1]] = small  # a 30 px face
    assert BlazeFaceDetector().detect(photo) == []  # searched for 80 px faces: 5 px at 192
    (face,) = BlazeFaceDetector(min_face=20).detect(photo)  # searched at 1280x960
    x, y, w, h = face.box
    assert 740 < x < 770 and 505 < y < 535 and 20 <= min(w, h) <= max(w, h) <= 40
    assert 750 < face.eyes[0][0] < face.eyes[1][0] < 790  # keypoints in photo pixels


def test_agreed_marks_the_boxes_another_look_also_found():
    from ferkit.vision.blazeface import agreed

    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    others = np.array([[1, 1, 11, 11], [52, 50, 70, 60]], np.float32)  # IoU 0.68 and 0.40
    assert agreed(boxes, others).tolist() == [True, False]
    assert agreed(boxes, others, overlap=0.3).tolist() == [True, True]
    assert agreed(boxes, others[:0]).tolist() == [False, False]


def test_frame_puts_eyes_and_mouth_where_fer2013_does_and_falls_back_to_the_box():
    from ferkit.vision.blazeface import FRAME_EYES, FRAME_MOUTH

    kps = np.zeros((6, 2), np.float32)
    kps[:2] = [[80, 100], [120, 100]]  # eyes 40 px apart, level
    kps[3] = [100, 100 + 0.5 * (FRAME_MOUTH - FRAME_EYES) * 200]  # mouth below their midpoint
    box = np.array([60, 70, 140, 160], np.float32)
    x, y, side, _ = frame(kps, box)
    assert side == 100  # the eye-to-mouth distance is (FRAME_MOUTH - FRAME_EYES) of the side
    assert (x + side / 2, y + FRAME_EYES * side) == pytest.approx((100, 100), abs=1)
    assert frame(kps, box, (640, 480)) == (x, y, side, side)  # inside already: unchanged
    assert frame(kps, box, (130, 480)) == (30, y, side, side)  # moved left into the photo
    assert frame(kps, box, (80, 80)) == (0, 0, 80, 80)  # larger than the photo: shrunk too
    kps[3] = [100, 400]  # a mouth far off: the box's own square instead
    assert frame(kps, box) == (55, 70, 90, 90)


def test_blazeface_finds_the_turned_cameraman_that_dlib_misses():
    from ferkit import EmotionRecognizer
    from tests.conftest import EXAMPLES

    photo = EXAMPLES / "cameraman.png"
    (face,) = EmotionRecognizer(threads=1).predict(photo)  # the default detector
    x, y, w, h = face.box
    assert 180 < x < 240 and 100 < y < 150 and 50 < min(w, h) <= max(w, h) < 100  # his head
    pytest.importorskip("dlib", reason="the dlib detector is the ferkit[dlib] extra")
    assert EmotionRecognizer(detector="dlib", threads=1).predict(photo) == []  # HOG: no face
