"""The server's settings, every default written once: `ServeConfig` for the REST API and
the page, `StreamConfig` for `/v1/stream`, `JobsConfig` for `/v1/jobs`. Apart from the
modules that run the server, so `ferkit serve --help` reads its defaults from here without
loading the server (docs/serving.md names each field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ferkit.core.errors import FerkitError
from ferkit.vision.detect import DEFAULT_DETECTOR
from ferkit.vision.tracking import Tracker


def positive(cfg: object, kind: str, names: tuple[str, ...]) -> None:
    """A one-line error for the first of the limits `names` of `cfg` that is not > 0 (NaN
    included)."""
    for name in names:
        if not getattr(cfg, name) > 0:
            raise FerkitError(f"{kind} limit {name} must be positive, not {getattr(cfg, name)}")


@dataclass(frozen=True)
class StreamConfig:
    max_streams: int = 4  # open at once, per worker process
    max_frame_kb: int = 512  # KiB of one encoded frame (a 640x480 JPEG is 30-60 KiB)
    max_frame_pixels: int = 1280 * 720  # per frame, from its header, before decoding
    # frames a client may send per second, on average: a bucket of max_fps frames refills
    # at max_fps a second, so a 30 fps camera's jitter passes and a flood is closed
    max_fps: float = 30.0
    idle_s: float = 30.0  # seconds without a frame before the server closes the stream
    smoothing: float = Tracker.smoothing  # the tracker's settings (`Tracker`)
    iou_match: float = Tracker.iou_match
    max_missed: int = Tracker.max_missed

    def __post_init__(self) -> None:
        positive(self, "stream", ("max_streams", "max_frame_kb", "max_frame_pixels", "max_fps",
                                  "idle_s"))  # fmt: skip


@dataclass(frozen=True)
class JobsConfig:
    root: Path | None = None  # the jobs' folders; None: a temporary folder for this server
    max_video_mb: float = 50.0  # per upload
    # s of video: checked from the container's count and rate, then counted as frames are
    # read (`apps.video.frame_budget`), since both can lie
    max_seconds: float = 120.0
    max_frame_pixels: int = 1920 * 1080  # per frame, from the container, before decoding
    max_jobs: int = 2  # queued or running at once, all workers together
    keep_s: float = 900.0  # s a finished job's results stay

    def __post_init__(self) -> None:
        positive(self, "job", ("max_video_mb", "max_seconds", "max_frame_pixels", "max_jobs",
                               "keep_s"))  # fmt: skip


@dataclass(frozen=True)
class ServeConfig:
    model: str | None = None  # ONNX file; None: the shipped model
    detector: str = DEFAULT_DETECTOR
    min_face: int | None = None  # px; None: the detector's own
    max_upload_mb: float = 10.0  # per file
    max_request_mb: float = 64.0  # a batch request's whole body, read no further
    max_pixels: int = 40_000_000  # decompression-bomb guard (a 40 MP photo is fine)
    # photos decoded and analysed at once per worker process; the rest wait their turn,
    # holding only their bytes. Each costs about 10 bytes a pixel at its peak (Pillow's 4
    # and the BGR copy's 3 while decoding, then the PNG encoder's): 400 MB at 40 MP
    decode_slots: int = 2
    max_batch: int = 32  # files per batch request
    stream: StreamConfig = field(default_factory=StreamConfig)  # /v1/stream's limits
    jobs: JobsConfig = field(default_factory=JobsConfig)  # /v1/jobs' limits
