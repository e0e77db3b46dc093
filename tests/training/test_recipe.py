"""The recipe's parts by hand: config overrides and TOML, the learning-rate schedule, SAM,
augmentation, mixup and cutmix."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.training.config import TrainConfig, apply_overrides


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


def test_a_shipped_recipe_loads_by_name_and_a_missing_one_says_what_exists(tmp_path, capsys):
    from ferkit.cli import main
    from ferkit.core.errors import FerkitError
    from ferkit.training.config import load_toml, recipe_names

    assert {"quick", "robust"} <= set(recipe_names())
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "shipped recipe by name: quick, robust" in " ".join(capsys.readouterr().out.split())
    cfg = apply_overrides(TrainConfig(), load_toml("robust"))
    a = cfg.augment
    assert min(a.light_p, a.blur_p, a.noise_p, a.turn_p, a.occlude_p) > 0  # every family on
    assert (cfg.model, cfg.optim, cfg.epochs) == (TrainConfig().model, TrainConfig().optim, 30)
    with pytest.raises(FerkitError, match=r"no such config file or shipped recipe \(.*robust"):
        load_toml(tmp_path / "nope.toml")


def test_the_quick_recipe_distils_from_the_default_at_low_resolution_first(
    small_cache, tmp_path, monkeypatch
):
    import json
    import shutil

    from ferkit.cli import main
    from ferkit.training import cpu
    from ferkit.training.config import load_toml

    cfg = apply_overrides(TrainConfig(), load_toml("quick"))
    assert (cfg.model.name, cfg.model.width, cfg.distill.teacher) == ("vgg-s", 32, "default")
    assert cfg.bf16 and cfg.channels_last and 0 < cfg.small_epochs < cfg.epochs
    assert 0 < cfg.distill.drop_below < 0.5 and cfg.small_size < cfg.model.input_size
    assert 0 < cfg.eval_last < cfg.epochs - cfg.small_epochs  # scored at full size only
    assert cfg.tta == "views8"  # reported and exported with 8 views
    # it trains as shipped, bar the size (tiny here); bf16 falls back where it is emulated
    monkeypatch.setattr(cpu, "native_bf16", lambda device: False)
    data, run = tmp_path / "data", tmp_path / "q"
    shutil.copytree(small_cache, data, ignore=shutil.ignore_patterns("teacher-*"))
    args = ["train", "--data", str(data), "--out", str(run), "--config", "quick"]
    tiny = ["epochs=2", "small_epochs=1", "small_size=24", "model.width=8", "batch_size=32"]
    tiny.append("eval_last=1")
    assert main([*args, *(a for kv in tiny for a in ("--set", kv))]) == 0
    saved = json.loads((run / "config.json").read_text())["config"]
    assert (saved["bf16"], saved["channels_last"], saved["small_epochs"]) == (False, True, 1)
    final = json.loads((run / "final.json").read_text())
    assert final["best_epoch"] == 2 and final["tta"] == "views8"  # scored alone, 8 views
    assert 0 <= final["PrivateTest"]["acc_views"] <= 1
    assert saved["distill"]["teacher"] == "default" and (run / "final.json").is_file()
    assert len(list(data.glob("teacher-*.npy"))) == 1  # scored once, kept with the data
