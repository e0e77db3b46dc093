"""`ferkit train` and `ferkit export` on tiny generated data, on CPU."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.data import synthetic  # noqa: E402
from ferkit.data.prepare import PrepareConfig, prepare  # noqa: E402
from ferkit.training import loop as train_mod  # noqa: E402
from ferkit.training import runs  # noqa: E402
from ferkit.training.config import TrainConfig, apply_overrides  # noqa: E402
from ferkit.training.networks import ModelConfig  # noqa: E402


def _cache(root: Path, per_class: dict[str, int]) -> Path:
    """Synthetic faces written as fer2013.csv and prepared like a user's data."""
    x, y, s = synthetic.make_dataset(per_class, seed=0)
    source = synthetic.write_csv(root / "fer2013.csv", x, y, s)
    prepare(PrepareConfig(source=source, out=root / "cache"))
    return root / "cache"


@pytest.fixture(scope="module")
def easy_cache(tmp_path_factory) -> Path:
    """150 training faces per class: enough steps to learn in two epochs."""
    return _cache(
        tmp_path_factory.mktemp("easy"), {"Training": 150, "PublicTest": 20, "PrivateTest": 20}
    )


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory) -> Path:
    return _cache(
        tmp_path_factory.mktemp("small"), {"Training": 20, "PublicTest": 4, "PrivateTest": 4}
    )


@pytest.fixture(scope="module")
def plain_run(small_cache, tmp_path_factory) -> Path:
    """One epoch of the plain recipe: the baseline that options must change, and a teacher."""
    run = tmp_path_factory.mktemp("plain") / "run"
    train_mod.train(_cfg(small_cache, run, epochs=1))
    return run


@pytest.fixture(scope="module")
def teacher_onnx(plain_run) -> str:
    from ferkit.export.torch_export import export

    export(plain_run, plain_run.parent / "teacher.onnx")
    return str(plain_run.parent / "teacher.onnx")


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = TrainConfig(
        data=str(data),
        out=str(out),
        epochs=2,
        batch_size=32,
        threads=2,
        model=ModelConfig(width=8),
        eval_batch=256,
    )
    return apply_overrides(base, {"optim.warmup_epochs": 0.3, **kw})


def _metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _learned(run: Path) -> list[tuple[str, ...]]:
    """The metrics that must be reproducible (not the timings)."""
    keys = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_acc_tta")
    return [tuple(r[k] for k in keys) for r in _metrics(run)]


def test_two_epochs_learn_an_easy_task(easy_cache, tmp_path):
    run = tmp_path / "run"
    result = train_mod.train(_cfg(easy_cache, run, **{"model.width": 16}))
    assert result["PublicTest"]["acc_tta"] > 0.7  # chance is 1/7
    assert result["PrivateTest"]["acc_tta"] > 0.7
    assert {"config.json", "metrics.csv", "curves.png", "last.pt", "best.pt", "final.json"} <= {
        p.name for p in run.iterdir()
    }
    info = json.loads((run / "config.json").read_text())
    assert info["seed"] == 0 and info["git_revision"] and info["config"]["model"]["width"] == 16
    assert 100 < info["config"]["model"]["mean"] < 200  # normalisation measured on Training
    rows = _metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2] and float(rows[0]["img_per_s"]) > 0
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_same_seed_same_metrics_and_resume_equals_uninterrupted(small_cache, tmp_path, monkeypatch):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    train_mod.train(_cfg(small_cache, a, epochs=3))
    train_mod.train(_cfg(small_cache, b, epochs=3))
    assert _learned(a) == _learned(b)

    real = train_mod.train_one_epoch

    def stop_at_epoch_2(*args, **kwargs):
        if args[5] == 2:  # epoch index
            raise train_mod.Interrupted
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_epoch", stop_at_epoch_2)
    with pytest.raises(train_mod.Interrupted):
        train_mod.train(_cfg(small_cache, c, epochs=3))
    assert len(_metrics(c)) == 2
    monkeypatch.setattr(train_mod, "train_one_epoch", real)
    train_mod.train(runs.read_run_config(c), resume=True)
    assert _learned(c) == _learned(a)
    ema_a = runs.load_checkpoint(a / "last.pt")["ema"]
    ema_c = runs.load_checkpoint(c / "last.pt")["ema"]
    for k in ema_a:
        torch.testing.assert_close(ema_a[k], ema_c[k], rtol=0, atol=0)


def _train_args(data: Path, run: Path, epochs: int) -> list[str]:
    """`ferkit train` arguments for a tiny, fast model."""
    return [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--epochs",
        str(epochs),
        "--width",
        "8",
        "--batch-size",
        "32",
    ]


