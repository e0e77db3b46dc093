"""The training loop on tiny generated data: it learns, is reproducible, resumes, stops
cleanly on SIGTERM, runs two processes, and records its options."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.training import loop, runs
from tests.tiny_runs import (
    ferkit_process,
    learned_metrics,
    read_metrics,
    stopping_at,
    train_args,
    train_cfg,
)


def test_two_epochs_learn_an_easy_task(easy_cache, tmp_path):
    run = tmp_path / "run"
    result = loop.train(train_cfg(easy_cache, run, **{"model.width": 16}))
    assert result["PublicTest"]["acc_tta"] > 0.7  # chance is 1/7
    assert result["PrivateTest"]["acc_tta"] > 0.7
    assert {"config.json", "metrics.csv", "curves.png", "last.pt", "best.pt", "final.json"} <= {
        p.name for p in run.iterdir()
    }
    info = json.loads((run / "config.json").read_text())
    assert info["seed"] == 0 and info["git_revision"] and info["config"]["model"]["width"] == 16
    assert 100 < info["config"]["model"]["mean"] < 200  # normalisation measured on Training
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2] and float(rows[0]["img_per_s"]) > 0
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_same_seed_same_metrics_and_resume_equals_uninterrupted(small_cache, tmp_path, monkeypatch):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    loop.train(train_cfg(small_cache, a, epochs=3))
    loop.train(train_cfg(small_cache, b, epochs=3))
    assert learned_metrics(a) == learned_metrics(b)

    real = loop.train_one_epoch
    monkeypatch.setattr(loop, "train_one_epoch", stopping_at(2))
    with pytest.raises(loop.Interrupted):
        loop.train(train_cfg(small_cache, c, epochs=3))
    assert len(read_metrics(c)) == 2
    monkeypatch.setattr(loop, "train_one_epoch", real)
    loop.train(runs.read_run_config(c), resume=True)
    assert learned_metrics(c) == learned_metrics(a)
    ema_a = runs.load_checkpoint(a / "last.pt")["ema"]
    ema_c = runs.load_checkpoint(c / "last.pt")["ema"]
    for k in ema_a:
        torch.testing.assert_close(ema_a[k], ema_c[k], rtol=0, atol=0)


def test_sigterm_saves_and_exits_cleanly_then_resumes(small_cache, tmp_path):
    run = tmp_path / "run"
    proc = ferkit_process(*train_args(small_cache, run, epochs=200), "--threads", "1", cwd=tmp_path)
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"--resume {run}" in err
    done = len(read_metrics(run))
    assert 1 <= done < 200
    state = runs.load_checkpoint(run / "last.pt")
    assert state["epoch"] == done
    proc = ferkit_process("train", "--resume", str(run), "--epochs", str(done + 1), cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert [int(r["epoch"]) for r in read_metrics(run)] == list(range(1, done + 2))
    resumed = json.loads((run / "config.json").read_text())["config"]
    assert resumed["epochs"] == done + 1
    assert resumed["threads"] == 1  # kept: the metrics depend on the thread count
    assert "PrivateTest" in json.loads((run / "final.json").read_text())


def test_ddp_with_two_processes(small_cache, tmp_path):
    run = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd = [*torchrun, "2", "-m", "ferkit", *train_args(small_cache, run, 2), "--threads", "1"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 process(es)" in r.stderr
    assert [int(r["epoch"]) for r in read_metrics(run)] == [1, 2]
    final = json.loads((run / "final.json").read_text())
    assert final["PrivateTest"]["n"] == 28


def test_curves_are_redrawn_at_most_every_30_s_and_after_the_last_epoch(
    small_cache, tmp_path, monkeypatch
):
    drawn: list[int] = []  # epochs in metrics.csv at each redraw
    monkeypatch.setattr(runs, "draw_curves", lambda run: drawn.append(len(read_metrics(run))))
    monkeypatch.setattr(loop, "draw_curves", runs.draw_curves)
    monkeypatch.setattr(loop, "CURVES_EVERY_S", 3600.0)
    loop.train(train_cfg(small_cache, tmp_path / "a", epochs=3))
    assert drawn == [1, 3]
    # stopped between redraws: the curves catch up on the way out
    drawn.clear()
    one_epoch = loop.train_one_epoch

    def stop_in_third(*args):
        if args[5] == 2:  # epoch index
            raise loop.Interrupted
        return one_epoch(*args)

    monkeypatch.setattr(loop, "train_one_epoch", stop_in_third)
    with pytest.raises(loop.Interrupted):
        loop.train(train_cfg(small_cache, tmp_path / "b", epochs=3))
    assert drawn == [1, 2]
    monkeypatch.setattr(loop, "train_one_epoch", one_epoch)
    monkeypatch.setattr(loop, "CURVES_EVERY_S", 0.0)
    drawn.clear()
    loop.train(train_cfg(small_cache, tmp_path / "c", epochs=3))
    assert drawn == [1, 2, 3]


def test_cutmix_excludes_mixup(small_cache, tmp_path):
    from ferkit.core.errors import FerkitError

    both = train_cfg(
        small_cache, tmp_path / "both", **{"augment.cutmix": 1.0, "augment.mixup": 0.2}
    )
    with pytest.raises(FerkitError, match="exclusive"):
        loop.train(both)
    assert not (tmp_path / "both").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("key", "value"), [("augment.mixup", 0.2), ("augment.cutmix", 1.0), ("optim.sam_rho", 0.05)]
)
def test_training_option_is_recorded_and_changes_training(
    small_cache, tmp_path, plain_run, key, value
):
    loop.train(train_cfg(small_cache, tmp_path / "on", epochs=1, **{key: value}))
    section, field = key.split(".")
    saved = json.loads((tmp_path / "on" / "config.json").read_text())
    assert saved["config"][section][field] == value
    # the same seed without the option trains otherwise, so its loss differs
    on, plain = (read_metrics(run)[0]["train_loss"] for run in (tmp_path / "on", plain_run))
    assert on != plain


@pytest.mark.parametrize("native", [True, False])
def test_bf16_trains_in_fp32_with_a_warning_where_the_cpu_emulates_it(
    small_cache, tmp_path, plain_run, monkeypatch, capsys, native
):
    monkeypatch.setattr(loop.cpu, "native_bf16", lambda device: native)
    loop.train(train_cfg(small_cache, tmp_path / "run", epochs=1, bf16=True))
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["bf16"]
    warned = "bf16 ignored, training in fp32" in capsys.readouterr().err
    # fp32 with the same seed is the plain run, loss for loss; bf16 rounds otherwise
    as_fp32 = (
        read_metrics(tmp_path / "run")[0]["train_loss"] == read_metrics(plain_run)[0]["train_loss"]
    )
    assert (recorded, warned, as_fp32) == (native, not native, not native)


def test_native_bf16_on_gpus_and_as_the_cpu_probes_say(monkeypatch):
    from ferkit.training import cpu

    assert cpu.native_bf16(torch.device("cuda"))  # never probes the CPU for a GPU
    for avx512_bf16, amx in itertools.product([False, True], repeat=2):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert cpu.native_bf16(torch.device("cpu")) == (avx512_bf16 or amx)
        assert ("bf16 in hardware" in cpu.summary()) == (avx512_bf16 or amx)


def test_early_epochs_train_at_the_small_size_and_every_evaluation_at_full(
    small_cache, tmp_path, monkeypatch
):
    from ferkit.core.errors import FerkitError

    sides: dict[bool, list[int]] = {True: [], False: []}  # training mode -> sides seen
    build = loop.build_model

    def spied(cfg):
        net = build(cfg)  # the EMA copy keeps the hook
        net.register_forward_pre_hook(lambda m, args: sides[m.training].append(args[0].shape[-1]))
        return net

    monkeypatch.setattr(loop, "build_model", spied)
    loop.train(train_cfg(small_cache, tmp_path / "run", small_epochs=1, small_size=24))
    steps = len(sides[True]) // 2
    assert steps > 0 and sides[True] == [24] * steps + [48] * steps
    assert sides[False] and set(sides[False]) == {48}
    with pytest.raises(FerkitError, match="small_size=48: expected 16 up to 47 px"):
        loop.train(train_cfg(small_cache, tmp_path / "bad", small_epochs=1, small_size=48))


def test_eval_last_scores_only_the_last_epochs_and_trains_the_same(
    small_cache, tmp_path, monkeypatch
):
    from ferkit.core.errors import FerkitError

    calls: list[int] = []
    score = loop.evaluate

    def counted(model, x, y, batch):
        calls.append(len(y))
        return score(model, x, y, batch)

    monkeypatch.setattr(loop, "evaluate", counted)
    loop.train(train_cfg(small_cache, tmp_path / "every", epochs=3))
    assert len(calls) == 3
    calls.clear()
    loop.train(train_cfg(small_cache, tmp_path / "last", epochs=3, eval_last=1))
    assert len(calls) == 1  # epoch 3 alone; final.json scores through final_report
    every, last = learned_metrics(tmp_path / "every"), learned_metrics(tmp_path / "last")
    assert [r[:4] for r in every] == [r[:4] for r in last]  # skipping scores trains the same
    assert every[-1] == last[-1]
    assert [r[4:] for r in last[:2]] == [("nan",) * 3] * 2
    seconds = [float(r["eval_s"]) for r in read_metrics(tmp_path / "last")]
    assert 0 < max(seconds[:2]) < seconds[2] / 50  # metrics.csv times the scoring alone
    final = json.loads((tmp_path / "last" / "final.json").read_text())
    assert final["best_epoch"] == 3 and (tmp_path / "last" / "curves.png").stat().st_size > 0
    with pytest.raises(FerkitError, match="eval_last=-1: expected 0"):
        loop.train(train_cfg(small_cache, tmp_path / "bad", eval_last=-1))
