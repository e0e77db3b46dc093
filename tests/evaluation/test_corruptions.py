"""FER-2013-C: each corruption deterministic, shape- and dtype-preserving, the identity at
severity 0 and ordered by severity; the summary by hand; `evaluate --corruptions`."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from ferkit.core.labels import LABELS
from ferkit.data import load_cache
from ferkit.evaluation import corruptions as C
from ferkit.evaluation.robustness import score, summarise
from ferkit.modelfile.classifier import Classifier

RANDOM = ("noise", "turn", "occlusion", "crop_jitter")  # the ones that draw from the seed


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    from ferkit.data import synthetic

    images, _, _ = synthetic.make_dataset({"Training": 4}, seed=3)
    return images[:24]


@pytest.mark.parametrize("name", list(C.CORRUPTIONS))
def test_each_corruption_is_deterministic_and_keeps_shape_and_dtype(crops, name):
    for severity in C.SEVERITIES:
        a = C.corrupt(crops, name, severity, seed=5)
        assert a.shape == crops.shape and a.dtype == np.uint8
        assert np.array_equal(a, C.corrupt(crops, name, severity, seed=5))
        assert not np.array_equal(a, crops)
    assert np.array_equal(C.corrupt(crops, name, 0), crops)  # severity 0 is the identity
    if name in RANDOM:  # another seed, other draws
        assert not np.array_equal(C.corrupt(crops, name, 2, 5), C.corrupt(crops, name, 2, 6))


@pytest.mark.parametrize("name", list(C.CORRUPTIONS))
def test_every_corruption_moves_further_from_the_clean_image_with_severity(crops, name):
    dist = [np.abs(C.corrupt(crops, name, s).astype(float) - crops).mean() for s in (0, 1, 2, 3)]
    assert dist[0] == 0 and all(a < b for a, b in itertools.pairwise(dist)), dist


def _sharpness(x: np.ndarray) -> float:
    return float(np.mean([cv2.Laplacian(im.astype(np.float32), cv2.CV_32F).var() for im in x]))


def test_the_statistic_each_corruption_attacks_is_monotone_in_severity(crops):
    def stat(name, fn):
        return [fn(C.corrupt(crops, name, s)) for s in (0, 1, 2, 3)]

    def falling(values):
        return all(a > b for a, b in itertools.pairwise(values))

    assert falling(stat("dim", lambda x: x.mean()))  # less light
    assert falling(stat("low_contrast", lambda x: x.reshape(len(x), -1).std(1).mean()))
    assert falling(stat("blur", _sharpness)) and falling(stat("low_resolution", _sharpness))
    occluded = stat("occlusion", lambda x: (x != crops).mean())
    assert occluded[0] == 0 and not falling(occluded) and occluded == sorted(occluded)
    residual = stat("noise", lambda x: (x.astype(float) - crops).std())
    assert residual[1:] == pytest.approx(C.NOISE[1:], rel=0.25)  # clipping trims a little


def test_unknown_corruptions_and_severities_are_refused(crops):
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        C.corrupt(crops, "fog", 1)
    with pytest.raises(ValueError, match="severity 4"):
        C.corrupt(crops, "blur", 4)


def test_the_summary_by_hand():
    y = np.array([0, 3, 3, 4])
    onehot = np.eye(7)
    clean = onehot[[0, 3, 3, 4]]  # all right
    corrupted = {(n, s): clean for n in C.CORRUPTIONS for s in C.SEVERITIES}
    corrupted["dim", 2] = onehot[[4, 4, 3, 4]]  # two more "sad", half right
    r = summarise(clean, corrupted, y, seed=0)
    assert r["clean"]["accuracy"] == 1 and r["clean"]["share"]["happy"] == 0.5
    dim = r["corruptions"]["dim"]
    assert [s["accuracy"] for s in dim["severities"]] == [1, 0.5, 1]
    assert dim["mean_accuracy"] == pytest.approx(2.5 / 3)
    assert r["mca"] == pytest.approx(1 - 0.5 / 27)  # one condition of 27 at half
    shift = dim["severities"][1]["shift"]
    assert shift["sad"] == pytest.approx(50) and shift["happy"] == pytest.approx(-25)
    assert shift["angry"] == pytest.approx(-25) and sum(shift.values()) == pytest.approx(0)
    assert r["largest_gain_at_severity_2"] == {
        "label": "sad", "corruption": "dim", "severity": 2, "points": pytest.approx(50)
    }  # fmt: skip


def test_evaluate_corruptions_writes_the_figure_the_json_and_the_tables(tmp_path, kaggle_zip,
                                                                        capsys):  # fmt: skip
    cache = tmp_path / "cache"
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(cache)]) == 0
    out = tmp_path / "report"
    args = ["evaluate", "--data", str(cache), "--split", "PublicTest", "--out", str(out)]
    assert main([*args, "--corruptions", "--corruption-seed", "3"]) == 0
    printed = capsys.readouterr().out
    r = json.loads((out / "corruptions.json").read_text())
    x, y = load_cache(cache).split("PublicTest")
    assert r == json.loads(json.dumps(score(Classifier().classify, x, y, seed=3)))  # same numbers
    assert set(r["corruptions"]) == set(C.CORRUPTIONS) and r["seed"] == 3
    assert json.loads((out / "metrics.json").read_text())["corruptions"]["mca"] == r["mca"]
    assert (out / "corruptions.png").read_bytes().startswith(b"\x89PNG")
    assert f"{r['mca']:.2%}" in printed and "largest gain" in printed
    md = (out / "report.md").read_text()
    assert f"| mCA |  |  |  | {r['mca']:.2%} |" in md and "![corruptions](corruptions.png)" in md
    assert "| dim | " in md and all(label in md for label in LABELS)
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 5


def test_dim_lights_are_what_a_dim_8bit_camera_writes():
    """Issue 48's lights: a third of the light over black level 8, and gamma 2.2."""
    from ferkit.evaluation.corruptions import DIM_LIGHTS

    x = np.array([[[0, 100, 255]]], np.uint8)
    assert DIM_LIGHTS["0.3x+8"](x).tolist() == [[[8, 38, 84]]]
    assert DIM_LIGHTS["gamma 2.2"](x).tolist() == [[[0, 33, 255]]]
    assert DIM_LIGHTS["both"](x).tolist() == [[[8, 18, 84]]]
    assert all(f(x).dtype == np.uint8 for f in DIM_LIGHTS.values())
