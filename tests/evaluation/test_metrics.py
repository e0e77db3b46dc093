"""Metrics against values computed by hand."""

import numpy as np

from ferkit.evaluation.metrics import accuracy, confusion_matrix, per_class


def test_confusion_and_per_class_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 0, 0])  # class 2 never predicted
    cm = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [1, 1, 0], [1, 0, 0]])
    m = per_class(cm)
    np.testing.assert_allclose(m["precision"], [2 / 4, 1 / 2, 0])
    np.testing.assert_allclose(m["recall"], [2 / 3, 1 / 2, 0])
    np.testing.assert_allclose(m["f1"], [2 * (0.5 * 2 / 3) / (0.5 + 2 / 3), 0.5, 0])
    np.testing.assert_array_equal(m["support"], [3, 2, 1])
    assert accuracy(cm) == 0.5


def test_perfect_classifier():
    y = np.array([0, 1, 2, 2])
    cm = confusion_matrix(y, y, 3)
    m = per_class(cm)
    assert accuracy(cm) == 1.0
    np.testing.assert_allclose(m["f1"], [1, 1, 1])