def _ferkit(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ferkit", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_sigterm_saves_and_exits_cleanly_then_resumes(small_cache, tmp_path):
    run = tmp_path / "run"
    proc = _ferkit(*_train_args(small_cache, run, epochs=200), "--threads", "1", cwd=tmp_path)
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"--resume {run}" in err
    done = len(_metrics(run))
    assert 1 <= done < 200
    state = runs.load_checkpoint(run / "last.pt")
    assert state["epoch"] == done
    proc = _ferkit("train", "--resume", str(run), "--epochs", str(done + 1), cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert [int(r["epoch"]) for r in _metrics(run)] == list(range(1, done + 2))
    resumed = json.loads((run / "config.json").read_text())["config"]
    assert resumed["epochs"] == done + 1
    assert resumed["threads"] == 0  # the machine's thread count is not inherited
    assert "PrivateTest" in json.loads((run / "final.json").read_text())


def test_ddp_with_two_processes(small_cache, tmp_path):
    run = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd = [*torchrun, "2", "-m", "ferkit", *_train_args(small_cache, run, 2), "--threads", "1"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 process(es)" in r.stderr
    assert [int(r["epoch"]) for r in _metrics(run)] == [1, 2]
    final = json.loads((run / "final.json").read_text())
    assert final["PrivateTest"]["n"] == 28


def test_config_overrides_and_toml(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        'epochs = 7\n[model]\nname = "resnet18"\nwidth = 16\n[optim]\nlr = 0.05\n'
        "[augment]\nerase_area = [0.1, 0.2]\n"
    )
    from ferkit.training.config import load_toml

    cfg = apply_overrides(TrainConfig(), {**load_toml(toml), "model.width": "24", "bf16": "true"})
    assert (cfg.epochs, cfg.model.name, cfg.model.width, cfg.optim.lr, cfg.bf16) == (
        7,
        "resnet18",
        24,
        0.05,
        True,
    )
    assert cfg.augment.erase_area == (0.1, 0.2)
    from ferkit.core.errors import FerkitError

    with pytest.raises(FerkitError, match=r"unknown config key 'optim\.lrr'"):
        apply_overrides(cfg, {"optim.lrr": "1"})
    with pytest.raises(FerkitError, match="'many' is not a int"):
        apply_overrides(cfg, {"epochs": "many"})
    from ferkit.training.config import from_dict

    assert from_dict(dataclasses.asdict(cfg)) == cfg  # the round trip through config.json


def test_lr_schedule_warms_up_then_decays_to_zero():
    from ferkit.training.optim import lr_at

    lrs = [lr_at(s, 100, 10, 0.1) for s in range(101)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert lrs[10] == pytest.approx(0.1) and lrs[55] == pytest.approx(0.05)
    assert lrs[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))


def test_sam_steps_with_the_gradient_at_the_worst_nearby_weights():
    from ferkit.training.optim import sam_gradients

    # L(w) = sum(c * w^2): the gradient at w + rho * g / ||g|| is 2c(w + e), by hand
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    c = torch.tensor([1.0, 3.0, 2.0])
    model = torch.nn.Module()
    model.w = w
    (c * w**2).sum().backward()
    g = 2 * c * w.detach()
    e = 0.05 * g / g.norm()
    sam_gradients(model, lambda: (c * w**2).sum(), 0.05)
    torch.testing.assert_close(w.grad, 2 * c * (w.detach() + e))
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, -2.0, 0.5]))  # weights put back

    # BatchNorm's running statistics see the batch once, not twice
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    once = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    once.load_state_dict(net.state_dict())
    x = torch.randn(16, 4) * 3 + 1
    net(x).pow(2).sum().backward()
    once(x)
    sam_gradients(net, lambda: net(x).pow(2).sum(), 0.1)
    bn, ref = net[1], once[1]
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert bn.momentum == 0.1  # restored


def test_augment_is_batched_seeded_and_identity_when_off():
    from ferkit.training.augment import AugmentConfig, augment

    x = torch.rand(64, 1, 48, 48) * 255
    cfg = AugmentConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(1))
    b = augment(x, cfg, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, augment(x, cfg, torch.Generator().manual_seed(2)))
    off = AugmentConfig(rotate_deg=0, scale=0, shift=0, hflip=False, erase_p=0)
    torch.testing.assert_close(augment(x, off, torch.Generator()), x, atol=1e-3, rtol=0)
    erase = dataclasses.replace(off, erase_p=1.0, erase_area=(0.1, 0.1), erase_ratio=(1.0, 1.0))
    erased = augment(x, erase, torch.Generator().manual_seed(0))
    changed = (~torch.isclose(erased, x, atol=1e-3)).float().mean((1, 2, 3))
    assert ((changed > 0.05) & (changed < 0.15)).all()  # one ~10% rectangle per image
    mirror = dataclasses.replace(off, hflip=True)
    out = augment(x, mirror, torch.Generator().manual_seed(0))
    flipped = torch.isclose(out, x.flip(3), atol=1e-3).flatten(1).all(1)
    same = torch.isclose(out, x, atol=1e-3).flatten(1).all(1)
    assert (flipped | same).all() and 10 < int(flipped.sum()) < 54


