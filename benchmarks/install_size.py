"""How much disk a fresh `pip install` of ferkit takes, in total and by package.

Makes a new virtual environment in a temporary folder, sums the files under its
site-packages (what every venv has: pip, and setuptools on Python < 3.12), installs this
checkout into it (with the extras asked for) and sums them again, so the figure is what a
user's `pip install ferkit` adds, and the venv's own share is printed beside it. Needs the
package registry (or a pip cache that has every wheel).

    python benchmarks/install_size.py                 # the core install
    python benchmarks/install_size.py --extras dlib   # and with an extra, for comparison

It is the source of the install-size figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tempfile
import venv
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6  # decimal megabytes, as pip and PyPI print them


def site_packages(env: Path) -> Path:
    """The venv's purelib folder, found by asking its own interpreter."""
    out = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def sizes_by_package(site: Path) -> dict[str, int]:
    """Bytes per top-level entry of site-packages, a package's `*.dist-info` counted with
    it and a `*.libs` folder (bundled shared libraries) with the wheel it came from."""
    totals: dict[str, int] = defaultdict(int)
    for entry in site.iterdir():
        name = entry.name.split("-")[0].removesuffix(".libs").removesuffix(".py").lower()
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        totals[name] += sum(p.lstat().st_size for p in files)
    return dict(totals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extras", default="", help="comma-separated extras, e.g. dlib or serve")
    ap.add_argument("--top", type=int, default=12, help="how many of the largest to list")
    args = ap.parse_args()

    target = f"{ROOT}[{args.extras}]" if args.extras else str(ROOT)
    with tempfile.TemporaryDirectory(prefix="ferkit-size-") as tmp:
        env = Path(tmp) / "venv"
        venv.create(env, with_pip=True)
        site = site_packages(env)
        before = sizes_by_package(site)
        cmd = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", target]
        subprocess.run(cmd, check=True)
        after = sizes_by_package(site)
    added = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    total, venv_own = sum(added.values()), sum(before.values())
    label = f"ferkit[{args.extras}]" if args.extras else "ferkit"
    print(f"pip install {label} (Python {sysconfig.get_python_version()}, {sys.platform}):")
    print(
        f"  adds {total / MB:.1f} MB in {len(added)} top-level entries to a fresh venv's "
        f"{venv_own / MB:.1f} MB (site-packages {(total + venv_own) / MB:.1f} MB in all)"
    )
    for name, size in sorted(added.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {name:<28} {size / MB:7.1f} MB  {100 * size / total:4.1f}%")


if __name__ == "__main__":
    main()
