"""`ferkit export --int8`: static int8 quantisation of an ONNX model, calibrated on a cache;
the copy keeps the contract (float softmax, probabilities summing to 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferkit import EmotionRecognizer
from ferkit.cli import main
from ferkit.infer import Classifier, shipped_model_path

pytest.importorskip("onnx", reason="int8 export needs the onnx package (ferkit[train])")

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def test_int8_export_of_the_shipped_model(tmp_path, kaggle_zip, capsys):
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(tmp_path / "c")]) == 0
    out = tmp_path / "int8.onnx"
    args = ["export", str(shipped_model_path()), "--int8", "--data", str(tmp_path / "c")]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "int8 static" in printed and "PrivateTest" in printed
    fp32, int8 = Classifier(), Classifier(out)
    assert int8.labels == fp32.labels and int8.info.input_size == fp32.info.input_size
    assert "42 Training images" in int8.info.metadata["quantization"]  # 6 per class
    assert out.stat().st_size < 0.6 * shipped_model_path().stat().st_size  # int8 weights
    # the quantised model answers like the original on a real face
    (a,) = EmotionRecognizer().predict(ASTRONAUT)
    (b,) = EmotionRecognizer(model=out).predict(ASTRONAUT)
    assert a.label == b.label
    diff = np.abs(np.array(list(a.probs.values())) - np.array(list(b.probs.values())))
    assert diff.max() < 0.1


def test_int8_export_needs_calibration_data(tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert main(["export", str(shipped_model_path()), "--int8", "--out", str(out)]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["export", str(shipped_model_path()), "--out", str(out)]) == 2
    assert "one model file alone needs --int8" in capsys.readouterr().err
    assert not out.exists()


def test_int8_copy_quantises_the_convolutions_and_keeps_softmax_float(tmp_path):
    import onnx

    from ferkit.quantize import quantize

    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (64, 48, 48), dtype=np.uint8)
    out = tmp_path / "int8.onnx"
    meta = quantize(shipped_model_path(), out, calib)

    graph = onnx.load(str(out)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") >= 16  # at least one per convolution
    producers = {o: n.op_type for n in graph.node for o in n.output}
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
    p, ref = Classifier(out).classify(x), Classifier().classify(x)
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert "64 Training images" in meta["quantization"]
    assert not any(k.startswith("accuracy_") for k in meta)  # no data dir: nothing measured
