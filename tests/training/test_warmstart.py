"""`ferkit train --init MODEL`: a run starts from an exported model's weights and
architecture, fp32 or int8."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.training import loop, runs, scoring
from tests.tiny_runs import (
    train_cfg,
)


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
        p = scoring.predict_probs(net, x, 16) + scoring.predict_probs(net, x, 16, True)
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
    loop.train(train_cfg(small_cache, run, epochs=1, **kw))
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
    monkeypatch.setattr(loop, "load_data", lambda *a: pytest.fail("data loaded first"))
    kw = {"init": str(tmp_path / "none.onnx"), "distill.teacher": teacher_onnx}
    with pytest.raises(FerkitError, match=r"--init .*none\.onnx: no such model file"):
        loop.train(train_cfg(small_cache, tmp_path / "y", **kw))
    capsys.readouterr()
    args = ["train", "--data", str(small_cache), "--out", str(tmp_path / "x")]
    assert main([*args, "--init", teacher_onnx, "--width", "16"]) == 2
    assert "--init takes the architecture from" in capsys.readouterr().err


def test_a_network_fine_tunes_and_exports_at_another_input_size(small_cache, tmp_path):
    """`--set input_size=40` with `--init`: the faces are resized as inference resizes a
    crop, the network (convolutions and global pooling) takes them, and the exported file,
    int8 included, says 40 px, so every caller resizes to it (issue 47: fewer
    multiply-accumulates per face)."""
    from ferkit.data import load_cache
    from ferkit.export.quantize import quantize
    from ferkit.export.torch_export import export
    from ferkit.modelfile.classifier import Classifier

    first = tmp_path / "first"
    loop.train(train_cfg(small_cache, first, epochs=1))
    export(first, tmp_path / "first.onnx", tta="none")
    run = tmp_path / "small"
    result = loop.train(train_cfg(small_cache, run, epochs=1, init=str(tmp_path / "first.onnx"),
                                  input_size=40))  # fmt: skip
    assert result["PrivateTest"]["n"] > 0  # the final report reads the faces at 40 px too
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["model"]["input_size"] == 40 and saved["input_size"] == 40
    meta = export(run, tmp_path / "small.onnx", tta="none")["metadata"]
    assert json.loads(meta["input_size"]) == [40, 40]
    # (40 / 48)^2 of the work in the convolutions; the classifier is the same
    big = int(Classifier(tmp_path / "first.onnx").info.metadata["macs"])
    linear = 64 * 7
    assert int(meta["macs"]) - linear == (big - linear) * 40**2 // 48**2
    faces, _ = load_cache(small_cache).split("Training")
    int8 = tmp_path / "small-int8.onnx"
    quantize(tmp_path / "small.onnx", int8, faces[:64])  # calibrated at the network's size
    clf = Classifier(int8)
    assert clf.info.input_size == (40, 40) and clf.classify(faces[:3]).shape == (3, 7)
    # the same resize as training's: the cache at 40 px equals the crops resized by inference
    small, _ = load_cache(small_cache).split("PublicTest", 40)
    x48, _ = load_cache(small_cache).split("PublicTest")
    np.testing.assert_array_equal(clf.preprocess(x48)[:, 0], small.astype(np.float32))
