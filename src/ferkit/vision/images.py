"""Turn whatever a user hands us into an upright uint8 BGR image.

Accepted: a path, encoded bytes, a PIL image, or a numpy array (BGR or grayscale, uint8,
uint16 or float in 0..1). EXIF orientation is honoured, so boxes are in the pixels of the
upright image a viewer shows; grayscale, RGBA, palette and 16-bit files are handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.decoding import IMAGE_SUFFIXES, WORK_SIDE, Decoded, decode_image, from_pil
from ferkit.core.errors import FerkitError
from ferkit.core.limits import MAX_IMAGE_BYTES, read_file

ImageInput = str | Path | bytes | np.ndarray | Any  # Any: a PIL.Image.Image


def _from_array(a: np.ndarray) -> np.ndarray:
    import cv2

    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = (np.clip(np.nan_to_num(a), 0, 1) * 255 + 0.5).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise FerkitError(f"image arrays must be uint8, uint16 or float, not {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.ascontiguousarray(a)
    if a.ndim == 3 and a.shape[2] == 3:
        return np.ascontiguousarray(a)
    if a.ndim == 3 and a.shape[2] == 4:
        return cv2.cvtColor(a, cv2.COLOR_BGRA2BGR)
    raise FerkitError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), not {a.shape}")


def decode(
    data: bytes, name: str = "image", max_pixels: int | None = None, work_side: int | None = None
) -> np.ndarray:
    """Encoded bytes -> upright BGR (or grayscale) uint8, or one line naming `name`
    (`ferkit.core.decoding`); `work_side=None` keeps the full size."""
    return decode_image(data, name, max_pixels, work_side).image


def load_photo(source: ImageInput, work_side: int | None = WORK_SIDE) -> Decoded:
    """Any supported input, files and bytes read at the size the pipeline needs
    (`ferkit.core.decoding.WORK_SIDE`): multiply boxes by `.scale` for the photo's pixels."""
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), work_side=work_side)
    if isinstance(source, str | Path):
        path = Path(source)
        return decode_image(read_file(path, MAX_IMAGE_BYTES), str(path), work_side=work_side)
    if isinstance(source, np.ndarray):
        return Decoded(_from_array(source))
    if hasattr(source, "mode") and hasattr(source, "size"):  # a PIL image
        return Decoded(from_pil(source))
    raise FerkitError(f"cannot read an image from {type(source).__name__}")


def load_image(source: ImageInput) -> np.ndarray:
    """Any supported input -> uint8 image at full size, (H, W, 3) BGR or (H, W) grayscale."""
    return load_photo(source, work_side=None).image


def find_images(inputs: list[str], skip: Path | None = None) -> list[Path]:
    """Expand files, folders (recursively, image suffixes only) and glob patterns, in order,
    without duplicates. A named file is kept whatever its suffix, and so is a dangling or
    looping link, so each is reported rather than lost. Files under `skip` (the output
    folder, when it lies inside an input folder) are not taken from folders."""
    import glob
    import os

    def wanted(p: Path, below: Path | None) -> bool:
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            return False
        return below is None or not p.resolve().is_relative_to(below)

    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():  # `skip` the folder itself: predict_files refuses what clashes
            below = skip.resolve() if skip and skip.resolve() != path.resolve() else None
            found += sorted(p for p in path.rglob("*") if wanted(p, below))
        elif path.exists() or os.path.lexists(item):  # lexists: a broken link, reported
            found.append(path)
        elif matches := sorted(glob.glob(item, recursive=True)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            raise FerkitError(f"{item}: no such file, folder or matching glob")
    return list(dict.fromkeys(found))
