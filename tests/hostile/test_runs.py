"""Careless training commands: a finished run is never overwritten unless asked, a resume
needs something to resume, and an interrupt says truthfully what was saved."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs ferkit[train]")

from ferkit.cli import main
from ferkit.training import loop
from tests.tiny_runs import read_metrics, stopping_at, train_args


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_a_finished_run_is_refused_unless_resumed_or_overwritten(small_cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(small_cache, run, 1)) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(train_args(small_cache, run, 1)) == 2
    err = _error(capsys)
    assert f"{run}: holds a run already (last.pt, best.pt, final.json)" in err
    assert f"--resume {run}" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert main([*train_args(small_cache, run, 1), "--overwrite", "--resume", str(run)]) == 2
    assert "choose one" in _error(capsys)
    assert main([*train_args(small_cache, run, 2), "--overwrite"]) == 0
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"]  # afresh, not appended


def test_resume_needs_a_checkpoint_and_out_must_be_a_folder(small_cache, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "not a ferkit run folder" in _error(capsys)
    (tmp_path / "file").write_text("x")
    assert main(train_args(small_cache, tmp_path / "file", 1)) == 2
    assert "exists and is not a folder" in _error(capsys)


def test_an_interrupt_in_the_first_epoch_does_not_promise_a_resume(
    small_cache, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(loop, "train_one_epoch", stopping_at(0))
    run = tmp_path / "run"
    assert main(train_args(small_cache, run, 3)) == 130
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "--resume" not in err
    assert main(["train", "--resume", str(run)]) == 2
    assert "no last.pt to resume (no epoch of it finished)" in _error(capsys)
    monkeypatch.undo()
    assert main(train_args(small_cache, run, 1)) == 0  # config.json alone is no run


def test_a_plain_resume_keeps_the_thread_count_and_equals_the_uninterrupted_run(
    small_cache, tmp_path, monkeypatch
):
    """`--threads 1`, interrupted, then the README's plain `--resume`: the same metrics as
    the run that was never interrupted (float sums depend on the thread count)."""
    from tests.tiny_runs import learned_metrics

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main([*train_args(small_cache, whole, 3), "--threads", "1"]) == 0
    real = loop.train_one_epoch
    monkeypatch.setattr(loop, "train_one_epoch", stopping_at(2))
    assert main([*train_args(small_cache, cut, 3), "--threads", "1"]) == 130
    monkeypatch.setattr(loop, "train_one_epoch", real)
    seen = []
    monkeypatch.setattr("torch.set_num_threads", lambda n: seen.append(n))
    assert main(["train", "--resume", str(cut)]) == 0
    assert seen == [1] and learned_metrics(cut) == learned_metrics(whole)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("augment.downscale_min=0", "augment.downscale_min=0: expected 1..10000"),
        ("augment.blur_p=1.5", "augment.blur_p=1.5: expected 0.0..1.0"),
        ("augment.turn_yaw=1", "augment.turn_yaw=1.0: expected 0.0..0.95"),
        ("augment.occlude_size=0.4,0.2", "low <= high"),
        ("augment.noise_std=-3", "augment.noise_std=-3.0: expected 0.0..255.0"),
    ],
)
def test_an_out_of_range_setting_stops_before_training(
    small_cache, tmp_path, capsys, setting, message
):
    run = tmp_path / "run"
    assert main([*train_args(small_cache, run, 1), "--set", setting]) == 2
    assert message in _error(capsys)
    assert not run.exists()  # refused before the run folder is made
