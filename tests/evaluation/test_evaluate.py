"""Metrics against hand-computed values, and `ferkit evaluate` reports and comparisons."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.cli import main
from ferkit.data import load_cache, synthetic
from ferkit.evaluation.metrics import (
    accuracy,
    balanced_accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    mcnemar,
    negative_log_likelihood,
    per_class,
)
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import shipped_model_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("confusion_matrix", "per_class", "reliability", "mistakes")


# --------------------------------------------------------------------------- metrics


def test_metrics_by_hand_with_a_class_never_predicted():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0, 1, 1])  # class 2 is never predicted
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [1, 2, 0]]
    pc = per_class(cm)
    np.testing.assert_allclose(pc["precision"], [2 / 3, 2 / 5, 0])
    np.testing.assert_allclose(pc["recall"], [2 / 3, 1, 0])
    np.testing.assert_allclose(pc["f1"], [2 / 3, 2 * 0.4 / 1.4, 0])
    assert pc["support"].tolist() == [3, 2, 3]
    assert accuracy(cm) == 0.5
    assert balanced_accuracy(cm) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert macro_f1(cm) == pytest.approx((2 / 3 + 0.8 / 1.4 + 0) / 3)


def test_a_perfect_classifier_scores_one_and_is_calibrated():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 3])
    probs = np.eye(7)[y]
    cm = confusion_matrix(y, probs.argmax(1), 7)
    assert accuracy(cm) == balanced_accuracy(cm) == macro_f1(cm) == 1.0
    assert expected_calibration_error(probs, y)[0] == 0.0
    assert negative_log_likelihood(probs, y) == pytest.approx(0.0, abs=1e-9)


def test_ece_and_nll_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])  # the two 0.9s: one right, one wrong; the two 0.6s: right
    ece, bins = expected_calibration_error(probs, y, bins=10)
    # bin (0.8, 0.9]: accuracy 0.5, confidence 0.9; bin (0.5, 0.6]: accuracy 1, confidence 0.6
    assert ece == pytest.approx(2 / 4 * 0.4 + 2 / 4 * 0.4)
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]
    nll = -(math.log(0.9) + math.log(0.1) + math.log(0.6) + math.log(0.6)) / 4
    assert negative_log_likelihood(probs, y) == pytest.approx(nll)


def test_mcnemar_exact_p_value_by_hand():
    # 10 faces only A gets right, 2 only B, 30 both, 8 neither
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 8, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 8, bool)
    test = mcnemar(a, b)
    assert (test["only_a"], test["only_b"]) == (10, 2)
    # 2 * P[Binomial(12, 1/2) <= 2] = 2 * (1 + 12 + 66) / 4096
    assert test["p_value"] == pytest.approx(158 / 4096)
    assert mcnemar(a, a)["p_value"] == 1.0
    assert mcnemar(b, a)["p_value"] == pytest.approx(158 / 4096)  # symmetric


# --------------------------------------------------------------------------- the command


@pytest.fixture
def cache_dir(tmp_path, kaggle_zip) -> Path:
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(tmp_path / "cache")]) == 0
    return tmp_path / "cache"


def test_evaluate_writes_the_full_report(tmp_path, cache_dir, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--data", str(cache_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    # the numbers are those of the shared inference path on the same split
    x, y = load_cache(cache_dir).split("PrivateTest")
    probs = Classifier().classify(x)
    assert m["n"] == len(y) == 14
    assert m["accuracy"] == pytest.approx(float(np.mean(probs.argmax(1) == y)))
    assert np.array(m["confusion_matrix"]).sum() == 14
    assert m["model"]["sha256"] == Classifier().info.sha256
    assert m["model"]["metadata"]["tta"] == "hflip" and m["split"] == "PrivateTest"
    saved = np.load(out / "probabilities.npy")  # per face, in the split's order
    assert saved.dtype == np.float32 and np.allclose(saved, probs, atol=1e-6)
    assert f"{100 * m['accuracy']:.2f}%" in printed
    for name in FIGURES:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        w, h = Image.open(out / f"{name}.png").size
        assert 400 < w < 3000 and 200 < h < 3000
    page = (out / "report.html").read_text()
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "ece"):
        assert f"{100 * m[key]:.2f}%" in page
    assert page.count("data:image/png;base64,") == 4  # self-contained, no external files
    assert "<script" not in page and "http" not in page
    md = (out / "report.md").read_text()
    assert f"| accuracy | {100 * m['accuracy']:.2f}% |" in md
    assert "| disgust |" in md and "![reliability](reliability.png)" in md


def test_a_run_folder_adds_its_training_curves(tmp_path, cache_dir):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(shipped_model_path(), run / "model.onnx")
    header = "epoch,lr,train_loss,train_acc,val_loss,val_acc,val_acc_tta,img_per_s,epoch_s\n"
    rows = "".join(f"{e},0.1,{2 - e / 10},{0.3 + e / 50},{1.5 - e / 20},{0.4 + e / 40},"
                   f"{0.41 + e / 40},900,30\n" for e in range(1, 6))  # fmt: skip
    (run / "metrics.csv").write_text(header + rows)
    out = tmp_path / "report"
    assert main(["evaluate", str(run), "--data", str(cache_dir), "--out", str(out)]) == 0
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 5


def test_comparison_table_and_mcnemar_match_a_recomputation(tmp_path, cache_dir, capsys):
    pytest.importorskip("torch", reason="the second model is an fp32 rebuild (needs torch)")
    from ferkit.export.torch_export import export_views

    fp32 = tmp_path / "fp32.onnx"
    export_views("default", fp32, "hflip")  # the int8 default's weights, computed in float
    out = tmp_path / "cmp"
    args = [str(shipped_model_path()), str(fp32), "--data", str(cache_dir), "--split", "PublicTest"]
    assert main(["evaluate", *args, "--out", str(out)]) == 0
    c = json.loads((out / "comparison.json").read_text())
    assert [r["model"] for r in c["models"]] == ["default", "fp32"]
    x, y = load_cache(cache_dir).split("PublicTest")
    right = [Classifier(m).classify(x).argmax(1) == y for m in (None, fp32)]
    (pair,) = c["mcnemar"]
    assert pair == {"a": "default", "b": "fp32", **mcnemar(*right)}
    assert (out / "default" / "report.html").is_file() and (out / "fp32" / "metrics.json").is_file()
    assert "McNemar" in (out / "comparison.md").read_text()
    assert "McNemar" in capsys.readouterr().out


def test_the_same_model_twice_gets_unique_names(tmp_path, cache_dir):
    model = str(shipped_model_path())
    assert (
        main(["evaluate", model, model, "--data", str(cache_dir), "--out", str(tmp_path / "o")])
        == 0
    )
    c = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert [r["model"] for r in c["models"]] == ["default", "default-2"]
    assert c["mcnemar"][0]["p_value"] == 1.0


def test_bad_inputs_are_one_line_errors(tmp_path, cache_dir, capsys):
    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    assert main(["evaluate", str(fake), "--data", str(cache_dir)]) == 2
    assert "not a loadable ONNX model" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(cache_dir), "--split", "Validation"]) == 2
    assert "unknown split" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    # a cache whose source had no PrivateTest rows
    images, labels, splits = synthetic.make_dataset({"Training": 4}, seed=2)
    synthetic.write_kaggle_zip(tmp_path / "train_only.zip", images, labels, splits)
    assert (
        main(["data", "prepare", str(tmp_path / "train_only.zip"), "--out", str(tmp_path / "t")])
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--data", str(tmp_path / "t")]) == 2
    assert "no PrivateTest rows" in capsys.readouterr().err


def test_a_model_that_breaks_the_contract_is_refused(tmp_path, cache_dir, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["logits"])],
        "wrong",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 48, 48])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "wrong.onnx")
    assert main(["evaluate", str(tmp_path / "wrong.onnx"), "--data", str(cache_dir)]) == 2
    assert "not a ferkit model" in capsys.readouterr().err
