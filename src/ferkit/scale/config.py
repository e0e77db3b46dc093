"""The Ray engine's settings, every default written once: `RayConfig` for photos,
`RayVideoConfig` for videos. Apart from the engine, so `ferkit predict --help` reads its
defaults from here without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferkit.vision.tracking import Tracker


@dataclass(frozen=True)
class RayConfig:
    inputs: tuple[str, ...]  # local files, or URIs of files and folders (`s3://...`)
    out: str  # a folder or URI for the Parquet files
    address: str | None = None  # None: a local cluster on loopback; "auto", "ray://HOST:PORT"
    actors: int = 1  # recognisers, each with its own model
    actor_cpus: float = 1.0  # CPUs reserved per actor (fractions allowed)
    batch_size: int = 16  # files per call of an actor
    resume: bool = False  # skip the files whose rows cfg.out holds already
    recognizer: dict[str, Any] = field(default_factory=dict)  # EmotionRecognizer's kwargs
    detect: bool = True


@dataclass(frozen=True)
class RayVideoConfig:
    videos: tuple[str, ...]  # paths every node can read (shared storage on a cluster)
    out: str  # a folder: one subfolder of results per video, and summary.parquet
    address: str | None = None
    task_cpus: float = 1.0  # CPUs per video task
    smoothing: float = Tracker.smoothing
    recognizer: dict[str, Any] = field(default_factory=dict)