def test_export_contract_parity_and_flip_invariance(easy_cache, tmp_path):
    from ferkit.export.torch_export import export
    from ferkit.modelfile.classifier import Classifier

    run = tmp_path / "run"
    train_mod.train(_cfg(easy_cache, run, epochs=1))
    result = export(run, tmp_path / "m.onnx")
    assert result["max_abs_diff"] < 1e-4
    clf = Classifier(tmp_path / "m.onnx")
    meta = clf.info.metadata
    assert json.loads(meta["labels"]) == [
        "angry",
        "disgust",
        "fear",
        "happy",
        "sad",
        "surprise",
        "neutral",
    ]
    assert json.loads(meta["input_size"]) == [48, 48] and meta["tta"] == "hflip"
    assert meta["ferkit_version"] and "1 epochs" in meta["training"]
    assert meta["training"].startswith("Training split (1,050 images) of fer2013.csv, vgg-s")
    faces = (np.random.default_rng(0).random((5, 48, 48)) * 255).astype(np.uint8)
    p = clf.classify(faces)
    assert p.shape == (5, 7) and np.allclose(p.sum(1), 1, atol=1e-5)
    # the graph averages each image with its mirror, so a mirrored face scores the same
    np.testing.assert_allclose(clf.classify(faces[:, :, ::-1].copy()), p, atol=1e-5)
    # batches of any size: one at a time equals all at once
    np.testing.assert_allclose(np.concatenate([clf.classify(f[None]) for f in faces]), p, atol=1e-5)
    # faces of another size are resized to the model's input size
    assert clf.classify([np.zeros((96, 96), np.uint8)]).shape == (1, 7)

    plain = export(run, tmp_path / "plain.onnx", tta="none")
    assert plain["metadata"]["tta"] == "none"
    assert not np.allclose(
        Classifier(tmp_path / "plain.onnx").classify(faces[:, :, ::-1].copy()),
        Classifier(tmp_path / "plain.onnx").classify(faces),
        atol=1e-4,
    )

    # views8: the mean over 8 views of the plain model, still mirror-invariant, in ONNX too
    views8 = export(run, tmp_path / "v8.onnx", tta="views8")
    assert views8["max_abs_diff"] < 1e-4 and views8["metadata"]["tta"] == "views8"
    assert "accuracy_PublicTest" not in views8["metadata"]  # training measured hflip only
    v8 = Classifier(tmp_path / "v8.onnx")
    np.testing.assert_allclose(v8.classify(faces[:, :, ::-1].copy()), v8.classify(faces), atol=1e-5)
    assert not np.allclose(v8.classify(faces), p, atol=1e-3)


def test_tta_views_rotate_about_the_centre_and_zoom():
    import torch.nn.functional as F
    from torch import nn

    from ferkit.export.torch_export import Probabilities, _rotation_grid

    x = torch.arange(48 * 48, dtype=torch.float32).reshape(1, 1, 48, 48)

    def sample(deg: float) -> torch.Tensor:
        return F.grid_sample(x, _rotation_grid(48, deg), align_corners=False)

    torch.testing.assert_close(sample(0.0), x)
    # +90 degrees maps output (row r, column c) to input (47 - c, r): a counter-clockwise turn
    torch.testing.assert_close(sample(90.0), torch.rot90(x, 1, dims=(2, 3)), atol=1e-2, rtol=1e-5)
    views = Probabilities(nn.Identity(), "views8").views(x)
    assert len(views) == 8 and all(v.shape == x.shape for v in views)
    torch.testing.assert_close(views[4], x.flip(3))  # second half: the first half mirrored
    zoom = views[1][0, 0]  # 44x44 centre resized to 48: the centre pixel moves least
    assert abs(zoom[24, 24] - x[0, 0, 24, 24]) < abs(zoom[2, 2] - x[0, 0, 2, 2])


