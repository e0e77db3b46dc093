"""Decode image bytes to a uint8 array, whatever a user or an attacker hands us, at a bounded
cost: the one decoder behind photos, uploads, stream frames and dataset members.

- **An allow-list of formats** (`FORMATS`): the photo formats people use. Pillow knows 40
  more, among them EPS (which runs Ghostscript on the file), ICO (whose directory can
  declare 16x16 and hold a 13000x13000 PNG) and a dozen rarely-fuzzed decoders; a file is
  judged by its bytes, never by its name, and anything else is "not an image". A JPEG
  with a multi-picture index (MPO: phones' gain maps, depth maps, stereo pairs) is a JPEG,
  read as its first, main picture.
- **The header decides before any pixel is decoded**: more than `max_pixels` is refused,
  and pixels that do not match the header after decoding are refused too.
- **Decoded at the size the pipeline needs** (`WORK_SIDE`): a photo whose long side is at
  least twice `WORK_SIDE` is read reduced by a power of two, JPEG inside the decoder (its
  DCT scaling, so the full image never exists) and other formats right after decoding.
  JPEG goes through simplejpeg (libjpeg-turbo, strict), 1.6x faster than OpenCV on a 12 MP
  photo and 3x faster than Pillow: OpenCV decodes a damaged JPEG into grey with libjpeg's
  warnings on stderr, simplejpeg refuses it. Pillow reads its header and EXIF.
  Callers multiply boxes by `Decoded.scale` to give them in the photo's own pixels.
- **Few copies**: pixels leave Pillow in strips into one preallocated array, so a photo's
  peak is its decoded size in Pillow plus the output, not four copies of it.
- **Every failure is one line**: Pillow's plugins raise a dozen exception kinds on damaged
  files (struct.error, IndexError, ZeroDivisionError, ...); all become a `FerkitError`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.core.limits import MAX_PIXELS, LimitError

# Pillow's format names, and the file suffixes a folder search picks up for each
FORMATS: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "GIF": (".gif",),
    "PPM": (".ppm", ".pgm", ".pbm"),
}
IMAGE_SUFFIXES = frozenset(s for suffixes in FORMATS.values() for s in suffixes)
NOT_AN_IMAGE = f"not an image (ferkit reads {', '.join(FORMATS)})"  # after "NAME: "
# px: photos are read with their long side at least this. The detector looks at most 1280
# px wide (`vision.blazeface.MAX_INPUT`) and finds faces from ~24 px of its input; at 4096
# such a face still spans 77 px, more than the classifiers' 48-64 px crops need
WORK_SIDE = 4096
STRIP_BYTES = 16 << 20  # bytes of Pillow pixels copied out at a time
_EXIF_ORIENTATION = 0x0112


class NotAnImage(FerkitError):
    """Empty, or not one of the allowed `FORMATS` (the server answers 415)."""


@dataclass(frozen=True)
class Decoded:
    """An upright uint8 image, BGR (H, W, 3) or grayscale (H, W), read `scale` times smaller
    than the photo (`scale` photo pixels per image pixel; 1: full size)."""

    image: np.ndarray
    scale: int = 1


def reduction(width: int, height: int, work_side: int | None = WORK_SIDE) -> int:
    """The power of two to shrink a photo by, keeping its long side at least `work_side`
    (None: never shrink)."""
    k = 1
    while work_side and max(width, height) >= 2 * k * work_side:
        k *= 2
    return k


_QUIET: list[bool] = []


def _quiet_libtiff() -> None:
    """Stop the libtiff that Pillow loaded from printing to stderr: a damaged TIFF would
    add its lines ("LZWDecode: Not enough data...") beside ferkit's one. Its errors still
    reach Pillow, which raises; only the printing goes (TIFFSetErrorHandler(NULL))."""
    import ctypes

    if _QUIET:
        return
    _QUIET.append(True)
    from PIL import _imaging  # noqa: F401 - loads libtiff into the process

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libtiff" in line}
        for path in paths:
            lib = ctypes.CDLL(path)
            for setter in (lib.TIFFSetErrorHandler, lib.TIFFSetWarningHandler):
                setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
                setter(None)
    except (OSError, AttributeError):  # not Linux, or a libtiff without them: noisy only
        pass


def _opened(data: bytes, name: str, limit: int) -> Any:
    """The image opened lazily (header only) by an allowed decoder, its size checked."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data), formats=tuple(FORMATS))
    except Image.DecompressionBombError:  # over about 179 MP: Pillow will not even open it
        raise LimitError(f"{name}: over the limit of {limit:,} pixels") from None
    except UnidentifiedImageError:
        raise NotAnImage(f"{name}: {NOT_AN_IMAGE}") from None
    w, h = img.size
    if w * h > limit:
        img.close()
        raise LimitError(f"{name}: {w}x{h} is over the limit of {limit:,} pixels")
    if w * h == 0:
        img.close()
        raise FerkitError(f"{name}: an image of no pixels")
    if img.format not in ("TIFF", "MPO") and getattr(img, "is_animated", False):
        img.close()
        raise FerkitError(
            f"{name}: an animated {img.format}; ferkit reads photos (one frame) - save the "
            "frame you want, or convert the animation to a video for `ferkit video`"
        )
    return img


