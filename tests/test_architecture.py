"""The layout is a contract: packages layered top to bottom, no import cycles, torch only in
training and the torch exporter, modules well under 400 lines (docs/architecture.md).

The import rules live in pyproject.toml ([tool.importlinter]) and `make lint` runs them;
these tests run them too, and prove on a copy of the package that each rule catches what
it is there to catch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytest.importorskip("importlinter", reason="the architecture contracts need import-linter (dev)")

SRC = ROOT / "src" / "ferkit"
MAX_LINES = 400
KEPT, BROKEN = "KEPT", "BROKEN"
CONTRACTS = (
    "Packages are layered, top to bottom",
    "No import cycles inside any package",
    "Only training and the torch exporter import torch",
)


def _lint_imports(src_parent: Path) -> str:
    """import-linter's report on the `ferkit` package found in `src_parent`."""
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    env = {**os.environ, "PYTHONPATH": str(src_parent)}
    r = subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r.stdout + r.stderr


def _status(report: str) -> dict[str, str]:
    return {name: next(w for w in (KEPT, BROKEN) if f"{name} {w}" in report) for name in CONTRACTS}


def test_the_packages_keep_every_import_contract():
    report = _lint_imports(ROOT / "src")
    assert _status(report) == dict.fromkeys(CONTRACTS, KEPT), report


def test_each_contract_catches_what_it_forbids(tmp_path):
    """An upward import, a cycle inside a package and torch in vision, each added to a copy
    of the package, each break their own contract (and only theirs)."""
    shutil.copytree(SRC, tmp_path / "ferkit", ignore=shutil.ignore_patterns("*.onnx", "web"))
    broken = {
        "core/atomic.py": "from ferkit.cli import main  # upward\n",
        "export/choose.py": "from ferkit.export import pipeline  # pipeline imports choose\n",
        "vision/draw.py": "import torch\n",
    }
    for path, line in broken.items():
        with open(tmp_path / "ferkit" / path, "a") as f:
            f.write(line)
    report = _lint_imports(tmp_path)
    assert _status(report) == dict.fromkeys(CONTRACTS, BROKEN), report
    assert "ferkit.core.atomic -> ferkit.cli.main" in report
    assert "ferkit.vision.draw -> torch" in report


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("apps/predict.py", "ferkit.serve.app"),  # the local commands sit below both deliveries
        ("serve/errors.py", "ferkit.scale.ray_io"),  # the server and the Ray engine are
        ("scale/ray_io.py", "ferkit.serve.jobs"),  # siblings: neither reaches the other
        ("serve/jobs.py", "torch"),
        ("scale/ray_io.py", "torch"),
    ],
)
def test_the_delivery_packages_are_inside_the_contracts(tmp_path, path, target):
    """`apps`, `serve` and `scale` each have their place in the layers and the torch ban:
    one forbidden import added to a copy of each is reported."""
    shutil.copytree(SRC, tmp_path / "ferkit", ignore=shutil.ignore_patterns("*.onnx", "web"))
    with open(tmp_path / "ferkit" / path, "a") as f:
        f.write(f"import {target}\n")
    report = _lint_imports(tmp_path)
    source = "ferkit." + path.removesuffix(".py").replace("/", ".")
    assert BROKEN in report and f"{source} -> {target}" in report, report


def test_every_package_is_in_the_layers():
    text = (ROOT / "pyproject.toml").read_text()
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    named = re.findall(r"ferkit\.(\w+)", text.split("[tool.importlinter]")[1])
    missing = packages - set(named)
    assert not missing, f"packages outside the import contracts: {missing}"


def test_every_package_is_one_folder_and_every_module_is_small():
    flat = sorted(p.name for p in SRC.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert flat == [], f"modules outside a package: {flat}"
    for package in (p for p in SRC.iterdir() if p.is_dir() and any(p.glob("*.py"))):
        assert (package / "__init__.py").is_file(), f"{package.name} has no __init__.py"
        assert (package / "__init__.py").read_text().startswith('"""'), package.name
    sizes = {p.relative_to(SRC): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    big = {str(p): n for p, n in sizes.items() if n >= MAX_LINES}
    assert not big, f"modules of {MAX_LINES}+ lines: {big}"
