"""Broken inputs that used to pass in silence: a video with a damaged middle."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

from ferkit.cli import main


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


def test_a_damaged_stretch_is_skipped_and_reported_not_the_end_of_the_video(tmp_path, capsys):
    video = _damaged_video(tmp_path / "clip.mp4")
    csv = tmp_path / "frames.csv"
    assert main(["video", str(video), "--csv", str(csv), "--detector", "haar"]) == 1
    err = capsys.readouterr().err
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
