"""Careless training and data input, round two: each stops in one line before any work,
or is read as the user meant (a spreadsheet's CSV)."""

from __future__ import annotations

import fcntl
import json
import shutil

import numpy as np
import pytest

from ferkit.cli import main
from ferkit.data import synthetic
from tests.tiny_runs import train_args


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path):
    x, y, s = synthetic.make_dataset({"Training": 3, "PublicTest": 1, "PrivateTest": 1}, seed=0)
    source = synthetic.write_csv(tmp_path / "plain.csv", x, y, s)
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    assert main(["data", "prepare", str(tmp_path / "excel.csv"), "--out", str(tmp_path / "c")]) == 0


def test_an_inconsistent_cache_is_named_and_rebuilt_not_called_prepared(tmp_path, capsys):
    x, y, s = synthetic.make_dataset({"Training": 3, "PublicTest": 1, "PrivateTest": 1}, seed=0)
    source = synthetic.write_csv(tmp_path / "fer.csv", x, y, s)
    out = tmp_path / "c"
    assert main(["data", "prepare", str(source), "--out", str(out)]) == 0
    with np.load(out / "cache.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = arrays["labels"][:-1]  # one label short: a tool that edited it
    with open(out / "cache.npz", "wb") as f:
        np.savez(f, **arrays)
    assert main(["data", "stats", str(out)]) == 2
    assert "cache.npz: inconsistent" in _error(capsys)
    assert main(["data", "prepare", str(source), "--out", str(out)]) == 0
    assert "rebuilding it" in capsys.readouterr().err
    assert main(["data", "stats", str(out)]) == 0


torch = pytest.importorskip("torch", reason="training needs ferkit[train]")


def test_a_batch_larger_than_the_training_split_is_one_line(small_cache, tmp_path, capsys):
    args = [*train_args(small_cache, tmp_path / "run", 1), "--batch-size", "4096"]
    assert main(args) == 2
    assert "--batch-size 4096: the Training split has only 140 images" in _error(capsys)


def test_resuming_with_another_runs_checkpoint_is_one_line(
    plain_run, small_cache, tmp_path, capsys
):
    run = tmp_path / "run"
    assert main([*train_args(small_cache, run, 1), "--width", "16"]) == 0
    shutil.copy(plain_run / "last.pt", run / "last.pt")  # width 8's weights into width 16's
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert f"{run / 'last.pt'}: does not fit this run's model" in _error(capsys)


def test_a_config_json_of_nothing_is_one_line(small_cache, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "last.pt").write_bytes(b"x")
    assert main(["train", "--resume", str(run)]) == 2
    assert f"{run}: not a ferkit run folder" in _error(capsys)
    (run / "config.json").write_text(json.dumps({"config": {"optim": "fast"}}))
    assert main(["train", "--resume", str(run)]) == 2
    assert f"{run}: not a ferkit run folder" in _error(capsys)


def test_two_trainings_into_one_folder_the_second_stops(small_cache, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".lock", "w") as held:  # what a running `ferkit train` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(train_args(small_cache, run, 1)) == 2
        assert "another `ferkit train` is writing this run" in _error(capsys)
    assert sorted(p.name for p in run.iterdir()) == [".lock"]
    assert main(train_args(small_cache, run, 1)) == 0  # free once the other ends
