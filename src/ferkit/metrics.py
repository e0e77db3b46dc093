"""Classification metrics in plain numpy (no torch, no scikit-learn)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    idx = np.asarray(y_true) * num_classes + np.asarray(y_pred)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A class that is never predicted has precision 0 (not NaN), likewise for recall and F1,
    so averages stay defined; support tells how many true examples each class had.
    """
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(0), cm.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def accuracy(cm: np.ndarray) -> float:
    return float(np.trace(cm) / max(1, cm.sum()))
