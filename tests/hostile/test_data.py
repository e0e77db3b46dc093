"""Careless data commands: changed options are not ignored, a damaged cache is named and
mended by --force, and a killed write leaves no temporary file behind for long."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from ferkit.cli import main
from ferkit.core.atomic import remove_orphans
from ferkit.data import synthetic


def _no_public(tmp_path):
    """A challenge CSV without PublicTest rows, so prepare carves one from Training."""
    x, y, s = synthetic.make_dataset({"Training": 20, "PrivateTest": 2}, seed=2)
    return synthetic.write_csv(tmp_path / "nopub.csv", x, y, s)


def _public_count(out) -> int:
    return sum(json.loads((out / "manifest.json").read_text())["counts"]["PublicTest"].values())


def test_changed_options_rebuild_the_cache(tmp_path, capsys):
    src, out = _no_public(tmp_path), tmp_path / "o"
    assert main(["data", "prepare", str(src), "--out", str(out), "--val-fraction", "0.1"]) == 0
    assert _public_count(out) == 14  # 2 of each class's 20
    capsys.readouterr()
    assert main(["data", "prepare", str(src), "--out", str(out), "--val-fraction", "0.1"]) == 0
    assert "nothing to do" in capsys.readouterr().out  # the same options: a no-op
    args = ["data", "prepare", str(src), "--out", str(out), "--val-fraction", "0.5", "--seed", "3"]
    assert main(args) == 0
    assert "nothing to do" not in capsys.readouterr().out
    assert _public_count(out) == 70  # 10 of 20 per class


def test_a_damaged_cache_is_named_in_one_line_and_force_mends_it(tmp_path, kaggle_zip, capsys):
    out = tmp_path / "c"
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(out)]) == 0
    cache = out / "cache.npz"
    os.truncate(cache, cache.stat().st_size // 2)  # a copy cut short, a full disk
    capsys.readouterr()
    assert main(["data", "stats", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "damaged or not a ferkit cache" in err and "--force" in err and "\n" not in err
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(out), "--force"]) == 0
    assert main(["data", "stats", str(out)]) == 0
    os.truncate(cache, 1000)
    capsys.readouterr()
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(out)]) == 0  # no --force
    assert "was damaged (truncated?); rebuilding it" in capsys.readouterr().err
    assert main(["data", "stats", str(out)]) == 0


KILLED_WRITE = """
import sys, time
from ferkit.core.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1000)
    print(tmp, flush=True)
    time.sleep(60)
"""


def _writer(target):
    """A process inside `atomic_path(target)`, and its temporary file."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITE, str(target)], stdout=subprocess.PIPE, text=True
    )
    return proc, target.parent / proc.stdout.readline().strip().rsplit("/", 1)[-1]


def test_a_killed_write_leaves_an_orphan_that_the_next_write_removes(tmp_path):
    target = tmp_path / "cache.npz"
    first, orphan = _writer(target)
    assert orphan.is_file() and orphan.name.startswith(f".cache.npz.{first.pid}.")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert orphan.is_file() and not target.exists()  # kill -9: nothing renamed, tmp left
    second, busy = _writer(target)  # the next write of the same file cleans up first
    try:
        assert not orphan.exists() and busy.is_file()
        assert remove_orphans(target) == []  # a write still running is left alone
        assert busy.is_file()
    finally:
        second.kill()
        second.wait(timeout=30)
    assert main(["data", "stats", str(tmp_path)]) == 2  # still no cache there
    assert remove_orphans(target) == [busy]
    assert list(tmp_path.iterdir()) == []
