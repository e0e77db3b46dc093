"""The shipped models: integrity, contract, and the accuracy the model card states."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import (
    SHIPPED_MODELS,
    recorded_sha256,
    sha256_file,
    shipped_model_path,
)
from tests.conftest import SHARED_ARCHIVE

MODEL = shipped_model_path()
CARD = shipped_model_path("MODEL_CARD.md")
SHIPPED = [name for name, file in SHIPPED_MODELS.items() if shipped_model_path(file).is_file()]
# The model card's lines "- [fast |accurate ]PublicTest accuracy: NN.NN%", by model.
CARD_PREFIX = {"default": "", "fast": "fast ", "accurate": "accurate "}
MAX_MB = {"default": 8, "fast": 3, "accurate": 10}  # small enough for the wheel
TTA = {"default": "hflip", "fast": "none", "accurate": "views8"}  # fast: no views, for speed

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="no shipped model in this checkout")


def _card_accuracy(split: str, name: str = "default") -> float:
    """The accuracy the model card states, from its line `- [accurate ]SPLIT accuracy: NN.NN%`."""
    line = rf"^- {CARD_PREFIX[name]}{split} accuracy: (\d+\.\d+)%"
    match = re.search(line, CARD.read_text(), re.MULTILINE)
    assert match, f"MODEL_CARD.md states no {name} {split} accuracy"
    return float(match.group(1))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_intact_small_and_follows_the_contract(name):
    file = SHIPPED_MODELS[name]
    assert sha256_file(shipped_model_path(file)) == recorded_sha256(file)
    assert shipped_model_path(file).stat().st_size < MAX_MB[name] * 2**20
    clf = Classifier(name)
    assert clf.labels == LABELS and clf.info.input_size == (48, 48)
    assert clf.info.tta == TTA[name]
    assert "Training" in clf.info.metadata["training"]
    if name == "accurate":
        assert len(json.loads(clf.info.metadata["members"])) >= 2
    p = clf.classify(np.full((3, 48, 48), 128, np.uint8))
    assert p.shape == (3, 7) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_a_tampered_shipped_model_is_refused(monkeypatch):
    monkeypatch.setattr(
        "ferkit.modelfile.shipped.recorded_sha256", lambda name="default.onnx": "0" * 64
    )
    with pytest.raises(FerkitError, match="does not match the recorded"):
        Classifier()


def test_shipped_models_are_chosen_by_name(monkeypatch, tmp_path):
    assert Classifier("default").info.sha256 == recorded_sha256() == Classifier().info.sha256
    monkeypatch.setitem(SHIPPED_MODELS, "missing", "missing.onnx")
    with pytest.raises(FerkitError, match="'missing' model is not shipped"):
        Classifier("missing")
    with pytest.raises(FerkitError, match="no such model file"):
        Classifier(str(tmp_path / "default"))  # a path is a path, even if named like a model


def test_session_settings_reach_onnx_runtime_and_keep_the_answers():
    """What `benchmarks/ort_settings.py` varies: each setting lands in the session's
    options, and none changes the probabilities beyond float rounding (or int8's, below)."""
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    base = Classifier("default")
    assert base.session.get_session_options().intra_op_num_threads == 0
    settings = ((1, "off", "basic"), (2, "on", "extended"), (2, "run", "all"))
    for threads, spinning, level in settings:
        clf = Classifier("default", threads=threads, spinning=spinning, optimization=level)
        options = clf.session.get_session_options()
        assert options.intra_op_num_threads == threads
        entry = options.get_session_config_entry
        allow, stop = {"off": ("0", "0"), "on": ("1", "0"), "run": ("1", "1")}[spinning]
        assert entry("session.intra_op.allow_spinning") == allow
        assert entry("session.force_spinning_stop") == stop
        assert options.graph_optimization_level.name == f"ORT_ENABLE_{level.upper()}"
        # "basic" leaves an int8 graph's QDQ pairs unfused: float arithmetic where "all" runs
        # int8 kernels, so the probabilities move by up to 0.01 (0.0075 on 1,000 PublicTest
        # faces; 0.010 for the default before 2026-12-04), never the ranking beyond that
        atol = 0.01 if level == "basic" else 1e-4
        assert np.allclose(clf.classify(faces), base.classify(faces), atol=atol)
    with pytest.raises(FerkitError, match="optimization 'fastest': choose one of"):
        Classifier("default", optimization="fastest")
    with pytest.raises(FerkitError, match="spinning 'yes': choose one of on, off, run"):
        Classifier("default", spinning="yes")


needs_archive = pytest.mark.skipif(
    not SHARED_ARCHIVE.is_file(), reason=f"no FER-2013 archive at {SHARED_ARCHIVE}"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from ferkit.data import load_cache
    from ferkit.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("fer")
    prepare(PrepareConfig(source=SHARED_ARCHIVE, out=out))
    return load_cache(out)


# `accurate` (eight views of a 4-network ensemble) classifies 19 faces/s on an AVX2 EPYC
# (`ferkit models --benchmark`), 6 minutes for both splits, so by default it is checked
# on a sample; every model is checked exactly with FERKIT_FULL_DATA_TESTS=1
# (`make test-data`).
FULL = os.environ.get("FERKIT_FULL_DATA_TESTS") == "1"
SAMPLE = 400  # faces per split for a sampled model


def _accuracy(clf: Classifier, x: np.ndarray, y: np.ndarray) -> float:
    return 100 * float((clf.classify(x).argmax(1) == y).mean())


@needs_archive
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_accuracy_matches_its_card(cache, name):
    clf = Classifier(name)
    for split in ("PublicTest", "PrivateTest"):
        x, y = cache.split(split)
        card = _card_accuracy(split, name)
        if FULL or name != "accurate":
            assert _accuracy(clf, x, y) == pytest.approx(card, abs=0.1), split
            continue
        # every k-th face, a sample spread over the split; 4 binomial sigmas (9 points at
        # 400) pass a sound model and fail a broken pipeline, which lands far lower
        pick = np.linspace(0, len(x) - 1, SAMPLE).astype(int)
        sigma = 100 * (card / 100 * (1 - card / 100) / SAMPLE) ** 0.5
        assert _accuracy(clf, x[pick], y[pick]) == pytest.approx(card, abs=4 * sigma), split


def test_the_card_states_the_issue_targets():
    assert _card_accuracy("PrivateTest") >= 72.0  # the issue-31 targets
    if "fast" in SHIPPED:
        assert _card_accuracy("PrivateTest", "fast") >= 69.5
    if "accurate" in SHIPPED:  # it earns its name on the split it was chosen on
        assert _card_accuracy("PublicTest", "accurate") > _card_accuracy("PublicTest") + 1


@needs_archive
def test_the_drift_to_sad_the_card_states_for_small_faces(cache):
    """One FER-2013-C condition of the card's, recomputed: PrivateTest shrunk to 24 px."""
    from ferkit.evaluation.corruptions import RESOLUTION, corrupt
    from ferkit.evaluation.robustness import shares

    x, _ = cache.split("PrivateTest")
    clf = Classifier()
    assert RESOLUTION[2] == 24
    sad = LABELS.index("sad")
    gain = 100 * (shares(clf.classify(corrupt(x, "low_resolution", 2)))[sad] - shares(
        clf.classify(x))[sad])  # fmt: skip
    assert f"a face shrunk to 24 px\nis called sad {gain:.1f} points" in CARD.read_text()


DIM_KEPT = 95.0  # %: issue 48's bar for faces keeping their label under each dim light


@needs_archive
@pytest.mark.parametrize("name", ["default", "fast"])
def test_dimmed_faces_keep_their_label(cache, name):
    """PrivateTest as a dim camera gives it (a third of the light, gamma 2.2): the shipped
    models answer as for the crop as it is, for at least 95% of faces (issue 48; before the
    photometric layer 71-77%). `benchmarks/dim_light.py` prints the figures."""
    from ferkit.evaluation.corruptions import DIM_LIGHTS

    x, _ = cache.split("PrivateTest")
    clf = Classifier(name)
    clean = clf.classify(x).argmax(1)
    for light in ("0.3x+8", "gamma 2.2"):
        kept = 100 * np.mean(clf.classify(DIM_LIGHTS[light](x)).argmax(1) == clean)
        assert kept >= DIM_KEPT, light
