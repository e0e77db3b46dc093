"""`ferkit predict`: recognise faces in many image files, write rows and annotated copies.

One row per face (JSON Lines or CSV), with the source path. Per-file problems (unreadable,
not an image, no face) are reported and counted, and never stop the batch.
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

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.vision.images import load_photo
from ferkit.vision.recognize import EmotionRecognizer, Face

CSV_FIELDS = ("path", "face", "x", "y", "width", "height", "score", "label", "confidence")


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


def face_row(path: str, index: int, face: Face) -> dict:
    return {"path": path, "face": index, **face.to_dict()}


def csv_row(row: dict) -> list:
    x, y, w, h = row["box"]
    head = [row["path"], row["face"], x, y, w, h, row["score"], row["label"]]
    return [*head, f"{row['confidence']:.6f}", *(f"{row['probs'][k]:.6f}" for k in LABELS)]


class RowWriter:
    """JSON Lines or CSV rows to a text stream."""

    def __init__(self, stream: io.TextIOBase, fmt: str) -> None:
        if fmt not in ("json", "csv"):
            raise FerkitError(f"unknown format {fmt!r}; choose json or csv")
        self.stream, self.fmt = stream, fmt
        self.csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self.csv:
            self.csv.writerow([*CSV_FIELDS, *LABELS])

    def write(self, row: dict) -> None:
        if self.csv:
            self.csv.writerow(csv_row(row))
        else:
            self.stream.write(json.dumps(row) + "\n")
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


def plan_outputs(paths: list[Path], out: Path) -> dict[Path, Path]:
    """Each input's annotated copy under `out` (see `annotated_name`). Two inputs that would
    share a name (a.jpg and a.jpeg) keep apart (a.jpg, a.jpeg.jpg), and an `out` where a
    copy would replace its own input (`--out` = the photos' folder) is refused up front."""
    root, inputs = common_root(paths), {p.resolve() for p in paths}
    plan: dict[Path, Path] = {}
    used: set[Path] = set()
    # a file whose copy keeps its own name (a.jpg) gets it before one renamed to it (a.jpeg)
    for path in sorted(paths, key=lambda p: annotated_name(p, root).name != p.name):
        name = annotated_name(path, root)
        if name in used:
            name = name.with_name(path.name + name.suffix)
        used.add(name)
        if (out / name).resolve() in inputs:
            raise FerkitError(
                f"{out}: the annotated copy of {path} would overwrite the photo "
                f"{out / name}; choose another --out"
            )
        plan[path] = out / name
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
    """Run the batch: rows to `cfg.out/predictions.{jsonl,csv}` (atomically, at the end) or
    to `stdout` as they come; annotated images under `cfg.out`. `on_file(path, problem)` is
    called once per file with a one-line problem or None (for progress bars and reports)."""
    from ferkit.vision.draw import draw_faces

    summary, paths = Summary(), list(cfg.inputs)
    targets = plan_outputs(paths, cfg.out) if cfg.out else {}
    buffer = io.StringIO()
    writer = RowWriter(buffer if cfg.out else stdout, cfg.format)
    start = time.perf_counter()
    for path in paths:
        summary.images += 1
        try:
            photo = load_photo(path)
            found = rec.predict_image(photo.image, detect=cfg.detect)
            if cfg.out:  # drawn at the size it was read (`WORK_SIDE`); rows in its pixels
                write_image(targets[path], draw_faces(photo.image, found, inplace=True))
            faces = [f.scaled(photo.scale) for f in found]
        except FerkitError as exc:
            summary.errors.append(str(exc))
            on_file(path, str(exc))
            continue
        for i, face in enumerate(faces):
            writer.write(face_row(str(path), i, face))
        summary.faces += len(faces)
        if not faces:
            summary.no_face.append(str(path))
        on_file(path, None if faces else f"{path}: no face found")
    summary.seconds = time.perf_counter() - start
    if cfg.out:
        suffix = "jsonl" if cfg.format == "json" else "csv"
        cfg.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(cfg.out / f"predictions.{suffix}") as tmp:
            tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return summary