def test_ensemble_export_averages_its_members(small_cache, tmp_path, capsys):
    """`ferkit export A B --out ens.onnx`: one graph whose output is the members' mean."""
    from ferkit.cli import main
    from ferkit.modelfile.classifier import Classifier

    for name, seed in (("a", 0), ("b", 1)):
        train_mod.train(_cfg(small_cache, tmp_path / name, epochs=1, seed=seed))
        assert main(["export", str(tmp_path / name), "--out", str(tmp_path / f"{name}.onnx")]) == 0
    runs_ = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert main(["export", *runs_, "--out", str(tmp_path / "ens.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "2 members" in printed and "measured accuracy: PublicTest" in printed
    faces = (np.random.default_rng(0).random((6, 48, 48)) * 255).astype(np.uint8)
    a, b = (Classifier(tmp_path / f"{n}.onnx").classify(faces) for n in "ab")
    ens = Classifier(tmp_path / "ens.onnx")
    np.testing.assert_allclose(ens.classify(faces), (a + b) / 2, atol=1e-5)
    meta = ens.info.metadata
    assert json.loads(meta["members"]) == ["a", "b"]
    assert meta["training"].startswith("mean of 2 models' probabilities: ")
    assert len(json.loads(meta["architecture"])) == 2
    assert 0 <= float(meta["accuracy_PublicTest"]) <= 1  # measured after export
    assert "accuracy_PrivateTest" in meta
    # an exported file and a run folder join the same way (compose: ONNX graphs joined)
    mixed = tmp_path / "mixed.onnx"
    assert main(["export", str(tmp_path / "a.onnx"), runs_[1], "--out", str(mixed)]) == 0
    np.testing.assert_allclose(Classifier(mixed).classify(faces), (a + b) / 2, atol=1e-5)
    assert json.loads(Classifier(mixed).info.metadata["members"]) == ["a", "b"]

    # --choose-on: the subset whose mean scores best on PublicTest, by the shared path
    from ferkit.data import load_cache
    from ferkit.export.choose import best_subset

    x, y = load_cache(small_cache).split("PublicTest")
    probs = [Classifier(tmp_path / f"{n}.onnx").classify(x) for n in "ab"]
    subset, acc = best_subset(probs, y)
    capsys.readouterr()
    chosen = tmp_path / "chosen.onnx"
    assert main(["export", *runs_, "--choose-on", "PublicTest", "--out", str(chosen)]) == 0
    printed = capsys.readouterr().out
    names = " + ".join("ab"[i] for i in subset)
    assert f"chosen on PublicTest: {names} ({100 * acc:.2f}%)" in printed
    got = Classifier(chosen).classify(x)
    np.testing.assert_allclose(got, np.mean([probs[i] for i in subset], axis=0), atol=1e-5)
    assert main(["export", *runs_, "--choose-on", "PrivateTest", "--out", str(chosen)]) == 2


def test_distillation_loss_by_hand():
    from ferkit.training.config import DistillConfig
    from ferkit.training.distill import training_loss

    logits = torch.tensor([[2.0, 0.0, -1.0, 0, 0, 0, 0], [0.0, 1.0, 0.0, 0, 0, 0, 0]])
    y = torch.tensor([0, 1])
    plain = training_loss(logits, y, 0.0)
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    # weight 1 with one-hot teacher targets at T = 1 is plain cross-entropy again
    onehot = torch.nn.functional.one_hot(y, 7).float()
    full = DistillConfig(teacher="t.onnx", weight=1.0)
    assert training_loss(logits, y, 0.0, onehot, full) == pytest.approx(plain.item(), abs=1e-5)
    # half and half with a uniform teacher: the mean of CE(labels) and CE(uniform)
    uniform = torch.full((2, 7), 1 / 7)
    half = DistillConfig(teacher="t.onnx", weight=0.5)
    soft = -(uniform * torch.log_softmax(logits, 1)).sum(1).mean()
    expect = 0.5 * plain + 0.5 * soft
    assert training_loss(logits, y, 0.0, uniform, half) == pytest.approx(expect.item(), abs=1e-5)
    # temperature T scales the soft term by T^2 on softened distributions
    hot = DistillConfig(teacher="t.onnx", weight=1.0, temperature=2.0)
    t = torch.softmax(torch.log(onehot.clamp_min(1e-8)) / 2, 1)
    expect = -(t * torch.log_softmax(logits / 2, 1)).sum(1).mean() * 4
    assert training_loss(logits, y, 0.0, onehot, hot) == pytest.approx(expect.item(), abs=1e-5)


def test_distilled_run_uses_and_records_its_teacher(
    small_cache, tmp_path, monkeypatch, plain_run, teacher_onnx
):
    from ferkit.core.errors import FerkitError
    from ferkit.modelfile.classifier import Classifier
    from ferkit.modelfile.shipped import sha256_file

    cfg = _cfg(small_cache, tmp_path / "student", epochs=1, **{"distill.teacher": teacher_onnx})
    data = train_mod.load_data(cfg, torch.device("cpu"))
    assert data.train_t.shape == (len(data.train_y), 7)
    assert torch.allclose(data.train_t.sum(1), torch.ones(len(data.train_y)), atol=1e-4)
    result = train_mod.train(cfg)
    assert 0 <= result["PublicTest"]["acc_tta"] <= 1
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["config"]["distill"] == {
        "teacher": teacher_onnx,
        "weight": 0.7,
        "temperature": 1.0,
        "online": False,
        "drop_below": 0.0,
        "relabel_above": 0.0,
    }
    assert saved["sha256"] == {"distill.teacher": sha256_file(Path(teacher_onnx))}
    assert json.loads((plain_run / "config.json").read_text())["sha256"] == {}
    # the same seed without a teacher trains differently
    first = {"student": _metrics(tmp_path / "student")[0]["train_loss"]}
    first["plain"] = _metrics(plain_run)[0]["train_loss"]
    assert first["student"] != first["plain"]

    # online: the teacher scores every augmented batch the student sees, once per step
    seen: list[torch.Tensor] = []
    batch_probs = train_mod.batch_probs

    def spy(clf, x):
        seen.append(x.clone())
        return batch_probs(clf, x)

    monkeypatch.setattr(train_mod, "batch_probs", spy)
    kw = {"distill.teacher": teacher_onnx, "distill.online": "true"}
    online = _cfg(small_cache, tmp_path / "online", epochs=1, **kw)
    data = train_mod.load_data(online, torch.device("cpu"))
    assert data.train_t is None and data.teacher is not None  # nothing scored up front
    alone = _cfg(small_cache, tmp_path / "x", epochs=1, **{"distill.online": "true"})
    with pytest.raises(FerkitError, match=r"distill\.online needs a teacher"):
        train_mod.load_data(alone, torch.device("cpu"))
    train_mod.train(online)
    assert len(seen) == len(data.train_y) // online.batch_size
    assert all(x.shape == (online.batch_size, 1, 48, 48) for x in seen)
    assert any((x != x.round()).any() for x in seen)  # resampled by the augmentation
    first["online"] = _metrics(tmp_path / "online")[0]["train_loss"]
    assert first["online"] != first["student"]
    # the float batch scores like the same pixels through the shared uint8 path
    pixels = seen[0].round().clamp(0, 255)
    want = Classifier(teacher_onnx).classify(pixels[:, 0].numpy().astype(np.uint8))
    np.testing.assert_allclose(batch_probs(data.teacher, pixels).numpy(), want, atol=1e-6)


def test_teacher_scores_are_kept_in_the_run_and_read_back(
    small_cache, tmp_path, monkeypatch, teacher_onnx
):
    from ferkit.training import distill

    scored: list[int] = []
    classify = distill.Classifier.classify

    def spy(self, images, **kw):
        scored.append(len(images))
        return classify(self, images, **kw)

    monkeypatch.setattr(distill.Classifier, "classify", spy)
    run = tmp_path / "run"
    cfg = _cfg(small_cache, run, epochs=1, **{"distill.teacher": teacher_onnx})
    first = train_mod.load_data(cfg, torch.device("cpu"))
    again = train_mod.load_data(cfg, torch.device("cpu"))  # what --resume does
    assert len(scored) == 1 and torch.equal(first.train_t, again.train_t)
    kept = list(run.glob("teacher-*.npy"))
    assert len(kept) == 1 and np.array_equal(np.load(kept[0]), first.train_t.numpy())
    # other images or another teacher are scored afresh, never served the saved scores
    images = first.train_x[:, 0].numpy()
    fewer = distill.teacher_probs(teacher_onnx, images[:-1], keep_in=run)
    other = distill.teacher_probs("default", images, keep_in=run)
    assert scored == [len(images), len(images) - 1, len(images)]
    assert len(fewer) == len(images) - 1 and not np.allclose(other, first.train_t.numpy())
    assert len(list(run.glob("teacher-*.npy"))) == 3
    distill.teacher_probs(teacher_onnx, images)  # no run folder: nothing kept
    assert len(scored) == 4 and len(list(run.glob("teacher-*.npy"))) == 3


def test_saved_teacher_scores_distil_like_the_teacher(small_cache, tmp_path, teacher_onnx):
    from ferkit.cli import main
    from ferkit.core.errors import FerkitError
    from ferkit.modelfile.classifier import Classifier

    # `ferkit evaluate TEACHER --split Training` writes the scores a run can distil from
    ev = tmp_path / "ev"
    args = [teacher_onnx, "--data", str(small_cache), "--split", "Training", "--out", str(ev)]
    assert main(["evaluate", *args]) == 0
    saved = ev / "probabilities.npy"
    cpu = torch.device("cpu")
    by_model = train_mod.load_data(
        _cfg(small_cache, tmp_path / "a", **{"distill.teacher": teacher_onnx}), cpu
    )
    by_file = train_mod.load_data(
        _cfg(small_cache, tmp_path / "b", **{"distill.teacher": str(saved)}), cpu
    )
    assert by_file.train_t.shape == (140, 7)
    torch.testing.assert_close(by_file.train_t, by_model.train_t, atol=1e-5, rtol=0)
    assert not list((tmp_path / "b").glob("teacher-*.npy"))  # nothing scored
    np.save(tmp_path / "half.npy", np.load(saved).astype(np.float16))  # half the bytes to carry
    half = train_mod.load_data(
        _cfg(small_cache, tmp_path / "h", **{"distill.teacher": str(tmp_path / "half.npy")}), cpu
    )
    torch.testing.assert_close(half.train_t.sum(1), torch.ones(140))
    torch.testing.assert_close(half.train_t, by_model.train_t, atol=1e-3, rtol=0)
    # a subset of Training takes its own images' rows, cleaning included
    p_label = by_model.train_t[torch.arange(140), by_model.train_y]
    below = float(p_label.median())  # drops about half: the one-epoch teacher is near chance
    kw = {"distill.teacher": str(saved), "train_limit": 100, "distill.drop_below": below}
    sub = train_mod.load_data(_cfg(small_cache, tmp_path / "c", **kw), cpu)
    want = Classifier(teacher_onnx).classify(sub.train_x[:, 0].numpy())
    np.testing.assert_allclose(sub.train_t.numpy(), want, atol=1e-5)
    assert 32 <= len(sub.train_t) < 100
    assert (want[np.arange(len(want)), sub.train_y.numpy()] >= below).all()
    # fixed scores cannot follow augmented batches; other splits or files are refused
    np.save(tmp_path / "short.npy", np.load(saved)[:-1])
    np.save(tmp_path / "logits.npy", np.load(saved) * 2)
    for kw, match in (
        ({"distill.teacher": str(saved), "distill.online": "true"}, "is not a model"),
        ({"distill.teacher": str(tmp_path / "short.npy")}, r"shape \(139, 7\), expected \(140"),
        ({"distill.teacher": str(tmp_path / "logits.npy")}, "not probabilities"),
        ({"distill.teacher": str(tmp_path / "none.npy")}, "cannot read"),
    ):
        with pytest.raises(FerkitError, match=match):
            train_mod.load_data(_cfg(small_cache, tmp_path / "d", **kw), cpu)


def test_curves_are_redrawn_at_most_every_30_s_and_after_the_last_epoch(
    small_cache, tmp_path, monkeypatch
):
    drawn: list[int] = []  # epochs in metrics.csv at each redraw
    monkeypatch.setattr(runs, "draw_curves", lambda run: drawn.append(len(_metrics(run))))
    monkeypatch.setattr(train_mod, "draw_curves", runs.draw_curves)
    monkeypatch.setattr(train_mod, "CURVES_EVERY_S", 3600.0)
    train_mod.train(_cfg(small_cache, tmp_path / "a", epochs=3))
    assert drawn == [1, 3]
    # stopped between redraws: the curves catch up on the way out
    drawn.clear()
    one_epoch = train_mod.train_one_epoch

    def stop_in_third(*args):
        if args[5] == 2:  # epoch index
            raise train_mod.Interrupted
        return one_epoch(*args)

    monkeypatch.setattr(train_mod, "train_one_epoch", stop_in_third)
    with pytest.raises(train_mod.Interrupted):
        train_mod.train(_cfg(small_cache, tmp_path / "b", epochs=3))
    assert drawn == [1, 2]
    monkeypatch.setattr(train_mod, "train_one_epoch", one_epoch)
    monkeypatch.setattr(train_mod, "CURVES_EVERY_S", 0.0)
    drawn.clear()
    train_mod.train(_cfg(small_cache, tmp_path / "c", epochs=3))
    assert drawn == [1, 2, 3]


def test_drop_below_removes_the_images_the_teacher_doubts(
    small_cache, tmp_path, capsys, teacher_onnx
):
    from ferkit.core.errors import FerkitError
    from ferkit.data import load_cache
    from ferkit.modelfile.classifier import Classifier
    from ferkit.training.distill import drop_noisy

    x = torch.arange(6).view(6, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    probs = torch.full((6, 7), 0.1)
    probs[torch.arange(6), y] = torch.tensor([0.5, 0.05, 0.3, 0.01, 0.2, 0.6])
    kx, ky, kp = drop_noisy(x, y, probs, 0.1, keep_at_least=2)
    assert kx.flatten().tolist() == [0, 2, 4, 5] and ky.tolist() == [0, 2, 1, 2]
    assert torch.equal(kp, probs[[0, 2, 4, 5]])
    assert "dropped 2 of 6 Training images (per class [1, 1, 0, 0, 0, 0, 0])" in (
        capsys.readouterr().err
    )
    with pytest.raises(FerkitError, match=r"keeps 1 of 6 .* fewer than one batch"):
        drop_noisy(x, y, probs, 0.55, keep_at_least=2)

    # through load_data with a real teacher: exactly the images it doubts are gone
    images, labels = load_cache(small_cache).split("Training")
    p_label = Classifier(teacher_onnx).classify(images)[np.arange(len(labels)), labels]
    below = float(np.median(p_label))
    kw = {"distill.teacher": teacher_onnx, "distill.drop_below": below, "distill.weight": 0.0}
    cfg = _cfg(small_cache, tmp_path / "clean", epochs=1, **kw)
    data = train_mod.load_data(cfg, torch.device("cpu"))
    kept = p_label >= below
    assert 0 < kept.sum() < len(labels)
    assert torch.equal(data.train_y, torch.from_numpy(labels[kept]))
    assert torch.equal(data.train_x[:, 0], torch.from_numpy(images[kept]))
    assert data.train_t is None  # weight 0: the teacher only cleans, the loss is plain CE
    train_mod.train(cfg)
    saved = json.loads((tmp_path / "clean" / "config.json").read_text())
    assert saved["config"]["distill"]["drop_below"] == below
    alone = _cfg(small_cache, tmp_path / "x", **{"distill.drop_below": 0.1})
    with pytest.raises(FerkitError, match=r"distill\.drop_below needs a teacher"):
        train_mod.load_data(alone, torch.device("cpu"))


def test_relabel_above_gives_a_confident_teacher_its_class(
    small_cache, tmp_path, capsys, teacher_onnx
):
    from ferkit.core.errors import FerkitError
    from ferkit.data import load_cache
    from ferkit.modelfile.classifier import Classifier
    from ferkit.training.config import DistillConfig
    from ferkit.training.distill import clean_labels

    x = torch.arange(4).view(4, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 3])
    probs = torch.full((4, 7), 0.05)
    probs[0, 0], probs[1, 4], probs[2, 5], probs[3, 6] = 0.9, 0.7, 0.5, 0.6
    kd = DistillConfig(teacher="t.onnx", relabel_above=0.6)
    _, ky, _ = clean_labels(x, y, probs, kd, keep_at_least=1)
    assert ky.tolist() == [0, 4, 2, 6]  # where the teacher disagrees with >= 0.6 (image 3: =)
    assert "relabelled 2 of 4 Training images (per original class [0, 1, 0, 1, 0, 0, 0])" in (
        capsys.readouterr().err
    )
    # relabelling comes first: images 1 and 3 keep their new labels instead of being dropped
    both = dataclasses.replace(kd, drop_below=0.3)
    kx, ky, _ = clean_labels(x, y, probs, both, keep_at_least=1)
    assert kx.flatten().tolist() == [0, 1, 3] and ky.tolist() == [0, 4, 6]
    kx, _, _ = clean_labels(x, y, probs, dataclasses.replace(both, relabel_above=0.0), 1)
    assert kx.flatten().tolist() == [0]

    # through load_data with a real teacher: exactly the confident disagreements move
    images, labels = load_cache(small_cache).split("Training")
    p = Classifier(teacher_onnx).classify(images)
    top, p_top = p.argmax(1), p.max(1)
    above = float(np.median(p_top[top != labels]))
    want = np.where((top != labels) & (p_top >= above), top, labels)
    assert 0 < (want != labels).sum() < (top != labels).sum()
    kw = {"distill.teacher": teacher_onnx, "distill.relabel_above": above, "distill.weight": 0}
    data = train_mod.load_data(_cfg(small_cache, tmp_path / "r", **kw), torch.device("cpu"))
    assert torch.equal(data.train_y, torch.from_numpy(want))
    assert len(data.train_x) == len(labels) and data.train_t is None
    for bad, match in (
        ({"distill.relabel_above": 0.5}, r"distill\.relabel_above needs a teacher"),
        ({**kw, "distill.relabel_above": 1.5}, r"relabel_above=1\.5: expected 0\.\.1"),
    ):
        with pytest.raises(FerkitError, match=match):
            train_mod.load_data(_cfg(small_cache, tmp_path / "bad", **bad), torch.device("cpu"))


def test_mixup_blends_images_and_targets_alike():
    from ferkit.training.augment import mixup
    from ferkit.training.distill import training_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.arange(4 * 48 * 48, dtype=torch.float32).view(4, 1, 48, 48) % 256
    mixed, (perm, lam) = mixup(x, 0.2, gen)
    assert 0 <= lam <= 1 and sorted(perm.tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    again = mixup(x, 0.2, torch.Generator().manual_seed(0))  # reproducible from the seed
    assert again[1][1] == lam and torch.equal(again[1][0], perm)
    logits = torch.randn(4, 7)
    y = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.functional.cross_entropy
    expect = lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm])
    got = training_loss(logits, y, 0.0, mix=(perm, lam))
    assert got.item() == pytest.approx(expect.item(), abs=1e-6)


def test_cutmix_pastes_one_box_and_weights_targets_by_area():
    from ferkit.training.augment import cutmix

    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 48, 48).clone()
    out, (perm, lam) = cutmix(x, 1.0, torch.Generator().manual_seed(3))
    assert sorted(perm.tolist()) == list(range(8))
    moved = out != x  # pixels taken from another image (perm has non-fixed points)
    pasted = (out == x[perm]) & ~(x == x[perm])
    assert torch.equal(moved, pasted)  # every changed pixel came from the partner image
    box = (out[0, 0] != x[0, 0]) if perm[0] != 0 else (out[1, 0] != x[1, 0])
    rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
    area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert box.sum() == area > 0  # one solid rectangle
    assert lam == pytest.approx(1 - area.item() / (48 * 48))
    for i in range(8):  # the same box in every image whose partner differs
        if perm[i] != i:
            assert torch.equal(out[i, 0] != x[i, 0], box)
    again = cutmix(x, 1.0, torch.Generator().manual_seed(3))  # reproducible from the seed
    assert torch.equal(again[0], out) and again[1][1] == lam


def test_cutmix_excludes_mixup(small_cache, tmp_path):
    from ferkit.core.errors import FerkitError

    both = _cfg(small_cache, tmp_path / "both", **{"augment.cutmix": 1.0, "augment.mixup": 0.2})
    with pytest.raises(FerkitError, match="exclusive"):
        train_mod.train(both)
    assert not (tmp_path / "both").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("key", "value"), [("augment.mixup", 0.2), ("augment.cutmix", 1.0), ("optim.sam_rho", 0.05)]
)
def test_training_option_is_recorded_and_changes_training(
    small_cache, tmp_path, plain_run, key, value
):
    train_mod.train(_cfg(small_cache, tmp_path / "on", epochs=1, **{key: value}))
    section, field = key.split(".")
    saved = json.loads((tmp_path / "on" / "config.json").read_text())
    assert saved["config"][section][field] == value
    # the same seed without the option trains otherwise, so its loss differs
    on, plain = (_metrics(run)[0]["train_loss"] for run in (tmp_path / "on", plain_run))
    assert on != plain


