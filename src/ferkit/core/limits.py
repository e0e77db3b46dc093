"""Limits that keep hostile or careless input from costing unbounded memory or disk.

Every image, whatever its format and wherever it comes from (a photo for `predict`, an
upload to the server, a member of a dataset zip, a video's frames), is measured from its
header before anything decodes it (`ferkit.core.decoding`): a 4.7 MB JPEG can declare
20000x20000 pixels, which decodes to 1.2 GB. The same goes for what is read out of a zip
member.
"""

from __future__ import annotations

import stat
from pathlib import Path

from ferkit.core.errors import FerkitError

# px: a 100 MP photo decodes to 300 MB of BGR; 50 MP phone photos pass, bombs do not
MAX_PIXELS = 100_000_000
# bytes read from one zip member: FER-2013's are about 2 KB, a phone photo under 32 MB
MAX_MEMBER_BYTES = 32 << 20
# bytes of one photo for predict: a 100 MP 16-bit TIFF is 600 MB, a camera JPEG under 50 MB
MAX_IMAGE_BYTES = 256 << 20


class LimitError(FerkitError):
    """Input over one of the limits here; the server answers it with 413."""


def check_frame_size(width: int, height: int, name: str, max_pixels: int | None = None) -> None:
    """The same limit for a video's frames, from the container's declared frame size."""
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    if width * height > limit:
        raise LimitError(
            f"{name}: frames of {width}x{height} are over the limit of {limit:,} pixels"
        )


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or one line saying why not: it
    is missing or unreadable, a folder, a pipe or device (which can block or never end), or
    larger than `limit` (checked before reading, and again while reading, in case it grows)."""
    try:
        mode, size = (st := path.stat()).st_mode, st.st_size
        if stat.S_ISDIR(mode):
            raise FerkitError(f"{path}: a folder, not a file")
        if not stat.S_ISREG(mode):
            raise FerkitError(f"{path}: not a regular file (a pipe or device may never end)")
        if size > limit:
            raise LimitError(f"{path}: {size:,} bytes, over the limit of {limit:,}")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise FerkitError(f"{path}: {exc.strerror or 'cannot read it'}") from None
    if len(data) > limit:
        raise LimitError(f"{path}: over the limit of {limit:,} bytes")
    return data
