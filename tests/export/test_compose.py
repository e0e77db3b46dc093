"""`ferkit export A.onnx B.onnx ...`: ensembles joined from exported models, as one graph
whose output is the mean over every network inside (an ensemble member counts as many)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferkit.cli import main
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import shipped_model_path

onnx = pytest.importorskip("onnx", reason="joining models needs the onnx package (ferkit[train])")

from ferkit.export.compose import compose


def _tiny(path: Path, seed: int, members: list[str] | None = None, **meta: str) -> Path:
    """A ferkit-contract model: 48x48 image -> Gemm -> Softmax; its metadata says it averages
    `members` when given (the graph itself is one network either way)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((48 * 48, 7)) / 800).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "b")
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 7])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    props = {"labels": json.dumps(list(LABELS)), "input_size": "[48, 48]", "tta": "hflip"}
    props["training"] = f"tiny {seed}"
    props["architecture"] = json.dumps({"name": "tiny", "seed": seed})
    if members:
        lines = " || ".join(f"tiny {m}" for m in members)
        props["training"] = f"mean of {len(members)} models' probabilities: {lines}"
        props["architecture"] = json.dumps([{"name": "tiny", "seed": m} for m in members])
        props["members"] = json.dumps(members)
    props.update(meta)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


FACES = np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8)


def test_the_joined_graph_is_the_mean_over_every_network_inside(tmp_path):
    a = _tiny(tmp_path / "a.onnx", 1)
    trio = _tiny(tmp_path / "trio.onnx", 2, members=["x", "y", "z"], tta="views8")
    out = tmp_path / "joined.onnx"
    meta = compose([shipped_model_path(), a, trio], out, ["default", "a", "trio"])
    p_default, p_a, p_trio = (Classifier(m).classify(FACES) for m in ("default", a, trio))
    joined = Classifier(out)
    # five networks: the shipped one, a, and trio's three (its own mean, weighted 3)
    want = (p_default + p_a + 3 * p_trio) / 5
    np.testing.assert_allclose(joined.classify(FACES), want, atol=1e-6)
    assert joined.info.metadata == meta
    assert json.loads(meta["members"]) == ["default", "a", "x", "y", "z"]
    shipped = Classifier("default").info.metadata["training"]
    assert meta["training"].startswith(f"mean of 5 models' probabilities: {shipped} || ")
    assert meta["training"].endswith(" || tiny 1 || tiny x || tiny y || tiny z")
    assert [arch["name"] for arch in json.loads(meta["architecture"])] == [
        "vgg-s",
        *["tiny"] * 4,
    ]
    assert meta["tta"] == "hflip+views8" and joined.labels == tuple(LABELS)
    assert not any(k.startswith("accuracy_") for k in meta)  # a member's numbers aren't the mean's


def test_members_must_share_the_contract_and_bad_files_fail_in_one_line(tmp_path):
    a = _tiny(tmp_path / "a.onnx", 1)
    out = tmp_path / "joined.onnx"
    other = _tiny(tmp_path / "b.onnx", 2, labels=json.dumps(list(reversed(LABELS))))
    with pytest.raises(FerkitError, match="members disagree on labels"):
        compose([a, other], out)
    small = _tiny(tmp_path / "c.onnx", 3, input_size="[40, 40]")
    with pytest.raises(FerkitError, match="members disagree on input_size"):
        compose([a, small], out)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model at all")
    with pytest.raises(FerkitError, match=r"junk\.onnx: not an ONNX model"):
        compose([a, junk], out)
    with pytest.raises(FerkitError, match="no such model file"):
        compose([a, tmp_path / "gone.onnx"], out)
    assert not out.exists()


def test_cli_chooses_members_quantises_the_fp32_ones_and_records_accuracy(
    tmp_path, kaggle_zip, capsys
):
    from ferkit.data import load_cache
    from ferkit.export.choose import best_subset

    data = tmp_path / "c"
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(data)]) == 0
    files = [_tiny(tmp_path / "a.onnx", 1), _tiny(tmp_path / "b.onnx", 2, members=["x", "y"])]
    files.append(_tiny(tmp_path / "c.onnx", 3))
    capsys.readouterr()
    out = tmp_path / "ens.onnx"
    args = ["export", *map(str, files), "--choose-on", "PublicTest", "--data", str(data)]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    x, y = load_cache(data).split("PublicTest")
    probs = [Classifier(f).classify(x) for f in files]
    subset, acc = best_subset(probs, y, weights=[1, 2, 1])
    names = " + ".join(["a", "b", "c"][i] for i in subset)
    assert f"chosen on PublicTest: {names} ({100 * acc:.2f}%)" in printed
    assert "measured accuracy: PublicTest" in printed
    got = Classifier(out)
    assert float(got.info.metadata["accuracy_PublicTest"]) == pytest.approx(acc, abs=1e-4)
    assert "accuracy_PrivateTest" in got.info.metadata

    # --int8: fp32 members are quantised on Training faces, the joined graph stays a mean
    int8 = tmp_path / "int8.onnx"
    assert (
        main(["export", *map(str, files[:2]), "--int8", "--data", str(data), "--out", str(int8)])
        == 0
    )
    meta = Classifier(int8).info.metadata
    assert (
        meta["quantization"].startswith("a: int8 static")
        and "; b: int8 static" in meta["quantization"]
    )
    graph = onnx.load(str(int8)).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) >= 2  # each Gemm
    # the same as quantising each member alone (same calibration faces) and averaging
    for f in files[:2]:
        q = [
            "export",
            str(f),
            "--int8",
            "--data",
            str(data),
            "--out",
            str(f.with_suffix(".q.onnx")),
        ]
        assert main(q) == 0
    a8, b8 = (Classifier(f.with_suffix(".q.onnx")).classify(FACES) for f in files[:2])
    np.testing.assert_allclose(Classifier(int8).classify(FACES), (a8 + 2 * b8) / 3, atol=1e-6)


def test_cli_refusals(tmp_path, capsys):
    a, b = _tiny(tmp_path / "a.onnx", 1), _tiny(tmp_path / "b.onnx", 2)
    out = tmp_path / "ens.onnx"
    assert main(["export", str(a), str(b), "--choose-on", "PublicTest", "--out", str(out)]) == 2
    assert "need --data DIR" in capsys.readouterr().err
    assert main(["export", str(a), str(b), "--choose-on", "PrivateTest", "--out", str(out)]) == 2
    assert "would tune on the test set" in capsys.readouterr().err
    assert main(["export", str(a), str(tmp_path / "gone.onnx"), "--out", str(out)]) == 2
    assert "gone.onnx: no such model file" in capsys.readouterr().err
    assert not out.exists()
    # a shipped model by name joins like a file
    assert main(["export", "default", str(a), "--out", str(out)]) == 0
    assert json.loads(Classifier(out).info.metadata["members"]) == ["default", "a"]
