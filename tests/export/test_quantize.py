"""`ferkit export --int8`: static int8 quantisation of an ONNX model, calibrated on a cache;
the copy keeps the contract (float softmax, probabilities summing to 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferkit import EmotionRecognizer
from ferkit.cli import main
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import shipped_model_path
from tests.conftest import EXAMPLES

pytest.importorskip("onnx", reason="int8 export needs the onnx package (ferkit[train])")

ASTRONAUT = EXAMPLES / "astronaut.jpg"


@pytest.fixture(scope="module")
def fp32_default(tmp_path_factory) -> Path:
    """The shipped default (int8) in fp32, its weights dequantised (`ferkit export default
    --tta hflip`): an fp32 model of real weights to quantise."""
    pytest.importorskip("torch", reason="rebuilding a network needs torch (ferkit[train])")
    from ferkit.export.torch_export import export_views

    out = tmp_path_factory.mktemp("fp32") / "default-fp32.onnx"
    export_views("default", out, "hflip")
    return out


def test_int8_export_of_an_fp32_model(tmp_path, kaggle_zip, fp32_default, capsys):
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(tmp_path / "c")]) == 0
    out = tmp_path / "int8.onnx"
    args = ["export", str(fp32_default), "--int8", "--data", str(tmp_path / "c")]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "int8 static" in printed and "PrivateTest" in printed
    fp32, int8 = Classifier(fp32_default), Classifier(out)
    assert int8.labels == fp32.labels and int8.info.input_size == fp32.info.input_size
    assert "42 Training images" in int8.info.metadata["quantization"]  # 6 per class
    assert out.stat().st_size < 0.6 * fp32_default.stat().st_size  # int8 weights
    # the quantised model answers like the original on a real face
    (a,) = EmotionRecognizer(model=fp32_default).predict(ASTRONAUT)
    (b,) = EmotionRecognizer(model=out).predict(ASTRONAUT)
    assert a.label == b.label
    diff = np.abs(np.array(list(a.probs.values())) - np.array(list(b.probs.values())))
    assert diff.max() < 0.15  # calibrated on 42 faces here (the shipped files on 1,024)


def test_int8_export_needs_calibration_data(tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert main(["export", str(shipped_model_path()), "--int8", "--out", str(out)]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["export", str(shipped_model_path()), "--out", str(out)]) == 2
    assert "one model file alone needs --int8" in capsys.readouterr().err
    assert not out.exists()


def test_an_int8_model_is_not_quantised_twice(tmp_path, kaggle_zip, capsys):
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(tmp_path / "c")]) == 0
    out = tmp_path / "q.onnx"
    args = ["export", "default", "--int8", "--data", str(tmp_path / "c"), "--out", str(out)]
    assert main(args) == 2
    assert "already int8" in capsys.readouterr().err and not out.exists()


def test_int8_copy_quantises_the_convolutions_and_keeps_softmax_float(tmp_path, fp32_default):
    import onnx

    from ferkit.export.quantize import quantize

    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (64, 48, 48), dtype=np.uint8)
    out = tmp_path / "int8.onnx"
    meta = quantize(fp32_default, out, calib)

    graph = onnx.load(str(out)).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) >= 8  # every convolution reads int8 activations and weights
    assert all(producers[n.input[i]] == "DequantizeLinear" for n in convs for i in (0, 1))
    softmax_out = {o for n in graph.node if n.op_type == "Softmax" for o in n.output}
    quantized = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    assert softmax_out and not softmax_out & quantized  # softmax and what follows stay float
    assert producers[graph.output[0].name] != "DequantizeLinear"
    # 7-bit weights: uint8 x int8 pair sums fit int16 on CPUs without VNNI
    weights = [
        onnx.numpy_helper.to_array(t)
        for t in graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    assert len(weights) >= 16 and max(np.abs(w).max() for w in weights) == 64

    x = rng.integers(0, 256, (32, 48, 48), dtype=np.uint8)
    p, ref = Classifier(out).classify(x), Classifier(fp32_default).classify(x)
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert "64 Training images" in meta["quantization"]
    assert not any(k.startswith("accuracy_") for k in meta)  # no data dir: nothing measured
