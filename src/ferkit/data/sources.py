"""Readers for the forms FER-2013 reaches users in.

Each reader returns a `RawDataset`: 48x48 uint8 faces, FER-2013 label indices, a split
code per row (index into `ferkit.SPLITS`) and the original file id. Readers raise
`FerkitError` with a one-line message naming the file, member or row at fault.

- Kaggle zip (`train/<class>/Training_<id>.jpg`, `test/<class>/PublicTest_<id>.jpg`, ...),
  read member by member without unpacking to disk;
- the same tree extracted, or any image-folder dataset with one sub-folder per emotion
  (other sizes and colour are centre-cropped to a square and resized to 48x48 grayscale);
- the challenge CSV `fer2013.csv` (`emotion,pixels,Usage`) and its `icml_face_data.csv`
  variant (`emotion, Usage, pixels`), as a file or as the only CSV inside a zip.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ferkit.core.decoding import IMAGE_SUFFIXES, decode_image
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS, SPLITS, label_index
from ferkit.core.limits import MAX_MEMBER_BYTES, LimitError, read_file

IMAGE_SIZE = 48  # pixels per side of a FER-2013 face

# Split from the file-name prefix (Kaggle layout), else from the folder above the class.
_PREFIXES = {"Training_": 0, "PublicTest_": 1, "PrivateTest_": 2}
_SPLIT_DIRS = {
    "train": 0,
    "training": 0,
    "val": 1,
    "valid": 1,
    "validation": 1,
    "publictest": 1,
    "test": 2,
    "privatetest": 2,
}


@dataclass
class RawDataset:
    """What a reader found, before validation splits are carved and the cache is written."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, FER-2013 order
    splits: np.ndarray  # (N,) int8, index into SPLITS
    ids: list[str]  # original file path or CSV row per image
    kind: str  # "zip", "folder", "csv"
    split_source: str  # how splits were assigned, for the manifest and the user
    unreadable: list[str] = field(default_factory=list)  # skipped images
    ignored: int = 0  # non-image files skipped silently (README, .DS_Store, ...)


def decode_face(data: bytes, name: str = "image", size: int = IMAGE_SIZE) -> np.ndarray | None:
    """Decode image bytes to a `size`x`size` uint8 grayscale face, or None if unreadable;
    `LimitError` naming `name` if its header declares too many pixels.

    EXIF orientation is honoured (OpenCV applies it). Non-square images are centre-cropped
    to a square first so faces are not squashed; INTER_AREA keeps downscaling alias-free.
    """
    import cv2

    try:  # the pixel limit from the header, before decoding (`ferkit.core.decoding`)
        img = decode_image(data, name, gray=True).image
    except LimitError:
        raise
    except FerkitError:
        return None
    h, w = img.shape
    if (h, w) != (size, size):
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = cv2.resize(
            img[top : top + s, left : left + s], (size, size), interpolation=cv2.INTER_AREA
        )
    return np.ascontiguousarray(img, dtype=np.uint8)


# ---------------------------------------------------------------- image trees (zip or folder)


def _is_candidate(parts: tuple[str, ...]) -> bool:
    """Skip hidden files, macOS resource forks and anything that is not an image file."""
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES


def _split_of(parts: tuple[str, ...]) -> int:
    name = parts[-1]
    for prefix, code in _PREFIXES.items():
        if name.startswith(prefix):
            return code
    if len(parts) >= 3:
        return _SPLIT_DIRS.get(parts[-3].lower(), 0)
    return 0


def _read_tree(
    source: Path,
    entries: Iterable[tuple[tuple[str, ...], Callable[[], bytes]]],
    kind: str,
    progress: Callable[[int], None] | None,
) -> RawDataset:
    """Decode every image entry `(path parts, read function)` of a zip or folder."""
    images, labels, splits, ids, unreadable = [], [], [], [], []
    ignored = 0
    for parts, read in entries:
        if not _is_candidate(parts):
            ignored += 1
            continue
        rel = "/".join(parts)
        if len(parts) < 2:
            raise FerkitError(
                f"{source}: image '{rel}' is not inside an emotion folder; "
                f"expected <emotion>/<image> with emotion one of {', '.join(LABELS)}"
            )
        label = label_index(parts[-2])
        if label is None:
            raise FerkitError(
                f"{source}: folder '{parts[-2]}' (in {rel}) is not an emotion; "
                f"expected one of {', '.join(LABELS)}"
            )
        face = decode_face(read(), f"{source}: {rel}")
        if progress:
            progress(1)
        if face is None:
            unreadable.append(rel)
            continue
        images.append(face)
        labels.append(label)
        splits.append(_split_of(parts))
        ids.append(rel)
    prefixed = sum(1 for i in ids if PurePosixPath(i).name.startswith(tuple(_PREFIXES)))
    if ids and prefixed == len(ids):
        how = "file-name prefix (Training_/PublicTest_/PrivateTest_)"
    elif prefixed:
        how = "file-name prefix where present, else the train/test folder"
    else:
        how = "train/val/test folder names (no folder means Training)"
    return RawDataset(
        images=np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        labels=np.asarray(labels, np.int64),
        splits=np.asarray(splits, np.int8),
        ids=ids,
        kind=kind,
        split_source=how,
        unreadable=unreadable,
        ignored=ignored,
    )


