"""How fast `ferkit data prepare` and `load_cache` are, against the usual baseline.

Baseline, measured in the same run: what FER notebooks do, i.e. extract the zip to disk,
then open every file with Pillow into a Python list and stack it. Prints seconds and the
ratio baseline/ferkit, and what the pixel-limit header check (`ferkit.core.limits`) costs
inside prepare: the same check run alone over every member, already in memory.

    python benchmarks/prepare_speed.py [../shared/fer2013/archive.zip]
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ferkit.core.limits import check_pixels
from ferkit.data import load_cache
from ferkit.data.prepare import PrepareConfig, prepare

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "fer2013" / "archive.zip"


def baseline(source: Path, work: Path) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(source) as zf:
        zf.extractall(work / "extracted")
    files = sorted((work / "extracted").rglob("*.jpg"))
    images = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    assert images.shape[1:] == (48, 48)
    return time.perf_counter() - start


def header_checks(source: Path) -> float:
    """Seconds for `check_pixels` on every image member (read into memory first)."""
    with zipfile.ZipFile(source) as zf:
        members = [zf.read(i) for i in zf.infolist() if i.filename.endswith(".jpg")]
    start = time.perf_counter()
    for data in members:
        check_pixels(data, "member")
    return time.perf_counter() - start


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not source.is_file():
        sys.exit(f"no archive at {source}; pass the path of FER-2013's archive.zip")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t_base = baseline(source, work)
        start = time.perf_counter()
        prepare(PrepareConfig(source=source, out=work / "cache"))
        t_prep = time.perf_counter() - start
        start = time.perf_counter()
        prepare(PrepareConfig(source=source, out=work / "cache"))
        t_noop = time.perf_counter() - start
        start = time.perf_counter()
        cache = load_cache(work / "cache")
        t_load = time.perf_counter() - start
    t_head = header_checks(source)
    n = len(cache.labels)
    print(f"images                         {len(cache.labels):>8,}")
    print(f"baseline extract + PIL loop    {t_base:8.2f} s")
    print(f"ferkit data prepare            {t_prep:8.2f} s   ({t_base / t_prep:.1f}x faster)")
    print(f"ferkit data prepare (re-run)   {t_noop:8.2f} s")
    print(f"load_cache                     {t_load:8.2f} s   ({t_base / t_load:.0f}x faster)")
    print(
        f"of prepare: header checks      {t_head:8.2f} s   ({1e6 * t_head / n:.0f} us per image, "
        f"{100 * t_head / t_prep:.0f}% of prepare)"
    )


if __name__ == "__main__":
    main()