@pytest.mark.parametrize("native", [True, False])
def test_bf16_trains_in_fp32_with_a_warning_where_the_cpu_emulates_it(
    small_cache, tmp_path, plain_run, monkeypatch, capsys, native
):
    monkeypatch.setattr(train_mod.cpu, "native_bf16", lambda device: native)
    train_mod.train(_cfg(small_cache, tmp_path / "run", epochs=1, bf16=True))
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["bf16"]
    warned = "--bf16 ignored, training in fp32" in capsys.readouterr().err
    # fp32 with the same seed is the plain run, loss for loss; bf16 rounds otherwise
    as_fp32 = _metrics(tmp_path / "run")[0]["train_loss"] == _metrics(plain_run)[0]["train_loss"]
    assert (recorded, warned, as_fp32) == (native, not native, not native)


def test_native_bf16_on_gpus_and_as_the_cpu_probes_say(monkeypatch):
    from ferkit.training import cpu

    assert cpu.native_bf16(torch.device("cuda"))  # never probes the CPU for a GPU
    for avx512_bf16, amx in itertools.product([False, True], repeat=2):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert cpu.native_bf16(torch.device("cpu")) == (avx512_bf16 or amx)
        assert ("bf16 in hardware" in cpu.summary()) == (avx512_bf16 or amx)


