"""Model files whose metadata lies about their graph, or whose graph answers NaN, are refused
when they load, in one line, and nothing is written from them."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="building test models needs onnx (ferkit[train])")
from onnx import TensorProto, helper, numpy_helper

from ferkit.cli import main
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.modelfile.classifier import Classifier
from tests.conftest import EXAMPLES


def tiny_model(
    path,
    size=(48, 48),
    graph_size=None,
    labels=LABELS,
    outputs=7,
    batch="N",
    weight=1.0,
):
    """image [batch, 1, H, W] -> mean -> x * weight row -> softmax -> probs [batch, outputs],
    with metadata labels and input_size as given (they may disagree with the graph)."""
    h, w = graph_size or size
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, h, w])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, outputs])
    row = numpy_helper.from_array(np.full((1, outputs), weight, np.float32), "row")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "row"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [image], [probs], [row])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {"labels": list(labels), "input_size": list(size)}.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(path))
    return path


def test_a_model_that_keeps_its_word_loads_and_answers(tmp_path):
    clf = Classifier(tiny_model(tmp_path / "ok.onnx"), threads=1)
    p = clf.classify(np.full((3, 48, 48), 100, np.uint8))
    assert p.shape == (3, 7) and np.allclose(p.sum(1), 1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"size": (64, 64), "graph_size": (48, 48)}, "input_size [64, 64] but the graph takes"),
        ({"labels": LABELS[:5]}, "answers [2, 7] for 2 faces, not [2, 5]"),
        ({"size": (0, 0)}, "input_size [0, 0] is not two sizes of 8-1024 px"),
        ({"batch": 1}, "has a fixed batch of 1"),
        ({"labels": ("happy", "happy")}, "labels must be distinct names"),
        ({"weight": float("nan")}, "answered NaN or infinite probabilities"),
    ],
    ids=["size", "labels", "zero-size", "batch-1", "same-labels", "nan"],
)
def test_lying_or_broken_models_are_refused_on_load(tmp_path, kw, message):
    with pytest.raises(FerkitError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Classifier(tiny_model(tmp_path / "bad.onnx", **kw), threads=1)


def test_predict_with_a_nan_model_writes_no_row(tmp_path, capsys):
    model = tiny_model(tmp_path / "nan.onnx", weight=float("nan"))
    photo = EXAMPLES / "astronaut.jpg"
    assert main(["predict", str(photo), "--model", str(model), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "answered NaN" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
