"""`ferkit models`: exactly the shipped emotion models, with the numbers their files record."""

from __future__ import annotations

import json

import pytest

from ferkit.cli import main
from ferkit.modelfile import catalog
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import SHIPPED_MODELS, recorded_sha256, shipped_model_path
from ferkit.vision.blazenet import FULL_RANGE, SHORT_RANGE
from tests.modelfile.test_shipped_model import SHIPPED, _card_accuracy

WEIGHTS = shipped_model_path("SHA256SUMS").parent
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no shipped model in this checkout")


def _rows(capsys, *flags: str) -> list[dict]:
    assert main(["models", "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_models_lists_every_shipped_emotion_model_and_not_the_detectors(capsys):
    rows = _rows(capsys)
    on_disk = {p.name for p in WEIGHTS.glob("*.onnx")} - {FULL_RANGE.file, SHORT_RANGE.file}
    assert {r["file"] for r in rows} == on_disk  # every file a name, every name a file
    assert [r["name"] for r in rows] == [n for n in SHIPPED_MODELS if n in SHIPPED]
    for r in rows:
        assert r["sha256"] == recorded_sha256(r["file"])
        assert r["megabytes"] == pytest.approx((WEIGHTS / r["file"]).stat().st_size / 1e6, abs=0.01)
        for split, key in (("PublicTest", "public_test"), ("PrivateTest", "private_test")):
            assert r[key] == pytest.approx(_card_accuracy(split, r["name"]), abs=0.01), r
        assert r["parameters"] > 1e5 and r["precision"] in ("int8", "fp32")
    default = next(r for r in rows if r["name"] == "default")
    assert default["architecture"] == "vgg-s w64 (equalize)" and default["precision"] == "int8"
    assert default["parameters"] == 4_689_735 and default["tta"] == "hflip"
    fast = next(r for r in rows if r["name"] == "fast")
    assert fast["architecture"] == "vgg-s w32 (equalize)"  # the photometric layer, issue 48
    # multiply-accumulates per face, counted from each graph (issue 47): accurate is three
    # fast networks and one default network (whose hflip view is a second face), 8 views each
    assert (fast["macs"], default["macs"]) == (117_450_496, 936_942_592)
    accurate = next(r for r in rows if r["name"] == "accurate")
    assert accurate["macs"] == 8 * (3 * fast["macs"] + default["macs"] // 2)


def test_models_prints_a_table_with_the_full_digest(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert f"SHA-256 {recorded_sha256(SHIPPED_MODELS[name])}" in out
    assert "72.14%" in out and "PrivateTest" in out and "faces/s" not in out
    assert "MACs/face" in out and "937 M" in out


def test_an_ensemble_is_named_by_its_networks():
    meta = {"architecture": json.dumps([{"name": "vgg-s", "width": 32}] * 3 + [
        {"name": "vgg-s", "width": 64}])}  # fmt: skip
    assert catalog.architecture_line(meta) == "3x vgg-s w32 + vgg-s w64"
    meta = {"architecture": json.dumps([{"name": "vgg-s", "width": 32, "photometric": p}
        for p in ("equalize", "none", "equalize")])}  # fmt: skip
    assert catalog.architecture_line(meta) == "2x vgg-s w32 (equalize) + vgg-s w32"
    assert catalog.architecture_line({}) == "?"


def test_faces_per_second_times_real_calls(monkeypatch):
    clf = Classifier("default")
    calls = []
    real = clf.classify
    monkeypatch.setattr(clf, "classify", lambda faces, batch: calls.append(len(faces)) or
                        real(faces, batch=batch))  # fmt: skip
    speed = catalog.faces_per_second(clf, batch=4, seconds=0.0)
    assert calls == [4, 4, 4] and speed > 0  # a warm-up, then at least two timed calls


def test_benchmark_adds_both_batch_sizes(capsys, monkeypatch):
    seen = []

    def fake(clf, batch, seconds=2.0, seed=0):
        seen.append((clf.info.path.name, batch))
        return 100.0 * batch

    monkeypatch.setattr(catalog, "faces_per_second", fake)
    rows = _rows(capsys, "--benchmark", "--threads", "1")
    assert all(r["faces_per_s"] == {"1": 100.0, "256": 25600.0} for r in rows)
    assert seen == [(r["file"], b) for r in rows for b in (1, 256)]
    assert main(["models", "--benchmark"]) == 0
    assert "faces/s batch 256" in capsys.readouterr().out
