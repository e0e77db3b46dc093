"""Turn whatever a user hands us into an upright uint8 BGR image.

Accepted: a path, encoded bytes, a PIL image, or a numpy array (BGR or grayscale, uint8,
uint16 or float in 0..1). EXIF orientation is honoured, so boxes are in the pixels of the
upright image a viewer shows; grayscale, RGBA, palette and 16-bit files are handled.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.core.limits import MAX_IMAGE_BYTES, check_pixels, read_file

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
)

ImageInput = str | Path | bytes | np.ndarray | Any  # Any: a PIL.Image.Image


def _from_array(a: np.ndarray) -> np.ndarray:
    import cv2

    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
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


def _from_pil(img: Any) -> np.ndarray:
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.uint32)
        a = (a >> 8) if a.max() > 255 else a
        return np.clip(a, 0, 255).astype(np.uint8)
    if img.mode in ("L", "1"):
        return np.asarray(img.convert("L"))
    if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent -> white
        img = Image.alpha_composite(back, rgba)
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def decode(data: bytes, name: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """Encoded bytes -> upright BGR (or grayscale) uint8, or a FerkitError naming `name`;
    a `LimitError` when the header declares more than `max_pixels` (None: the limit in
    `ferkit.core.limits`), before any decoding."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise FerkitError(f"{name}: empty file")
    # None: Pillow cannot read the header; its own error below says why, precisely
    known = check_pixels(data, name, max_pixels) is not None
    # A complete JPEG (ends with the EOI marker): OpenCV decodes it ~2x faster than Pillow
    # and applies the EXIF orientation too; JPEG has no alpha or 16-bit to handle. A
    # truncated one goes to Pillow, which refuses it where OpenCV would fill in grey.
    if known and data[:3] == b"\xff\xd8\xff" and data.rstrip(b"\0")[-2:] == b"\xff\xd9":
        import cv2

        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            return image
    try:
        with warnings.catch_warnings():  # Pillow warns from 89 MP; check_pixels decided
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                return _from_pil(img)
    except Image.DecompressionBombError:
        raise FerkitError(f"{name}: too many pixels (Pillow's decompression-bomb limit)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        reason = "not an image" if isinstance(exc, UnidentifiedImageError) else "unreadable"
        raise FerkitError(f"{name}: {reason}") from None


def load_image(source: ImageInput) -> np.ndarray:
    """Any supported input -> uint8 image, (H, W, 3) BGR or (H, W) grayscale."""
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return decode(bytes(source))
    if isinstance(source, str | Path):
        path = Path(source)
        return decode(read_file(path, MAX_IMAGE_BYTES), str(path))
    if hasattr(source, "mode") and hasattr(source, "size"):  # a PIL image
        return _from_pil(source)
    raise FerkitError(f"cannot read an image from {type(source).__name__}")


def to_bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def find_images(inputs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, image suffixes only) and glob patterns, in order,
    without duplicates. A named file is kept whatever its suffix, so a bad one is reported."""
    import glob

    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.exists():
            found.append(path)
        elif matches := sorted(glob.glob(item, recursive=True)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            raise FerkitError(f"{item}: no such file, folder or matching glob")
    return list(dict.fromkeys(found))