def test_init_starts_from_an_exported_models_weights_and_architecture(
    small_cache, tmp_path, teacher_onnx, capsys, monkeypatch
):
    """`--init MODEL.onnx`: the network comes back from the file alone, bit for bit, and a
    run started from it begins at those weights with the file's normalisation."""
    from ferkit.cli import main
    from ferkit.core.errors import FerkitError
    from ferkit.export.quantize import quantize
    from ferkit.export.torch_export import export
    from ferkit.modelfile.classifier import Classifier
    from ferkit.modelfile.shipped import sha256_file
    from ferkit.training.warmstart import init_from_onnx

    faces = (np.random.default_rng(0).random((40, 48, 48)) * 255).astype(np.uint8)
    x = torch.from_numpy(faces).float()[:, None]

    def flip_tta(net: torch.nn.Module) -> np.ndarray:
        p = train_mod.predict_probs(net, x, 16) + train_mod.predict_probs(net, x, 16, True)
        return (p / 2).numpy()

    # the shipped default is int8: rebuilt in float from its dequantised weights, it answers
    # as the file does but for the rounding of the activations the file quantises
    _, net = init_from_onnx("default", x.to(torch.uint8))
    np.testing.assert_allclose(flip_tta(net), Classifier().classify(faces), atol=0.05)
    # this torch's exporter folds them into the convs: rebuilt, the same function in eval
    # mode, and in train mode on the faces they were fitted to as well
    cfg, net = init_from_onnx(teacher_onnx, x.to(torch.uint8))
    teacher = runs.load_checkpoint(Path(teacher_onnx).parent / "run" / "best.pt")
    assert dataclasses.asdict(cfg) == teacher["config"]["model"]
    np.testing.assert_allclose(flip_tta(net), Classifier(teacher_onnx).classify(faces), atol=1e-5)
    with torch.no_grad():
        evaluated = net.features.eval()(x)
        trained = net.features.train()(x)
    torch.testing.assert_close(trained, evaluated, rtol=1e-3, atol=1e-3)
    start = {k: v.clone() for k, v in net.state_dict().items()}

    # lr 0 and EMA decay 0: the run's weights stay the file's (BatchNorm statistics move)
    kw = {"init": teacher_onnx, "model.width": 16, "optim.lr": 0.0, "optim.ema_decay": 0.0}
    run = tmp_path / "init"
    train_mod.train(_cfg(small_cache, run, epochs=1, **kw))
    info = json.loads((run / "config.json").read_text())
    saved = info["config"]
    assert saved["model"] == teacher["config"]["model"] and saved["init"] == teacher_onnx
    # the file by content too, as first read: a resume does not read it again
    assert info["sha256"] == {"init": sha256_file(Path(teacher_onnx))}
    assert runs.model_digests(runs.read_run_config(run), {"init": "abc"}) == {"init": "abc"}
    ema = runs.load_checkpoint(run / "best.pt")["ema"]
    conv = "features.1.0.weight"
    torch.testing.assert_close(ema[conv], start[conv], rtol=0, atol=0)
    meta = export(run, tmp_path / "ft.onnx")["metadata"]
    assert ", started from teacher.onnx" in meta["training"]

    ens = tmp_path / "ens.onnx"
    assert main(["export", str(run), str(run), "--out", str(ens)]) == 0
    int8 = tmp_path / "int8.onnx"
    quantize(Path(teacher_onnx), int8, faces)
    cfg8, net8 = init_from_onnx(str(int8), x)
    assert cfg8 == cfg
    np.testing.assert_allclose(flip_tta(net8), Classifier(int8).classify(faces), atol=0.05)
    with pytest.raises(FerkitError, match="an ensemble of 2"):
        init_from_onnx(str(ens), x)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    for model in (tmp_path / "bad.onnx", tmp_path / "none.onnx"):
        with pytest.raises(FerkitError, match="--init"):
            init_from_onnx(str(model), x)
    # a bad --init fails before the data is loaded and a teacher scores it (minutes)
    monkeypatch.setattr(train_mod, "load_data", lambda *a: pytest.fail("data loaded first"))
    kw = {"init": str(tmp_path / "none.onnx"), "distill.teacher": teacher_onnx}
    with pytest.raises(FerkitError, match=r"--init .*none\.onnx: no such model file"):
        train_mod.train(_cfg(small_cache, tmp_path / "y", **kw))
    capsys.readouterr()
    args = ["train", "--data", str(small_cache), "--out", str(tmp_path / "x")]
    assert main([*args, "--init", teacher_onnx, "--width", "16"]) == 2
    assert "--init takes the architecture from" in capsys.readouterr().err


