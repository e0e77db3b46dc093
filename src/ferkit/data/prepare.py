"""`ferkit data prepare`: read a FER-2013 source, validate it, write the cache."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS, SPLITS
from ferkit.data.cache import CACHE_FILE, FORMAT_VERSION, load_cache, read_manifest, write_cache
from ferkit.data.sources import IMAGE_SIZE, RawDataset, read_csv, read_folder, read_zip


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of one `prepare` run."""

    source: Path
    out: Path
    val_fraction: float = 0.1  # share of each class moved Training -> PublicTest when absent
    seed: int = 0  # seeds that carve; the same seed gives the same split
    max_unreadable: float = 0.01  # more than this share of unreadable images is an error
    force: bool = False  # rewrite even if the cache matches the source


@dataclass(frozen=True)
class PrepareResult:
    manifest: dict[str, Any]
    up_to_date: bool  # True when nothing was written because the cache already matched
    warnings: tuple[str, ...]


def fingerprint(source: Path) -> str:
    """SHA-256 of a source file, or of every file's relative path and content in a folder."""
    h = hashlib.sha256()
    if source.is_file():
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    for p in sorted(p for p in source.rglob("*") if p.is_file()):
        h.update(p.relative_to(source).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def read_source(source: Path, progress: Callable[[int], None] | None = None) -> RawDataset:
    """Pick the reader for what `source` is: a folder, a zip, or a CSV."""
    if not source.exists():
        raise FerkitError(f"{source}: no such file or directory")
    if not (source.is_file() or source.is_dir()):
        raise FerkitError(
            f"{source}: not a regular file or folder (a pipe or device may never end)"
        )
    if source.is_dir():
        return read_folder(source, progress)
    if source.suffix.lower() == ".csv":
        return read_csv(source, progress)
    if source.suffix.lower() == ".zip" or zipfile.is_zipfile(source):
        return read_zip(source, progress)
    raise FerkitError(
        f"{source}: not a FER-2013 source; expected a Kaggle zip, an extracted "
        "train/test folder, an <emotion>/<image> folder or fer2013.csv"
    )


def carve_validation(
    labels: np.ndarray, splits: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Move a stratified `fraction` of each class from Training to PublicTest.

    Deterministic: rows are taken in the order a `numpy.random.default_rng(seed)` permutation
    of each class's Training rows gives, at least one per class that has two or more.
    """
    splits = splits.copy()
    rng = np.random.default_rng(seed)
    for c in range(len(LABELS)):
        rows = np.flatnonzero((splits == 0) & (labels == c))
        if len(rows) < 2:
            continue
        n = max(1, round(fraction * len(rows)))
        splits[rng.permutation(rows)[:n]] = SPLITS.index("PublicTest")
    return splits


def count_cross_split_duplicates(images: np.ndarray, splits: np.ndarray) -> int:
    """Number of images whose exact pixels also occur in another split."""
    seen: dict[bytes, set[int]] = {}
    keys = [hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in images]
    for key, s in zip(keys, splits.tolist(), strict=True):
        seen.setdefault(key, set()).add(s)
    return sum(1 for key in keys if len(seen[key]) > 1)


def prepare(cfg: PrepareConfig, progress: Callable[[int], None] | None = None) -> PrepareResult:
    """Read, validate and cache `cfg.source` into `cfg.out`; a no-op if already done."""
    source = cfg.source
    if not source.exists():
        raise FerkitError(f"{source}: no such file or directory")
    if not (source.is_file() or source.is_dir()):
        raise FerkitError(
            f"{source}: not a regular file or folder (a pipe or device may never end)"
        )
    digest = fingerprint(source)
    old = read_manifest(cfg.out)
    if old is not None:  # "already prepared" only for a cache that loads whole
        try:
            load_cache(cfg.out)
        except FerkitError:
            old = None
    # what decides the cache's contents besides the source; a change rebuilds it
    options = {"val_fraction": cfg.val_fraction, "seed": cfg.seed}
    if (
        not cfg.force
        and old is not None
        and old.get("source_sha256") == digest
        and old.get("format_version") == FORMAT_VERSION
        and old.get("options") == options
    ):
        return PrepareResult(manifest=old, up_to_date=True, warnings=())
    warnings = []
    if old is None and (cfg.out / CACHE_FILE).is_file():
        warnings.append(f"{cfg.out / CACHE_FILE} was damaged (truncated?); rebuilding it")

    raw = read_source(source, progress)
    total = len(raw.ids) + len(raw.unreadable)
    if total == 0:
        raise FerkitError(f"{source}: no images found (empty source)")
    if raw.unreadable:
        share = len(raw.unreadable) / total
        first = ", ".join(raw.unreadable[:3])
        msg = f"{len(raw.unreadable)} of {total} images unreadable ({share:.1%}), e.g. {first}"
        if share > cfg.max_unreadable:
            raise FerkitError(f"{source}: {msg}; more than {cfg.max_unreadable:.0%} is an error")
        warnings.append(f"skipped {msg}")

    splits, split_source = raw.splits, raw.split_source
    public = SPLITS.index("PublicTest")
    if not (splits == public).any():
        splits = carve_validation(raw.labels, splits, cfg.val_fraction, cfg.seed)
        carved = (
            f"no PublicTest in the source: carved {cfg.val_fraction:.0%} of each Training "
            f"class as PublicTest (stratified, seed {cfg.seed})"
        )
        split_source += f"; {carved}"
        warnings.append(carved)

    duplicates = count_cross_split_duplicates(raw.images, splits)
    if duplicates:
        warnings.append(f"{duplicates} images have identical pixels in another split")

    counts = {
        s: dict(
            zip(LABELS, np.bincount(raw.labels[splits == i], minlength=7).tolist(), strict=True)
        )
        for i, s in enumerate(SPLITS)
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": str(source.resolve()),
        "source_kind": raw.kind,
        "source_sha256": digest,
        "options": options,
        "labels": list(LABELS),
        "splits": list(SPLITS),
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
        "rows": len(raw.ids),
        "counts": counts,
        "split_source": split_source,
        "unreadable_skipped": len(raw.unreadable),
        "cross_split_duplicates": duplicates,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_cache(cfg.out, raw.images, raw.labels, splits, raw.ids, manifest)
    return PrepareResult(manifest=manifest, up_to_date=False, warnings=tuple(warnings))
