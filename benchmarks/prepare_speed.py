"""How fast `ferkit data prepare` and `load_cache` are, against the usual baseline.

Baseline, measured in the same run: what FER notebooks do, i.e. extract the zip to disk,
then open every file with Pillow into a Python list and stack it. Prints seconds and the
ratio baseline/ferkit.

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
    print(f"images                         {len(cache.labels):>8,}")
    print(f"baseline extract + PIL loop    {t_base:8.2f} s")
    print(f"ferkit data prepare            {t_prep:8.2f} s   ({t_base / t_prep:.1f}x faster)")
    print(f"ferkit data prepare (re-run)   {t_noop:8.2f} s")
    print(f"load_cache                     {t_load:8.2f} s   ({t_base / t_load:.0f}x faster)")


if __name__ == "__main__":
    main()
