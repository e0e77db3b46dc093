"""Rough edges a new user met: a webcam with no window, a video with nowhere to write,
progress bars in log files, a stray blank line, and a McNemar p printed as "0"."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ferkit.evaluation.metrics import format_p, mcnemar
from tests.conftest import EXAMPLES
from tests.hostile.bombs import one_line_error, run_capped
from tests.serve.test_jobs import clip


def test_a_camera_with_no_window_points_to_recording_or_the_browser(tmp_path):
    r = run_capped(["video", "--camera", "0"], tmp_path)  # CI: no display, headless OpenCV
    line = one_line_error(r)
    assert "give --out or --csv to record" in line and "`ferkit serve`" in line


def test_a_video_with_no_output_named_prints_its_rows(tmp_path):
    clip(tmp_path / "clip.mp4", frames=6)
    r = run_capped(["video", "clip.mp4"], tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("path,frame,time_s,track,face,x,y,width,height,score,label")
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == ["clip.mp4"] * 6
    assert [r[1] for r in rows] == ["0", "1", "2", "3", "4", "5"]


def test_progress_written_to_a_log_file_has_no_bars_or_blank_lines(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    with open(tmp_path / "log.txt", "w") as log:
        args = [sys.executable, "-m", "ferkit", "predict", "a.jpg", "b.jpg"]
        subprocess.run(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log, timeout=120)
    text = (tmp_path / "log.txt").read_text()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() and all(line.strip() for line in text.splitlines()), repr(text)


def test_training_into_a_log_file_writes_lines_not_carriage_returns(small_cache, tmp_path):
    pytest.importorskip("torch", reason="training needs ferkit[train]")
    from tests.tiny_runs import train_args

    env = {**os.environ, "COLUMNS": "100"}
    with open(tmp_path / "train.log", "w") as log:
        r = subprocess.run([sys.executable, "-m", "ferkit", *train_args(small_cache,
                           tmp_path / "run", 1)], stdout=log, stderr=subprocess.STDOUT,
                           env=env, timeout=300)  # fmt: skip
    text = (tmp_path / "train.log").read_text()
    assert r.returncode == 0, text
    assert "\r" not in text and "epoch 1" in text


def test_a_tiny_mcnemar_p_is_printed_not_zero():
    a = np.r_[np.ones(3000, bool), np.zeros(10, bool)]
    test = mcnemar(a, ~a)
    assert test["p_value"] == 0.0  # under float's range
    assert format_p(test) == "2.6e-878"
    assert format_p(mcnemar(a[:40], ~a[:40])) == "1.819e-12"