def test_an_exported_network_takes_new_views_without_its_run(
    small_cache, plain_run, teacher_onnx, tmp_path, capsys
):
    """`ferkit export MODEL.onnx --tta views8`: the network rebuilt from the file alone and
    exported with other views scores as its run folder exported with them does."""
    from ferkit.cli import main
    from ferkit.data.cache import load_cache
    from ferkit.export.quantize import quantize
    from ferkit.export.torch_export import export, export_views
    from ferkit.modelfile.classifier import Classifier

    faces = (np.random.default_rng(1).random((24, 48, 48)) * 255).astype(np.uint8)
    from_run, from_file = tmp_path / "run-v8.onnx", tmp_path / "file-v8.onnx"
    export(plain_run, from_run, tta="views8")
    args = ["export", teacher_onnx, "--tta", "views8", "--data", str(small_cache)]
    assert main([*args, "--out", str(from_file)]) == 0
    want = Classifier(from_run).classify(faces)
    np.testing.assert_allclose(Classifier(from_file).classify(faces), want, atol=1e-5)
    meta = Classifier(from_file).info.metadata
    old = Classifier(teacher_onnx).info.metadata
    assert meta["tta"] == "views8" and meta["training"] == old["training"]
    assert meta["architecture"] == old["architecture"]
    # the old views' accuracies are replaced by the new views', measured on the data
    x, y = load_cache(small_cache).split("PublicTest")
    acc = (Classifier(from_run).classify(x).argmax(1) == y).mean()
    assert float(meta["accuracy_PublicTest"]) == pytest.approx(acc, abs=1e-4)
    assert "measured accuracy: PublicTest" in capsys.readouterr().out
    # the shipped default (int8) re-exported with its own views: fp32, its weights
    # dequantised, answering as the file does but for the activations' rounding
    again = tmp_path / "default.onnx"
    export_views("default", again, "hflip")
    assert "quantization" not in Classifier(again).info.metadata
    np.testing.assert_allclose(
        Classifier(again).classify(faces), Classifier().classify(faces), atol=0.05
    )
    int8, int8_v8 = tmp_path / "int8.onnx", tmp_path / "int8-v8.onnx"
    quantize(Path(teacher_onnx), int8, faces)
    assert main(["export", str(int8), "--tta", "views8", "--out", str(int8_v8)]) == 0
    np.testing.assert_allclose(Classifier(int8_v8).classify(faces), want, atol=0.05)
    capsys.readouterr()
    assert main(["export", "accurate", "--tta", "views8", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "an ensemble of 4" in capsys.readouterr().err
    for extra, why in ((["--choose-on", "PublicTest"], "two or more"), (["--int8"], "--data")):
        out = tmp_path / "y.onnx"
        assert main(["export", teacher_onnx, "--tta", "none", "--out", str(out), *extra]) == 2
        assert why in capsys.readouterr().err and not out.exists()
    assert not (tmp_path / "x.onnx").exists()
