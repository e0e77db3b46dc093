"""Broken inputs that used to pass in silence: a video with a damaged middle."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from tests.conftest import EXAMPLES


def _damaged_video(path, frames: int = 40):
    """A 40-frame mp4 with 2 kB of noise written over its middle (a bad sector, a cut)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(frames):
        frame = np.full((240, 320, 3), 90, np.uint8)
        cv2.circle(frame, (10 + 7 * i, 120), 30, (200, 100, 50), -1)
        writer.write(frame)
    writer.release()
    data = bytearray(path.read_bytes())
    at = len(data) * 3 // 10
    data[at : at + 2000] = np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_stretch_is_skipped_and_reported_not_the_end_of_the_video(tmp_path):
    _damaged_video(tmp_path / "clip.mp4")
    csv = tmp_path / "frames.csv"
    r = _cli("video", "clip.mp4", "--csv", "frames.csv", "--detector", "haar", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    err = r.stderr
    lost = re.search(r"warning: .*clip\.mp4: (\d+) of 40 frames could not be read", err)
    assert lost, err
    n = int(lost.group(1))
    assert 0 < n < 20 and f"{40 - n} frames (" in err  # read on past the damage to the end
    assert "header damaged" not in err and "Traceback" not in err  # FFmpeg's own lines muted
    assert csv.is_file() and (tmp_path / "timeline.png").is_file()  # written, and complete


def test_an_intact_video_reports_no_loss(tmp_path, capsys):
    path = tmp_path / "ok.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(12):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    assert main(["video", str(path), "--detector", "haar"]) == 0
    err = capsys.readouterr().err
    assert "12 frames (" in err and "warning" not in err
    assert os.listdir(tmp_path) == ["ok.mp4"]


def _cli(*args, cwd):
    """The CLI in a child process with a deadline: a blocking read fails the test, not CI."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "ferkit", *args], cwd=cwd, capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_pipes_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # nobody writes: reading it would block for ever
    (tmp_path / "ok.jpg").write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    r = _cli("predict", "pipe.jpg", "/dev/zero", "ok.jpg", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "pipe.jpg: not a regular file" in r.stderr
    assert "/dev/zero: not a regular file" in r.stderr
    assert '"path": "ok.jpg"' in r.stdout  # and the photo after them is still done
    r = _cli("data", "prepare", "pipe.jpg", "--out", "c", cwd=tmp_path)
    assert r.returncode == 2 and "pipe.jpg: not a regular file or folder" in r.stderr
    r = _cli("video", "pipe.jpg", cwd=tmp_path)
    assert r.returncode == 2 and "pipe.jpg: not a regular file" in r.stderr


def test_a_folder_named_as_a_photo_is_one_line(tmp_path):
    from ferkit import EmotionRecognizer
    from ferkit.core.errors import FerkitError

    (tmp_path / "x.jpg").mkdir()
    with pytest.raises(FerkitError, match=r"x\.jpg: a folder, not a file$"):
        EmotionRecognizer(threads=1).predict(tmp_path / "x.jpg")


def _astronaut(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "a.jpg", "--out", "file"], "file: exists and is not a folder"),
        (["predict", "a.jpg", "--out", "file/sub"], "file/sub: file is a file, not a folder"),
        (["data", "prepare", "a.jpg", "--out", "file"], "file: exists and is not a folder"),
        (["data", "stats", "c", "--out", "file"], "no prepared data"),
        (["export", "default", "--tta", "views8", "--out", "file/x.onnx"], "file is a file"),
        (["export", "default", "--tta", "views8", "--out", "dir"], "dir: is a folder"),
        (["export", "m.onnx", "--tta", "views8", "--out", "m.onnx"], "m.onnx: is also an input"),
        (["video", "v.mp4", "--out", "file/o.mp4"], "file/o.mp4: file is a file, not a folder"),
        (["video", "v.mp4", "--csv", "dir"], "dir: is a folder; give a file name"),
        (["video", "v.mp4", "--csv", "x.csv", "--timeline", "x.csv"], "three different files"),
        (["video", "v.mp4", "--csv", "v.mp4"], "would overwrite the input video"),
        (["evaluate", "default", "--data", "c", "--out", "file"], "file: exists and is not a"),
        (["predict", "a.jpg", "--out", "/proc/ferkit/x"], "cannot write in /proc"),
        (["data", "prepare", "a.jpg", "--out", "/proc/ferkit"], "cannot write in /proc"),
    ],
)
def test_unusable_output_paths_are_one_line_before_any_work(tmp_path, monkeypatch, capsys, args,
                                                           message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    _astronaut(tmp_path / "a.jpg")
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "dir").mkdir()
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "v.mp4").write_bytes(b"")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_predict_never_overwrites_a_photo_and_keeps_like_names_apart(tmp_path, capsys):
    _astronaut(tmp_path / "ph" / "a.jpg")
    _astronaut(tmp_path / "ph" / "a.jpeg")
    original = (tmp_path / "ph" / "a.jpg").read_bytes()
    assert main(["predict", str(tmp_path / "ph"), "--out", str(tmp_path / "ph")]) == 2
    assert "would overwrite the photo" in capsys.readouterr().err
    assert (tmp_path / "ph" / "a.jpg").read_bytes() == original
    assert sorted(p.name for p in (tmp_path / "ph").iterdir()) == ["a.jpeg", "a.jpg"]
    assert main(["predict", str(tmp_path / "ph"), "--out", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [".ferkit-annotated", "a.jpeg.jpg", "a.jpg", "predictions.jsonl"]


def test_a_video_cut_short_is_reported_and_an_intact_one_is_not(tmp_path):
    good = tmp_path / "good.avi"  # MJPG in AVI: its header says 60 frames, each readable alone
    writer = cv2.VideoWriter(str(good), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(60):
        writer.write(np.full((240, 320, 3), 40 + 3 * i, np.uint8))
    writer.release()
    data = good.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])  # a copy interrupted half way
    r = _cli("video", "cut.avi", "--detector", "haar", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert re.search(
        r"warning: cut\.avi: (\d+) of 60 frames .*the last \1 missing: cut short", r.stderr
    )
    r = _cli("video", "good.avi", "--detector", "haar", cwd=tmp_path)
    assert r.returncode == 0 and "warning" not in r.stderr and "60 frames (" in r.stderr
