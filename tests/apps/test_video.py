"""`ferkit video`: a short generated video round-trips to an annotated mp4, CSV and plot."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit import EmotionRecognizer, Face
from ferkit.cli import main
from ferkit.core.labels import LABELS
from ferkit.vision.tracking import Tracker
from tests.conftest import EXAMPLES

ASTRONAUT = EXAMPLES / "astronaut.jpg"
FPS, FRAMES, STEP = 10.0, 12, 15  # the head moves 15 px right per frame


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    head = cv2.imread(str(ASTRONAUT))[40:260, 130:320]
    path = tmp_path_factory.mktemp("video") / "walk.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (480, 360))
    for i in range(FRAMES):
        frame = np.full((360, 480, 3), 127, np.uint8)
        frame[60:280, 20 + STEP * i : 210 + STEP * i] = head
        writer.write(frame)
    writer.release()
    return path


def test_video_round_trip(tmp_path, video, capsys):
    out, table = tmp_path / "out" / "annotated.mp4", tmp_path / "out" / "frames.csv"
    assert main(["video", str(video), "--out", str(out), "--csv", str(table)]) == 0
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 360)
    rows = list(csv.DictReader(table.open()))
    assert [int(r["frame"]) for r in rows] == list(range(FRAMES))  # one face in every frame
    assert {r["track"] for r in rows} == {"0"}  # tracked as one face throughout
    assert float(rows[3]["time_s"]) == pytest.approx(3 / FPS)
    xs = np.array([int(r["x"]) for r in rows])
    slope, _ = np.polyfit(np.arange(FRAMES), xs, 1)
    assert slope == pytest.approx(STEP, abs=1)  # the box follows the head (HOG cells: 8 px)
    assert all(r["label"] == "happy" for r in rows)
    assert sum(float(rows[0][k]) for k in LABELS) == pytest.approx(1, abs=1e-3)
    assert (tmp_path / "out" / "timeline.png").read_bytes().startswith(b"\x89PNG")
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind
    assert "12 frames (1.2 s at 10.0 fps)" in capsys.readouterr().err


def test_video_frames_match_photo_predictions(video):
    """With smoothing off, the CSV's probabilities are the photo path's, frame by frame."""
    rec = EmotionRecognizer(threads=1)
    cap = cv2.VideoCapture(str(video))
    _, frame = cap.read()
    (face,) = rec.predict(frame)
    from ferkit.apps.video import VideoConfig, process_video

    table = Path(video).with_name("raw.csv")
    process_video(VideoConfig(str(video), csv=table, smoothing=1.0), rec)
    first = next(csv.DictReader(table.open()))
    assert [float(first[k]) for k in LABELS] == pytest.approx(
        [face.probs[k] for k in LABELS], abs=1e-4
    )


def _face(box, p_happy):
    probs = dict.fromkeys(LABELS, (1 - p_happy) / 6) | {"happy": p_happy}
    return Face(box, 1.0, "happy", p_happy, probs)


def test_tracker_keeps_ids_smooths_and_forgets():
    t = Tracker(smoothing=0.5, iou_match=0.3, max_missed=1)
    a, b = (0, 0, 100, 100), (300, 0, 100, 100)
    (ia, _), (ib, _) = t.update([_face(a, 1.0), _face(b, 1.0)])
    assert (ia, ib) == (0, 1)
    # next frame: faces swapped in order and the first moved a little; ids follow the boxes
    (jb, _), (ja, fa2) = t.update([_face(b, 1.0), _face((10, 5, 100, 100), 0.0)])
    assert (ja, jb) == (0, 1)
    assert fa2.probs["happy"] == pytest.approx(0.5)  # EMA: half old, half new
    t.update([])
    t.update([])  # missed twice > max_missed: forgotten
    ((k, _),) = t.update([_face(a, 1.0)])
    assert k == 2


def test_video_errors_are_one_line(tmp_path, capsys):
    assert main(["video", str(tmp_path / "none.mp4")]) == 2
    assert "no such video file" in capsys.readouterr().err
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert main(["video", str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "o.mp4")]) == 2
    assert "not a readable video" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_webcam_without_a_display_fails_clearly(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["video", "--camera", "0"]) == 2
    assert "no display" in capsys.readouterr().err


def test_two_faces_keep_two_ids_and_a_face_that_leaves_ends_its_track(tmp_path):
    """BlazeFace on a clip with two heads walking towards each other, the right one leaving
    after frame 7: ids 0 and 1 hold through the shot, and no third id appears."""
    head = cv2.imread(str(ASTRONAUT))[40:260, 130:320]  # the face is ~100 px: 30 at 192 px
    h, w = head.shape[:2]
    path = tmp_path / "two.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 360))
    for i in range(FRAMES):
        frame = np.full((360, 640, 3), 127, np.uint8)
        frame[70 : 70 + h, 20 + 10 * i : 20 + 10 * i + w] = head
        if i < 8:
            frame[100 : 100 + h, 430 - 10 * i : 430 - 10 * i + w] = head
        writer.write(frame)
    writer.release()
    table = tmp_path / "frames.csv"
    args = ["video", str(path), "--csv", str(table), "--detector", "blazeface", "--min-face", "40"]
    assert main(args) == 0
    rows = list(csv.DictReader(table.open()))
    ids = {}
    for r in rows:
        ids.setdefault(r["track"], []).append((int(r["frame"]), int(r["x"])))
    assert sorted(ids) == ["0", "1"], ids
    left, right = sorted(ids.values(), key=lambda track: track[0][1])
    assert [f for f, _ in left] == list(range(FRAMES))  # the left head in every frame
    assert [f for f, _ in right] == list(range(8))  # the right one until it leaves
    assert all(b[1] > a[1] for a, b in itertools.pairwise(left))  # moving right
    assert all(b[1] < a[1] for a, b in itertools.pairwise(right))  # moving left
