"""The prepared-data cache: one `.npz` file plus a human-readable `manifest.json`.

`cache.npz` (uncompressed, so loading is one read of ~83 MB for FER-2013) holds
`images` (N, 48, 48) uint8, `labels` (N,) int64 in FER-2013 order, `splits` (N,) int8
indexing `SPLITS`, `ids` (N,) str with the original file or CSV row, and `manifest`,
the same JSON as `manifest.json`. The cache carries its own manifest so that the one
atomic rename that publishes it also publishes its description.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.atomic import atomic_path, write_text
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS, SPLITS

FORMAT_VERSION = 1
CACHE_FILE = "cache.npz"
MANIFEST_FILE = "manifest.json"
# what numpy raises for a truncated or overwritten .npz (it is a zip inside)
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def resize_faces(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 faces [N, H, W] at `size` px a side (area interpolation, as
    `Classifier.preprocess` resizes a crop); unchanged when `size` is 0 or already theirs."""
    if not size or images.shape[1:] == (size, size):
        return images
    import cv2  # only here: loading a cache at its own size needs no OpenCV

    area = cv2.INTER_AREA
    return np.stack([cv2.resize(f, (size, size), interpolation=area) for f in images])


@dataclass(frozen=True)
class Cache:
    """A loaded FER-2013 cache. Arrays are read-only views of one file read."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    ids: np.ndarray
    manifest: dict[str, Any]

    def split(self, name: str, size: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one split (`Training`, `PublicTest` or `PrivateTest`).
        `size` > 0: the faces resized to `size` px a side (area interpolation, uint8), as
        `Classifier.preprocess` resizes a crop for a network of that input size."""
        if name not in SPLITS:
            raise FerkitError(f"unknown split '{name}'; expected one of {', '.join(SPLITS)}")
        mask = self.splits == SPLITS.index(name)
        if not mask.any():
            raise FerkitError(f"the cache has no {name} rows")
        return resize_faces(self.images[mask], size), self.labels[mask]

    def counts(self) -> dict[str, list[int]]:
        """Per-split, per-class row counts (classes in FER-2013 order)."""
        return {
            s: np.bincount(self.labels[self.splits == i], minlength=len(LABELS)).tolist()
            for i, s in enumerate(SPLITS)
        }


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of an existing, complete cache in `out_dir`, or None (none, or damaged)."""
    cache = out_dir / CACHE_FILE
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            return json.loads(str(z["manifest"]))
    except DAMAGED:
        return None


def write_cache(
    out_dir: Path,
    images: np.ndarray,
    labels: np.ndarray,
    splits: np.ndarray,
    ids: list[str],
    manifest: dict[str, Any],
) -> None:
    """Write the cache atomically: a crash leaves the previous cache (or none), never half."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2)
    with atomic_path(out_dir / CACHE_FILE) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            images=np.ascontiguousarray(images, np.uint8),
            labels=np.asarray(labels, np.int64),
            splits=np.asarray(splits, np.int8),
            ids=np.asarray(ids, dtype=str),
            manifest=np.asarray(text),
        )
    write_text(out_dir / MANIFEST_FILE, text + "\n")


def load_cache(path: str | Path) -> Cache:
    """Load a cache written by `ferkit data prepare` (a directory or its `cache.npz`)."""
    path = Path(path)
    file = path / CACHE_FILE if path.is_dir() else path
    if not file.is_file():
        raise FerkitError(
            f"{path}: no prepared data; run `ferkit data prepare SOURCE --out {path}`"
        )
    try:
        with np.load(file, allow_pickle=False) as z:
            manifest = json.loads(str(z["manifest"]))
            if manifest.get("format_version") != FORMAT_VERSION:
                raise FerkitError(
                    f"{file}: cache format {manifest.get('format_version')} is not "
                    f"{FORMAT_VERSION}; prepare the data again"
                )
            arrays = {k: z[k] for k in ("images", "labels", "splits", "ids")}
    except DAMAGED as exc:
        raise FerkitError(
            f"{file}: damaged or not a ferkit cache ({exc}); rebuild it with "
            f"`ferkit data prepare SOURCE --out {file.parent} --force`"
        ) from None
    check_consistent(arrays, file)
    for a in arrays.values():
        a.flags.writeable = False
    return Cache(manifest=manifest, **arrays)


def check_consistent(arrays: dict[str, np.ndarray], file: Path) -> None:
    """One line when the arrays disagree with each other or with FER-2013's shapes (a cache
    edited by another tool): trained on, they would fail deep inside torch."""
    images, labels, splits, ids = (arrays[k] for k in ("images", "labels", "splits", "ids"))
    n = len(images)
    problems = []
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
        problems.append(f"images are {images.dtype} {images.shape}, not uint8 (N, S, S)")
    for name, a in (("labels", labels), ("splits", splits), ("ids", ids)):
        if a.shape != (n,):
            problems.append(f"{name} {a.shape} for {n} images")
    if (
        labels.size
        and labels.dtype.kind in "iu"
        and not 0 <= labels.min() <= labels.max() < len(LABELS)
    ):
        problems.append(f"labels outside 0..{len(LABELS) - 1} ({labels.min()}..{labels.max()})")
    if (
        splits.size
        and splits.dtype.kind in "iu"
        and not 0 <= splits.min() <= splits.max() < len(SPLITS)
    ):
        problems.append(f"splits outside 0..{len(SPLITS) - 1} ({splits.min()}..{splits.max()})")
    if problems:
        raise FerkitError(
            f"{file}: inconsistent ({'; '.join(problems)}); rebuild it with "
            f"`ferkit data prepare SOURCE --out {file.parent} --force`"
        )
