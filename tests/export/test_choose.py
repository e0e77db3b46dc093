"""Choosing ensemble members on a validation split (numpy only; `ferkit export --choose-on`
runs it end to end in test_compose)."""

from __future__ import annotations

import numpy as np
import pytest

from ferkit.core.errors import FerkitError
from ferkit.export.choose import MAX_CANDIDATES, best_subset, check_split


def _onehot(pred: list[int], c: int = 3, p: float = 0.6) -> np.ndarray:
    """Probabilities that put p on `pred` and spread the rest evenly."""
    out = np.full((len(pred), c), (1 - p) / (c - 1))
    out[np.arange(len(pred)), pred] = p
    return out


def _model(y: np.ndarray, sure: list[bool]) -> np.ndarray:
    """3-class probabilities: where `sure`, 0.8 on the true class; elsewhere wrong but
    hesitant, 0.4 on the next class and 0.35 on the true one."""
    out = np.empty((len(y), 3))
    for i, (label, ok) in enumerate(zip(y, sure, strict=True)):
        out[i] = 0.1 if ok else 0.25
        out[i, label] = 0.8 if ok else 0.35
        if not ok:
            out[i, (label + 1) % 3] = 0.4
    return out


def test_the_mean_of_complementary_models_beats_each_alone():
    y = np.array([0, 1, 2, 0])
    a = _model(y, [True, True, False, False])
    b = _model(y, [False, False, True, True])
    c = _model(y, [True, False, True, False])
    assert [float(np.mean(m.argmax(1) == y)) for m in (a, b, c)] == [0.5, 0.5, 0.5]
    assert best_subset([a, b, c], y) == ((0, 1), 1.0)  # each one's sure half covers the other
    assert best_subset([c, a], y) == ((0, 1), 0.75)  # both hesitate on sample 3


def test_ties_go_to_the_smallest_then_earliest_subset():
    y = np.array([0, 1])
    right = _onehot([0, 1])
    assert best_subset([right, right, right], y) == ((0,), 1.0)
    wrong = _onehot([1, 0])
    assert best_subset([wrong, right, right], y) == ((1,), 1.0)


def test_weights_count_the_networks_a_file_holds():
    """A file averaging 3 networks weighs 3 in a mean with a single network."""
    y = np.array([0, 1])
    a = np.array([[0.7, 0.3], [0.6, 0.4]])  # right on the first face only
    b = np.array([[0.2, 0.8], [0.1, 0.9]])  # right on the second only
    assert best_subset([a, b], y) == ((0,), 0.5)  # the plain mean is wrong on the first
    assert best_subset([a, b], y, weights=[3, 1]) == ((0, 1), 1.0)


def test_candidates_are_bounded_and_privatetest_is_refused():
    y = np.zeros(2, int)
    with pytest.raises(FerkitError, match="choose among 1 to"):
        best_subset([_onehot([0, 0])] * (MAX_CANDIDATES + 1), y)
    with pytest.raises(FerkitError, match="would tune on the test set"):
        check_split("PrivateTest")
    check_split("PublicTest")
