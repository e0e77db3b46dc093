"""Run folders to ONNX: the contract, torch/ONNX Runtime parity, test-time views, ensembles
of runs, and an exported network given new views without its run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.training import loop, scoring
from tests.tiny_runs import (
    train_cfg,
)


def test_export_contract_parity_and_flip_invariance(easy_cache, tmp_path):
    from ferkit.export.torch_export import export
    from ferkit.modelfile.classifier import Classifier

    run = tmp_path / "run"
    loop.train(train_cfg(easy_cache, run, epochs=1))
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
    from ferkit.training.networks import ModelConfig, build_model, count_params

    arch = ModelConfig(**json.loads(meta["architecture"]))
    assert int(meta["parameters"]) == count_params(build_model(arch)) > 0  # `ferkit models`
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
    # multiply-accumulates per face, by hand: width 8, four stages of two 3x3 convs
    c, side = [1, 8, 16, 32, 64], [48, 24, 12, 6]
    by_hand = sum(side[i] ** 2 * 9 * (c[i] * c[i + 1] + c[i + 1] ** 2) for i in range(4))
    by_hand += 64 * 7  # the linear classifier
    assert int(plain["metadata"]["macs"]) == by_hand
    assert int(meta["macs"]) == 2 * by_hand  # hflip: the mirror is a second face
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


def test_a_run_scores_and_exports_with_the_views_its_recipe_names(easy_cache, tmp_path):
    """`tta = "views8"` (as in `--config quick`): the final report scores the best epoch
    with those views too, the export writes them without --tta, and the file's recorded
    accuracy is the report's, which ONNX Runtime reproduces from the graph."""
    from ferkit.core.errors import FerkitError
    from ferkit.export.pipeline import ExportConfig, run_export
    from ferkit.export.torch_export import export
    from ferkit.modelfile.metadata import read_metadata
    from ferkit.modelfile.scoring import split_accuracies

    run = tmp_path / "run"
    final = loop.train(train_cfg(easy_cache, run, epochs=1, tta="views8"))
    assert final["tta"] == "views8"
    assert json.loads((run / "final.json").read_text()) == final
    exported = export(run, tmp_path / "v8.onnx", tta="views8")["metadata"]
    measured = split_accuracies(tmp_path / "v8.onnx", easy_cache)
    for split in ("PublicTest", "PrivateTest"):
        views = final[split]["acc_views"]
        assert exported[f"accuracy_{split}"] == f"{views:.4f}"  # recorded, not measured again
        assert measured[split] == pytest.approx(views, abs=1e-6)  # what the graph computes
    # the 8 views are not the flip's 2: this seeded run scores them differently
    assert final["PublicTest"]["acc_views"] != final["PublicTest"]["acc_tta"]
    run_export(ExportConfig(sources=(str(run),), out=tmp_path / "auto.onnx"))
    assert read_metadata(tmp_path / "auto.onnx")["tta"] == "views8"  # the run's, by default
    flip = export(run, tmp_path / "flip.onnx", tta="hflip")["metadata"]
    assert flip["accuracy_PrivateTest"] == f"{final['PrivateTest']['acc_tta']:.4f}"
    with pytest.raises(FerkitError, match="tta='views4': expected one of none, hflip"):
        loop.train(train_cfg(easy_cache, tmp_path / "bad", tta="views4"))
    plain = tmp_path / "plain"
    loop.train(train_cfg(easy_cache, plain, epochs=1))  # hflip: recorded as such
    with pytest.raises(FerkitError, match=r"different views \(hflip, views8\): choose"):
        run_export(ExportConfig(sources=(str(run), str(plain)), out=tmp_path / "mixed.onnx"))


def test_tta_views_rotate_about_the_centre_and_zoom():
    import torch.nn.functional as F
    from torch import nn

    from ferkit.training.views import Probabilities, _rotation_grid

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
        loop.train(train_cfg(small_cache, tmp_path / name, epochs=1, seed=seed))
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
    one = Classifier(tmp_path / "a.onnx").info.metadata
    for joined in (meta, Classifier(mixed).info.metadata):  # traced, and composed from files
        assert int(joined["parameters"]) == 2 * int(one["parameters"])
        assert int(joined["macs"]) == 2 * int(one["macs"])

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


def mobile_macs(w: int, side: int = 48) -> int:
    """Multiply-accumulates of `networks.Mobile` at width `w`, by hand from its docstring."""
    side //= 2
    c, total = w, side**2 * 9 * w  # the stride-2 stem, one input channel
    for stage, (mult, blocks) in enumerate(((1, 1), (2, 2), (4, 3), (8, 2))):
        for block in range(blocks):
            hidden = c * (1 if stage == 0 else 4)
            total += side**2 * c * hidden if hidden != c else 0  # 1x1 expansion
            side //= 2 if stage > 0 and block == 0 else 1
            c_out = mult * w
            total += side**2 * 9 * hidden + side**2 * hidden * c_out  # depthwise, projection
            c = c_out
    return total + side**2 * c * 16 * w + 16 * w * 7  # 1x1 to 16w, the classifier


def test_the_mobile_network_trains_exports_quantises_and_warm_starts(small_cache, tmp_path):
    """`--model mobile` (depthwise, inverted residuals: issue 47's fast end) goes the whole
    way: a run, an ONNX file with its multiply-accumulates, int8, and `--init` from it."""
    from ferkit.data import load_cache
    from ferkit.export.quantize import quantize
    from ferkit.export.torch_export import export, export_network
    from ferkit.modelfile.classifier import Classifier
    from ferkit.training.networks import ModelConfig, build_model
    from ferkit.training.warmstart import init_from_onnx

    assert round(mobile_macs(16) / 1e6, 1) == 8.5  # what the docstring quotes
    # untrained, without a run folder (benchmarks/arch_speed.py): the contract holds
    untrained = ModelConfig(name="mobile", width=16)
    path = tmp_path / "untrained.onnx"
    export_network(build_model(untrained), untrained, path, training="untrained")
    info = Classifier(path).info
    assert int(info.metadata["macs"]) == mobile_macs(16) and info.metadata["tta"] == "none"
    assert json.loads(info.metadata["architecture"])["width"] == 16
    run = tmp_path / "run"
    loop.train(train_cfg(small_cache, run, epochs=1, **{"model.name": "mobile"}))
    meta = export(run, tmp_path / "m.onnx", tta="none")["metadata"]
    assert json.loads(meta["architecture"])["name"] == "mobile"
    assert int(meta["macs"]) == mobile_macs(8)
    faces, _ = load_cache(small_cache).split("PublicTest")
    int8 = tmp_path / "m8.onnx"
    quantize(tmp_path / "m.onnx", int8, faces[:64])
    fp32, q = Classifier(tmp_path / "m.onnx").classify(faces), Classifier(int8).classify(faces)
    assert np.abs(q - fp32).max() < 0.1 and (q.argmax(1) == fp32.argmax(1)).mean() > 0.9
    x = torch.from_numpy(faces[:16]).float()[:, None]
    cfg, net = init_from_onnx(str(tmp_path / "m.onnx"), x.to(torch.uint8))
    assert cfg.name == "mobile" and type(net) is type(build_model(ModelConfig(name="mobile")))
    probs = scoring.predict_probs(net.eval(), x, 16).numpy()
    np.testing.assert_allclose(probs, fp32[:16], atol=1e-5)