def read_folder(source: Path, progress: Callable[[int], None] | None = None) -> RawDataset:
    """Read an extracted Kaggle tree or any `<emotion>/<image>` folder dataset."""
    files = sorted(p for p in source.rglob("*") if p.is_file())

    def entries() -> Iterable[tuple[tuple[str, ...], Callable[[], bytes]]]:
        for p in files:
            yield p.relative_to(source).parts, lambda p=p: read_file(p, MAX_MEMBER_BYTES)

    try:
        return _read_tree(source, entries(), "folder", progress)
    except OSError as exc:
        raise FerkitError(f"{source}: cannot read {exc.filename}: {exc.strerror}") from None


def read_zip(source: Path, progress: Callable[[int], None] | None = None) -> RawDataset:
    """Read the Kaggle zip member by member, or the single CSV inside a challenge zip."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FerkitError(f"{source}: not a readable zip file ({exc})") from None
    with zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
        csvs = [i for i in infos if i.filename.lower().endswith(".csv")]
        has_images = any(_is_candidate(tuple(i.filename.split("/"))) for i in infos)
        if csvs and not has_images:
            if len(csvs) > 1:
                names = ", ".join(i.filename for i in csvs)
                raise FerkitError(f"{source}: several CSV files ({names}); extract the one to use")
            with zf.open(csvs[0]) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                return read_csv_stream(text, f"{source}:{csvs[0].filename}", progress)

        current = ""

        def read(info: zipfile.ZipInfo) -> bytes:
            """The member's bytes, never more than MAX_MEMBER_BYTES whatever its header says
            (a 2 MB zip can hold a 2 GiB member)."""
            over = LimitError(
                f"{source}: member {info.filename} unpacks to over {MAX_MEMBER_BYTES:,} bytes, "
                "the limit per image (FER-2013's are about 2 KB)"
            )
            if info.file_size > MAX_MEMBER_BYTES:
                raise over
            with zf.open(info) as member:
                data = member.read(MAX_MEMBER_BYTES + 1)
            if len(data) > MAX_MEMBER_BYTES:
                raise over
            return data

        def entries() -> Iterable[tuple[tuple[str, ...], Callable[[], bytes]]]:
            nonlocal current
            for info in infos:
                current = info.filename
                yield tuple(info.filename.split("/")), lambda info=info: read(info)

        try:
            return _read_tree(source, entries(), "zip", progress)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise FerkitError(f"{source}: member {current} is corrupt ({exc})") from None


# ---------------------------------------------------------------- CSV


def read_csv(source: Path, progress: Callable[[int], None] | None = None) -> RawDataset:
    """Read `fer2013.csv` or `icml_face_data.csv` (utf-8-sig: a spreadsheet program's
    byte-order mark is not part of the first column's name)."""
    with open(source, encoding="utf-8-sig", newline="") as f:
        return read_csv_stream(f, str(source), progress)


def read_csv_stream(
    stream: io.TextIOBase, name: str, progress: Callable[[int], None] | None = None
) -> RawDataset:
    """Parse a FER-2013 CSV; `name` is how errors refer to the file. Rows are numbered
    as a text editor shows them (the header is line 1)."""
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FerkitError(f"{name}: not a readable CSV file ({exc})") from None
    if header is None:
        raise FerkitError(f"{name}: the file is empty")
    cols = [h.strip().lower() for h in header]
    missing = [c for c in ("emotion", "pixels") if c not in cols]
    if missing:
        raise FerkitError(
            f"{name}: missing column {', '.join(missing)}; found columns {', '.join(cols)}"
        )
    i_emotion, i_pixels = cols.index("emotion"), cols.index("pixels")
    i_usage = cols.index("usage") if "usage" in cols else None
    n_pixels = IMAGE_SIZE * IMAGE_SIZE
    images, labels, splits, ids = [], [], [], []
    line = 1
    try:
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(cols):
                raise FerkitError(f"{name}: row {line}: {len(row)} fields, expected {len(cols)}")
            emotion = row[i_emotion].strip()
            if not emotion.lstrip("-").isdigit():
                raise FerkitError(f"{name}: row {line}: emotion '{emotion}' is not a number")
            if not 0 <= int(emotion) < len(LABELS):
                raise FerkitError(
                    f"{name}: row {line}: unknown emotion index {emotion}, expected 0..6"
                )
            values = row[i_pixels].split()
            if len(values) != n_pixels:
                raise FerkitError(
                    f"{name}: row {line}: pixels has {len(values)} values, expected "
                    f"{n_pixels} (48x48)"
                )
            try:
                pixels = np.array(values, dtype=np.int32)
            except ValueError:
                bad = next(v for v in values if not v.isdigit())
                raise FerkitError(
                    f"{name}: row {line}: pixel value '{bad}' is not a number"
                ) from None
            if pixels.min() < 0 or pixels.max() > 255:
                raise FerkitError(f"{name}: row {line}: pixel values must be within 0..255")
            split = 0
            if i_usage is not None:
                usage = row[i_usage].strip()
                if usage not in SPLITS:
                    raise FerkitError(
                        f"{name}: row {line}: Usage '{usage}' is not one of {', '.join(SPLITS)}"
                    )
                split = SPLITS.index(usage)
            images.append(pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            labels.append(int(emotion))
            splits.append(split)
            ids.append(f"row {line}")
            if progress:
                progress(1)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FerkitError(f"{name}: row {line + 1}: not valid CSV ({exc})") from None
    return RawDataset(
        images=np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        labels=np.asarray(labels, np.int64),
        splits=np.asarray(splits, np.int8),
        ids=ids,
        kind="csv",
        split_source="CSV Usage column" if i_usage is not None else "no Usage column: Training",
    )
