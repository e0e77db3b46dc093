"""`ferkit predict`: recognise faces in many image files, write rows and annotated copies.

One face record per face (JSON Lines or CSV: `ferkit.apps.records`). Per-file problems
(unreadable, not an image, no face) are reported and counted, and never stop the batch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferkit.apps.records import COLUMNS, FaceRecord
from ferkit.core.atomic import atomic_path, write_text
from ferkit.core.errors import FerkitError
from ferkit.vision.images import load_photo
from ferkit.vision.recognize import EmotionRecognizer


@dataclass(frozen=True)
class PredictConfig:
    inputs: tuple[Path, ...]  # image files (`ferkit.vision.images.find_images` expands folders)
    out: Path | None = None  # None: rows to stdout, no annotated images
    format: str = "json"  # "json" (JSON Lines) or "csv"
    detect: bool = True  # False: each image is one already-cropped face


@dataclass
class Summary:
    images: int = 0
    faces: int = 0
    no_face: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "path: reason"
    seconds: float = 0.0

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"{self.images} images, {self.faces} faces, {len(self.no_face)} with no face, "
            f"{len(self.errors)} errors; {self.faces_per_s:.1f} faces/s"
        )


class RowWriter:
    """Face records as JSON Lines or CSV rows to a text stream."""

    def __init__(self, stream: io.TextIOBase, fmt: str) -> None:
        if fmt not in ("json", "csv"):
            raise FerkitError(f"unknown format {fmt!r}; choose json or csv")
        self.stream, self.fmt = stream, fmt
        self.csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self.csv:
            self.csv.writerow(COLUMNS)

    def write(self, record: FaceRecord) -> None:
        if self.csv:
            self.csv.writerow(record.csv())
        else:
            self.stream.write(json.dumps(record.json()) + "\n")
        self.stream.flush()


def annotated_name(path: Path, root: Path) -> Path:
    """Where a file's annotated copy goes under `--out`: its path relative to the common root
    of all inputs (so same-named files in different folders do not collide); PNG stays PNG,
    anything else becomes JPEG."""
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        rel = Path(path.name)
    suffix = ".png" if path.suffix.lower() == ".png" else ".jpg"
    return rel.with_name(rel.stem + suffix)


def common_root(paths: list[Path]) -> Path:
    parents = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else Path.cwd()


MANIFEST = ".ferkit-annotated"  # under --out: the annotated copies ferkit wrote there


def written_before(out: Path) -> set[str]:
    """The annotated copies an earlier `predict --out` wrote in `out` (relative paths)."""
    try:
        return set((out / MANIFEST).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return set()


def plan_outputs(paths: list[Path], out: Path) -> dict[Path, Path]:
    """Each input's annotated copy under `out` (see `annotated_name`). Like names keep apart
    (a.jpg, a.jpeg and a.jpeg.jpg give a.jpg, a.jpeg.jpg and a.jpeg-2.jpg). Refused up front:
    a copy that would replace one of the inputs, or any file in `out` that an earlier run
    did not write (its manifest, `MANIFEST`, says which it did)."""
    root, inputs = common_root(paths), {p.resolve() for p in paths}
    ours = written_before(out)
    plan: dict[Path, Path] = {}
    used: set[Path] = set()
    # a file whose copy keeps its own name (a.jpg) gets it before one renamed to it (a.jpeg)
    for path in sorted(paths, key=lambda p: annotated_name(p, root).name != p.name):
        name = annotated_name(path, root)
        if name in used:
            name = name.with_name(path.name + name.suffix)
        n = 2
        while name in used:
            name = name.with_name(f"{path.name}-{n}{name.suffix}")
            n += 1
        used.add(name)
        target = out / name
        if target.resolve() in inputs:
            raise FerkitError(
                f"{out}: the annotated copy of {path} would overwrite the photo "
                f"{target}; choose another --out"
            )
        if (target.exists() or target.is_symlink()) and name.as_posix() not in ours:
            raise FerkitError(
                f"{target}: exists and is not an annotated copy ferkit wrote; "
                "choose an empty --out or move it"
            )
        plan[path] = target
    return plan


def write_image(path: Path, image) -> None:
    """Encode and write atomically (cv2.imwrite would leave half a file on failure)."""
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix == ".jpg" else []
    ok, buf = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise FerkitError(f"{path}: cannot encode the annotated image")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def predict_files(
    cfg: PredictConfig,
    rec: EmotionRecognizer,
    stdout: io.TextIOBase,
    on_file: Callable[[Path, str | None], None] = lambda p, problem: None,
) -> Summary:
    """Run the batch: rows to `cfg.out/predictions.{jsonl,csv}` (written as they come under
    a temporary name, published at the end: a full disk loses no row already written) or
    to `stdout`; annotated images under `cfg.out`. `on_file(path, problem)` is called once
    per file with a one-line problem or None (for progress bars and reports)."""
    paths = list(cfg.inputs)
    if not cfg.out:
        return _batch(cfg, rec, paths, {}, stdout, on_file)
    targets = plan_outputs(paths, cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    suffix = "jsonl" if cfg.format == "json" else "csv"
    rows = cfg.out / f"predictions.{suffix}"
    with atomic_path(rows) as tmp, open(tmp, "w", encoding="utf-8", newline="") as stream:
        summary = _batch(cfg, rec, paths, targets, stream, on_file)
    written = {t.relative_to(cfg.out).as_posix() for t in targets.values() if t.exists()}
    names = sorted(written_before(cfg.out) | written)
    write_text(cfg.out / MANIFEST, "".join(f"{n}\n" for n in names))
    return summary


def _batch(
    cfg: PredictConfig,
    rec: EmotionRecognizer,
    paths: list[Path],
    targets: dict[Path, Path],
    stream: io.TextIOBase,
    on_file: Callable[[Path, str | None], None],
) -> Summary:
    from ferkit.vision.draw import draw_faces

    summary = Summary()
    writer = RowWriter(stream, cfg.format)
    start = time.perf_counter()
    for path in paths:
        summary.images += 1
        try:
            photo = load_photo(path)
            found = rec.predict_image(photo.image, detect=cfg.detect)
        except FerkitError as exc:
            summary.errors.append(str(exc))
            on_file(path, str(exc))
            continue
        for i, face in enumerate(found):  # boxes in the photo's pixels
            writer.write(FaceRecord(face.scaled(photo.scale), i, str(path)))
        summary.faces += len(found)
        problem = None if found else f"{path}: no face found"
        if not found:
            summary.no_face.append(str(path))
        if targets:  # drawn at the size it was read (`WORK_SIDE`), after its rows are kept
            try:
                write_image(targets[path], draw_faces(photo.image, found, inplace=True))
            except FerkitError as exc:  # a full disk: named, and the batch goes on
                summary.errors.append(str(exc))
                problem = str(exc)
        on_file(path, problem)
    summary.seconds = time.perf_counter() - start
    return summary
