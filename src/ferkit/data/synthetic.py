"""Synthetic cartoon faces in every source format, for the tests and benchmarks.

Each emotion gets its own mouth, brows and eyes, drawn with random jitter and noise, so
the data is learnable but not trivial. No real faces, and no dataset to ship.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from ferkit.core.labels import LABELS, SPLITS

SIZE = 48


def draw_face(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One grayscale cartoon face showing LABELS[label], `size`x`size` uint8."""
    import cv2

    s = size / 48.0  # all geometry below is in 48-pixel units
    img = np.full((size, size), int(rng.integers(20, 70)), np.uint8)
    cx, cy = size / 2 + rng.normal(0, 1.2 * s), size / 2 + rng.normal(0, 1.2 * s)

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(cx + x * s), round(cy + y * s)

    skin = int(rng.integers(150, 220))
    cv2.ellipse(img, pt(0, 0), (int(17 * s), int(21 * s)), 0, 0, 360, skin, -1)
    name = LABELS[label]
    eye_h = {"surprise": 4, "fear": 4, "happy": 1, "angry": 1, "disgust": 1}.get(name, 2)
    for side in (-1, 1):
        cv2.ellipse(img, pt(side * 7, -5), (int(3 * s), max(1, int(eye_h * s))), 0, 0, 360, 30, -1)
        # Brow tilt: inner end down for anger/disgust, up for sadness/fear.
        tilt = {"angry": 3, "disgust": 2, "sad": -3, "fear": -2, "surprise": -1}.get(name, 0)
        lift = -4 if name in ("surprise", "fear") else 0
        inner, outer = pt(side * 3, -10 + tilt + lift), pt(side * 11, -10 - tilt + lift)
        cv2.line(img, inner, outer, 40, max(1, int(1.5 * s)))
    mouth = pt(0, 10)
    if name == "happy":
        cv2.ellipse(img, mouth, (int(8 * s), int(5 * s)), 0, 0, 180, 40, max(1, int(2 * s)))
    elif name == "sad":
        cv2.ellipse(img, pt(0, 13), (int(7 * s), int(4 * s)), 0, 180, 360, 40, max(1, int(2 * s)))
    elif name in ("surprise", "fear"):
        cv2.ellipse(
            img, mouth, (int(4 * s), int(6 * s if name == "surprise" else 3 * s)), 0, 0, 360, 30, -1
        )
    elif name == "disgust":
        cv2.line(img, pt(-7, 11), pt(7, 8), 40, max(1, int(2 * s)))
    elif name == "angry":
        cv2.rectangle(img, pt(-6, 9), pt(6, 12), 35, -1)
    else:  # neutral
        cv2.line(img, pt(-7, 10), pt(7, 10), 40, max(1, int(2 * s)))
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_dataset(
    per_class: dict[str, int], seed: int = 0, size: int = SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces, labels and split codes with `per_class[split]` faces per class and split."""
    rng = np.random.default_rng(seed)
    images, labels, splits = [], [], []
    for split, n in per_class.items():
        for label in range(len(LABELS)):
            for _ in range(n):
                images.append(draw_face(label, rng, size))
                labels.append(label)
                splits.append(SPLITS.index(split))
    return np.stack(images), np.asarray(labels), np.asarray(splits)


def _encode(img: np.ndarray, ext: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, img)
    assert ok, ext
    return buf.tobytes()


def kaggle_paths(labels: np.ndarray, splits: np.ndarray, ext: str = ".jpg") -> list[str]:
    """Kaggle-layout member names (`train/<class>/Training_<i>.jpg`, ...) for each row."""
    top = {0: "train", 1: "test", 2: "test"}
    return [
        f"{top[int(s)]}/{LABELS[int(y)]}/{SPLITS[int(s)]}_{i}{ext}"
        for i, (y, s) in enumerate(zip(labels, splits, strict=True))
    ]


def write_kaggle_zip(
    path: Path, images: np.ndarray, labels: np.ndarray, splits: np.ndarray
) -> Path:
    """Write a zip laid out like Kaggle's msambare/fer2013 download."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, img in zip(kaggle_paths(labels, splits), images, strict=True):
            zf.writestr(name, _encode(img, ".jpg"))
    return path


def write_tree(root: Path, images: np.ndarray, names: list[str]) -> Path:
    """Write images under `root` at the relative `names` (format from the suffix)."""
    for name, img in zip(names, images, strict=True):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_encode(img, p.suffix))
    return root


def write_csv(
    path: Path, images: np.ndarray, labels: np.ndarray, splits: np.ndarray, icml: bool = False
) -> Path:
    """Write `fer2013.csv` (`emotion,pixels,Usage`) or the icml one (`emotion, Usage, pixels`)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["emotion", " Usage", " pixels"] if icml else ["emotion", "pixels", "Usage"])
    for img, y, s in zip(images, labels, splits, strict=True):
        pixels = " ".join(map(str, img.reshape(-1).tolist()))
        usage = SPLITS[int(s)]
        w.writerow([int(y), usage, pixels] if icml else [int(y), pixels, usage])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path