def decode_image(
    data: bytes,
    name: str = "image",
    max_pixels: int | None = None,
    work_side: int | None = WORK_SIDE,
    gray: bool = False,
) -> Decoded:
    """Encoded bytes -> `Decoded`, or one line naming `name`: `LimitError` when the header
    declares more than `max_pixels` (None: `MAX_PIXELS`), `FerkitError` otherwise."""

    if not data:
        raise NotAnImage(f"{name}: empty file")
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():  # bombs from 89 MP, truncated reads: we decide, once
            warnings.simplefilter("ignore")
            return _decode(data, name, limit, work_side, gray)
    except FerkitError:
        raise
    except MemoryError:
        raise FerkitError(f"{name}: not enough memory to decode it") from None
    except Exception as exc:
        raise FerkitError(f"{name}: unreadable ({type(exc).__name__})") from None


def _decode(data: bytes, name: str, limit: int, work_side: int | None, gray: bool) -> Decoded:
    img = _opened(data, name, limit)
    if img.format == "TIFF":
        _quiet_libtiff()
    try:
        k = reduction(*img.size, work_side)
        jpeg = img.format in ("JPEG", "MPO")  # MPO: a JPEG with more pictures after it
        if jpeg and img.mode in ("RGB", "L"):  # not CMYK: Pillow does it
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            return Decoded(_upright(_turbo_jpeg(data, img.size, k, gray or img.mode == "L"),
                                    orientation), k)  # fmt: skip
        width = img.size[0]
        if jpeg and k > 1:  # libjpeg's DCT scaling, 1/2 to 1/8
            img.draft("L" if gray else "RGB", (img.size[0] // k, img.size[1] // k))
        expected = img.size
        img.load()
        if img.size != expected:  # a container whose directory lied about its pixels
            raise FerkitError(f"{name}: its pixels do not match its header")
        left = k // max(1, round(width / img.size[0]))  # what the draft did not shrink
        return Decoded(from_pil(img, gray, left), k)
    finally:
        img.close()


def _turbo_jpeg(data: bytes, size: tuple[int, int], k: int, gray: bool) -> np.ndarray:
    """A JPEG decoded by libjpeg-turbo to BGR or grayscale at 1/k of its size (DCT scaling up
    to 1/8, then area resampling); a damaged one raises (strict)."""
    import simplejpeg

    w, h = size[0] // k, size[1] // k
    out = simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "BGR", min_width=w,
                                 min_height=h, strict=True)  # fmt: skip
    if out.shape[1] > w:  # k over 8, past the DCT's own scaling
        import cv2

        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
    return out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out


_DEEP = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # 16-bit, 32-bit int, float


def _deep_scale(img: Any) -> float:
    """The factor that maps a 16-bit, 32-bit or float image to 0..255: float data in 0..1
    is taken as 0..1; integers by the fewest bits that hold the brightest pixel (8, 10, 12,
    14, 16, ...), so 12-bit sensor data in a 16-bit PNG is not read 16 times too dark."""
    top = float(img.getextrema()[1])
    if img.mode == "F" and top <= 1.0:
        return 255.0
    bits = 8
    while top > (1 << bits) - 1 and bits < 32:
        bits += 2
    return 255.0 / ((1 << bits) - 1)


def _copy_out(img: Any, gray: bool) -> np.ndarray:
    """Pillow's pixels -> one uint8 array, BGR or grayscale, `STRIP_BYTES` at a time;
    transparency is composited on white, as a viewer shows it."""
    from PIL import Image

    w, h = img.size
    transparent = img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info
    deep = img.mode in _DEEP
    one_band = gray or deep or (img.mode in ("L", "1") and not transparent)
    scale = _deep_scale(img) if deep else 1.0
    out = np.empty((h, w) if one_band else (h, w, 3), np.uint8)
    rows = max(1, STRIP_BYTES // (4 * w))
    for y in range(0, h, rows):
        strip = img.crop((0, y, w, min(h, y + rows)))
        if deep:
            a = np.asarray(strip, dtype=np.float32) * scale
            out[y : y + rows] = np.clip(np.nan_to_num(a), 0, 255) + 0.5
            continue
        if transparent:
            back = Image.new("RGBA", strip.size, (255, 255, 255, 255))
            strip = Image.alpha_composite(back, strip.convert("RGBA"))
        a = np.asarray(strip.convert("L" if one_band else "RGB"))
        out[y : y + rows] = a if one_band else a[:, :, ::-1]
    return out


def from_pil(img: Any, gray: bool = False, reduce: int = 1) -> np.ndarray:
    """A loaded PIL image -> upright uint8 BGR or grayscale, `reduce` times smaller."""
    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)  # PNG's eXIf: after load
    if reduce > 1:
        img = img.reduce(reduce)  # the caller's full-size image is freed when it closes it
    return _upright(_copy_out(img, gray), orientation)


def _upright(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels as the EXIF orientation tag says a viewer shows them (1: as stored)."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    turn = turns.get(orientation)
    return np.ascontiguousarray(turn(a)) if turn else a
