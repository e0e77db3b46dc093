"""Hostile files made at test time, small on disk, huge when decoded: real images of a few
pixels whose headers are rewritten to declare 20000x20000 (400 MP; 1.2 GB as BGR)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 20_000  # px: 400 MP, four times ferkit's limit and over Pillow's own
FORMATS = ("jpeg", "png", "bmp", "gif", "tiff", "webp", "ppm")


def _small(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def image_bomb(fmt: str, side: int = SIDE) -> bytes:
    """A valid 16x16 image file of `fmt` whose header says side x side."""
    data = bytearray(_small(fmt))
    if fmt == "jpeg":  # SOF0: FF C0, length (2), precision (1), height (2), width (2)
        at = data.index(b"\xff\xc0") + 5
        data[at : at + 4] = struct.pack(">HH", side, side)
    elif fmt == "png":  # IHDR at 8: length, type, width, height, ..., CRC over type+data
        data[16:24] = struct.pack(">II", side, side)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "bmp":  # BITMAPINFOHEADER: width and height at 18 and 22, little-endian
        data[18:26] = struct.pack("<ii", side, side)
    elif fmt == "gif":  # the logical screen and the first image descriptor
        data[6:10] = struct.pack("<HH", side, side)
        at = data.index(b"\x2c")  # image separator
        data[at + 5 : at + 9] = struct.pack("<HH", side, side)
    elif fmt == "tiff":  # the ImageWidth (256) and ImageLength (257) tags, SHORT or LONG
        for tag in (256, 257):
            for kind, pack in ((3, "<H"), (4, "<I")):
                at = data.find(struct.pack("<HHI", tag, kind, 1))
                if at >= 0:
                    data[at + 8 : at + 8 + struct.calcsize(pack)] = struct.pack(pack, side)
    elif fmt == "webp":  # lossy VP8: 14-bit width and height after the start code 9D 01 2A
        at = data.index(b"\x9d\x01\x2a") + 3
        side = min(side, 16383)  # the format's largest: 268 MP
        data[at : at + 4] = struct.pack("<HH", side, side)
    elif fmt == "ppm":  # a text header: P6, width, height, maxval
        data = bytearray(f"P6\n{side} {side}\n255\n".encode()) + data[data.index(b"255\n") + 4 :]
    return bytes(data)


def zip_bomb(path: Path, member: str, size: int) -> Path:
    """A zip with one deflated member of `size` zero bytes (64 MiB packs to about 64 KB)."""
    import zipfile

    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(member, "w", force_zip64=True) as out,
    ):
        for _ in range(size >> 20):
            out.write(bytes(1 << 20))
    return path


# A fresh interpreter with its address space capped: what would decode a bomb fails there
CAPPED = """
import resource, sys
cap = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from ferkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_capped(args: list[str], cwd: Path, mb: int = 1024) -> subprocess.CompletedProcess:
    """Run the CLI with at most `mb` MB of address space (it needs about 110 MB resident)."""
    return _run(CAPPED, mb, args, cwd)


def _run(code: str, cap: int, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter running `code` (a limit set from `cap`), with a deadline."""
    return subprocess.run(
        [sys.executable, "-c", code, str(cap), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The CLI's error line, after checking there is exactly one and no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def flat_png(side: int, mode: str = "RGB") -> bytes:
    """A side x side PNG of one colour: a few hundred KB that decodes to side^2 pixels
    (6300: 40 MP, 163 KB as RGBA; 9950: 99 MP)."""
    buf = io.BytesIO()
    Image.new(mode, (side, side), (120, 80, 60, 255)[: len(mode)]).save(buf, format="PNG")
    return buf.getvalue()


def lying_ico(side: int = 13_000) -> bytes:
    """An ICO whose directory says 16x16 and whose one entry is a side x side PNG."""
    png = flat_png(side, "RGBA")
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + png


def eps(path: Path) -> Path:
    """A small PostScript file (what Pillow hands to Ghostscript), named as the caller says."""
    path.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
        b"newpath 0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n"
    )
    return path


def peak_rss_mb(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI in a fresh interpreter; its result and its peak resident memory (MB):
    VmHWM, which starts afresh at exec (ru_maxrss would count the forking parent's)."""
    code = (
        "import sys\nfrom ferkit.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
        "finally:\n    status = open('/proc/self/status').read()\n"
        "    peak = status.split('VmHWM:')[1].split()[0]\n"
        "    print(f'PEAK {peak}', file=sys.stderr)\nsys.exit(rc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=180
    )
    peak = int(r.stderr.rsplit("PEAK ", 1)[1].split()[0])  # KB on Linux
    return r, peak / 1024


# The same with the largest file it may write capped (RLIMIT_FSIZE), SIGXFSZ ignored: a
# write past the cap fails with EFBIG, as a write to a full disk fails with ENOSPC
FULL_DISK = """
import resource, signal, sys
cap = int(sys.argv[1]) << 10
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from ferkit.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
sys.exit(main(sys.argv[2:]))
"""


def run_disk_full(args: list[str], cwd: Path, kb: int) -> subprocess.CompletedProcess:
    """Run the CLI with no file it writes allowed past `kb` KB."""
    return _run(FULL_DISK, kb, args, cwd)
