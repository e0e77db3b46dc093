"""`ferkit video`: emotions of the faces in a video file or a webcam stream.

Each frame goes through the same `EmotionRecognizer.predict_image` as photos, and faces are
tracked across frames by `vision.tracking.Tracker` (the web page's live stream uses it too).
Outputs: an annotated video at the source frame rate, a per-frame CSV, and timeline.png.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from ferkit.apps.records import COLUMNS, FaceRecord
from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.core.limits import check_frame_size
from ferkit.vision.recognize import EmotionRecognizer
from ferkit.vision.tracking import Tracker


@dataclass(frozen=True)
class VideoConfig:
    source: str  # a file path, or a camera index as a string with camera=True
    out: Path | None = None  # annotated .mp4
    csv: Path | None = None  # per-frame rows
    timeline: Path | None = None  # emotion_timeline png
    camera: bool = False
    smoothing: float = Tracker.smoothing  # the tracker's settings (`Tracker`)
    iou_match: float = Tracker.iou_match
    max_missed: int = Tracker.max_missed
    # frames to read at most, counted as they are read (a container's count and rate can
    # lie): `frame_budget`. None: no limit
    max_frames: int | None = None
    name: str | None = None  # what errors call the video (a job's upload name); None: source


# frames per second that a frame budget grants at most, whatever the container declares
# (a file declaring 1,000,000 fps would otherwise make any number of frames "0.1 s")
MAX_RATE = 60.0


def frame_budget(seconds: float, fps: float) -> int:
    """Frames that `seconds` of video at its declared `fps` may hold, `fps` taken at most
    `MAX_RATE`: the limit `process_video` counts as it reads."""
    rate = fps if math.isfinite(fps) and fps > 0 else MAX_RATE
    return math.ceil(seconds * min(rate, MAX_RATE))


def _has_display() -> bool:
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


WINDOW = "ferkit (q to quit)"


def can_show() -> bool:
    """Whether this OpenCV can open a window here: a display, and a build with windows
    (ferkit's own dependency is the headless wheel, which has none)."""
    import cv2

    if not _has_display():
        return False
    try:
        cv2.namedWindow(WINDOW)
    except cv2.error:
        return False
    return True


def open_capture(cfg: VideoConfig):
    """(capture, its first frame): a file's first frame is read here to prove it is a video,
    and handed on rather than sought back to (seeking fails silently in an AVI with no
    index, which lost its first frame so). A camera's first frame is None."""
    import cv2

    if cfg.camera:
        if not (cfg.out or cfg.csv or cfg.timeline) and not can_show():
            raise FerkitError(
                "--camera with no window to show it in (no display, or ferkit's headless "
                "OpenCV): give --out or --csv to record the camera's faces until Ctrl-C, or "
                "use the browser's live mode: `ferkit serve`, open http://127.0.0.1:8000, "
                "choose Live"
            )
        cap = cv2.VideoCapture(int(cfg.source))
        if not cap.isOpened():
            raise FerkitError(f"camera {cfg.source}: cannot open it")
        return cap, None
    path = Path(cfg.source)
    if not path.is_file():
        what = "not a regular file (a pipe or device)" if path.exists() else "no such video file"
        raise FerkitError(f"{path}: {what}")
    # FFmpeg prints a line per damaged packet; ferkit reports lost frames itself
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cap = cv2.VideoCapture(str(path))
    if cap.isOpened():  # the declared frame size, before the first frame is decoded
        size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        check_frame_size(int(size[0]), int(size[1]), str(path))
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        raise FerkitError(f"{cfg.name or path}: not a readable video")
    return cap, first


MAX_LOST_RUN = 250  # frames: a damaged stretch longer than this (10 s at 25 fps) ends a video


def frames(
    cap, total: int, lost: list[int], first: np.ndarray | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) in order. Frames that fail to decode between two that do (a damaged
    stretch) are skipped and their indices added to `lost`: the video goes on. Reading ends
    at the first failure past `total` (the container's count), or after MAX_LOST_RUN
    failures in a row; how many frames the end then lacks is the caller's to judge
    (`total` is an estimate in some containers)."""
    i, failed = 0, []
    if first is not None:  # read already by open_capture
        yield 0, first
        i = 1
    while True:
        ok, frame = cap.read()
        if ok:
            lost += failed
            failed = []
            yield i, frame
        elif i >= total or len(failed) >= MAX_LOST_RUN:
            return
        else:
            failed.append(i)
        i += 1


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: OpenCV's FFmpeg backend prints with fprintf,
    past Python and past OpenCV's own log level."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# suffix -> the codec OpenCV's wheels can write into it: MPEG-4 Part 2 in mp4 (fast, plays in
# desktop players but not in browsers), VP8 in WebM (every browser plays it; slower to
# encode). The wheels' FFmpeg has no H.264 encoder, and VP9 is far too slow for this.
VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP80"}


class _VideoFile:
    """A video written to a hidden temporary name and renamed into place when complete
    (OpenCV picks the container from the suffix, so `atomic_path`'s .tmp will not do)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, path.with_name(f".{path.stem}.partial{path.suffix}")
        codec = VIDEO_CODECS.get(path.suffix.lower(), "mp4v")
        with _quiet_stderr():  # WebM has no codec tags: OpenCV prints so, then uses VP8 anyway
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*codec), fps, size)
        if not self.writer.isOpened():
            raise FerkitError(f"{path}: OpenCV cannot write a {path.suffix} video here")

        self.written = 0

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)
        self.written += 1

    def close(self, ok: bool) -> None:
        """Publish the video if `ok` and it reads back whole; OpenCV's writer says nothing
        when the disk fills, and leaves a file with no index that no player opens."""
        self.writer.release()
        try:
            if ok:
                self.check()
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)

    def check(self) -> None:
        import cv2

        cap = cv2.VideoCapture(str(self.tmp))
        try:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            readable = cap.isOpened() and cap.read()[0]
        finally:
            cap.release()
        # frames: WebM's count is estimated from its duration, so allow a little
        if not readable or count < self.written - max(2, self.written // 50):
            raise FerkitError(
                f"{self.path}: the video did not write whole ({count} of {self.written} "
                "frames read back; is the disk full?); nothing was written"
            )


@dataclass
class VideoSummary:
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    fps_source: float = 0.0
    seconds: float = 0.0
    lost: list[int] = field(default_factory=list)  # damaged frames between readable ones
    cut_short: int = 0  # frames the container declares after the last readable one

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def process_video(
    cfg: VideoConfig,
    rec: EmotionRecognizer,
    on_frame: Callable[[int, int], None] = lambda i, total: None,
    stdout: TextIO | None = None,
) -> VideoSummary:
    """Run the whole video; writes cfg.out, cfg.csv and cfg.timeline (each atomically),
    and the per-frame rows to `stdout` when given."""
    import time

    import cv2

    from ferkit.evaluation.plots import emotion_timeline
    from ferkit.vision.draw import draw_faces

    cap, first = open_capture(cfg)
    name = cfg.name or cfg.source
    name_row = None if cfg.camera else str(name)  # the rows' path: a camera has none
    show = cfg.camera and can_show()  # a camera without a window records until Ctrl-C
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0  # some webcams and containers report 0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not cfg.camera else 0
    tracker = Tracker(cfg.smoothing, cfg.iou_match, cfg.max_missed)
    rows = io.StringIO()
    table = csv.writer(rows, lineterminator="\n")
    table.writerow(COLUMNS)
    times: dict[int, list[float]] = {}
    probs: dict[int, list[list[float]]] = {}
    summary = VideoSummary(fps_source=fps)
    writer: _VideoFile | None = None
    ok = False
    start = time.perf_counter()
    try:
        last = -1
        try:
            for i, frame in frames(cap, total, summary.lost, first):
                if cfg.max_frames is not None and summary.frames >= cfg.max_frames:
                    raise FerkitError(f"{name}: more than {cfg.max_frames} frames, over the limit")
                last = i
                t = i / fps
                tracked = tracker.update(rec.predict_image(frame))
                for n, (fid, face) in enumerate(tracked):
                    table.writerow(FaceRecord(face, n, name_row, i, t, fid).csv())
                    p = [face.probs[k] for k in LABELS]
                    times.setdefault(fid, []).append(t)
                    probs.setdefault(fid, []).append(p)
                summary.frames, summary.faces = summary.frames + 1, summary.faces + len(tracked)
                if cfg.out or show:
                    drawn = draw_faces(frame, [f for _, f in tracked])
                    if cfg.out:
                        if writer is None:
                            writer = _VideoFile(cfg.out, fps, (frame.shape[1], frame.shape[0]))
                        writer.write(drawn)
                    if show:
                        cv2.imshow(WINDOW, drawn)
                        if cv2.waitKey(1) & 0xFF == ord("q"):
                            break
                summary.seconds = time.perf_counter() - start
                on_frame(i + 1, total)
        except KeyboardInterrupt:  # how a camera recording without a window ends
            if not cfg.camera:
                raise
        ok = summary.frames > 0
        summary.cut_short = max(0, total - last - 1)
    finally:
        cap.release()
        if writer is not None:
            writer.close(ok)
        if show:
            cv2.destroyAllWindows()
    if not ok:
        raise FerkitError(f"{name}: no frames could be read")
    summary.tracks = tracker.next_id
    if cfg.csv:
        with atomic_path(cfg.csv) as tmp:
            tmp.write_text(rows.getvalue(), encoding="utf-8")
    if stdout is not None:  # no file asked for: the rows, as `predict` prints its own
        stdout.write(rows.getvalue())
    if cfg.timeline:
        emotion_timeline(times, probs, cfg.timeline)
    return summary
