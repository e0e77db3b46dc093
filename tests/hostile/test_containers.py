"""Containers that lie: a video job's length is counted as its frames are read, whatever
the container declares (10 frames holding 150, or 1,000,000 fps); a photo is not a video;
and an AVI with no index keeps its first frame."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from ferkit.apps.video import MAX_RATE, VideoConfig, frame_budget, process_video
from tests.conftest import EXAMPLES

pytest.importorskip("fastapi", reason="video jobs need ferkit[serve]")

from tests.serve.test_jobs import app, upload, wait


def avi(path, frames: int = 150, rate: int | None = None, length: int | None = None,
        index: bool = True) -> bytes:  # fmt: skip
    """An MJPG AVI of `frames` frames of rising grey, its header rewritten to declare `rate`
    fps and `length` frames, and without its idx1 index unless `index`."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(frames):
        w.write(np.full((120, 160, 3), i, np.uint8))
    w.release()
    d = bytearray(path.read_bytes())
    strh, avih = d.index(b"strh") + 8, d.index(b"avih") + 8  # dwScale, dwRate at +20, +24
    if rate:
        d[strh + 20 : strh + 28] = struct.pack("<II", 1, rate)
        d[avih : avih + 4] = struct.pack("<I", 1)  # microseconds per frame
    if length is not None:  # the stream's dwLength and the file's dwTotalFrames
        d[strh + 32 : strh + 36] = struct.pack("<I", length)
        d[avih + 16 : avih + 20] = struct.pack("<I", length)
    if not index:
        at = d.index(b"idx1")
        del d[at : at + 8 + struct.unpack("<I", d[at + 4 : at + 8])[0]]
        flags = struct.unpack("<I", d[avih + 12 : avih + 16])[0]
        d[avih + 12 : avih + 16] = struct.pack("<I", flags & ~0x10)  # AVIF_HASINDEX
    path.write_bytes(bytes(d))
    return bytes(d)


def test_the_budget_takes_the_declared_rate_at_most_max_rate():
    assert frame_budget(2, 10) == 20
    assert frame_budget(2, 1_000_000) == frame_budget(2, float("nan")) == 2 * MAX_RATE


@pytest.mark.parametrize("declared", [{"length": 10}, {"rate": 1_000_000}])
def test_a_job_whose_container_lies_stops_at_its_budget(tmp_path, declared):
    data = avi(tmp_path / "lie.avi", **declared)
    c = app(tmp_path / "jobs", max_seconds=1.5)
    r = upload(c, data, "lie.avi")
    assert r.status_code == 202, r.text  # it declares 1 s, or 0.00015 s
    done = wait(c, r.json()["id"])[-1]
    budget = frame_budget(1.5, 10 if "length" in declared else 1_000_000)
    assert done["status"] == "failed"
    assert done["error"] == f"lie.avi: more than {budget} frames, over the limit"
    assert done["files"] == {}


def test_a_photo_sent_as_a_video_is_415_without_a_server_path(tmp_path):
    c = app(tmp_path / "jobs")
    r = upload(c, (EXAMPLES / "astronaut.jpg").read_bytes(), "holiday.jpg")
    assert r.status_code == 415
    assert r.json()["detail"].startswith("holiday.jpg: not a")
    assert str(tmp_path) not in r.text and "/tmp" not in r.text


def test_an_avi_without_an_index_keeps_its_first_frame(tmp_path, monkeypatch):
    """Where the capture cannot seek back (an AVI with no index, with some FFmpeg builds),
    the frame read to prove the file is a video is the first frame processed."""
    real = cv2.VideoCapture

    class NoSeek:  # a capture whose seek does nothing, as with no index
        def __init__(self, *args):
            self.cap = real(*args)

        def set(self, prop, value):
            return False

        def __getattr__(self, name):
            return getattr(self.cap, name)

    avi(tmp_path / "noindex.avi", frames=30, index=False)
    monkeypatch.setattr(cv2, "VideoCapture", NoSeek)
    seen = []
    summary = process_video(VideoConfig(str(tmp_path / "noindex.avi")), _Frames(seen))
    assert summary.frames == 30 and summary.lost == []
    assert seen[0] < 2 and seen == sorted(seen)  # rising grey, from its first frame


class _Frames:
    def __init__(self, seen: list[float]) -> None:
        self.seen = seen

    def predict_image(self, image):
        self.seen.append(float(image.mean()))
        return []
