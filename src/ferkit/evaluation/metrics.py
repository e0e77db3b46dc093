"""Classification metrics in plain numpy (no torch, no scikit-learn)."""

from __future__ import annotations

import math
from fractions import Fraction

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


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes that occur (FER-2013's disgust is 1.5% of the data, so
    plain accuracy hides how a model does on it)."""
    support = cm.sum(1)
    recall = np.diag(cm)[support > 0] / support[support > 0]
    return float(recall.mean()) if len(recall) else 0.0


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over all classes (0 for a class never predicted)."""
    return float(per_class(cm)["f1"].mean())


def expected_calibration_error(
    probs: np.ndarray, y_true: np.ndarray, bins: int = 15
) -> tuple[float, list[dict[str, float]]]:
    """ECE with equal-width confidence bins: sum over bins of |accuracy - mean confidence|
    weighted by the share of samples in the bin. Also returns the bins (for the
    reliability diagram): lower edge, upper edge, count, mean confidence, accuracy."""
    conf = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    edges = np.linspace(0, 1, bins + 1)
    # bin i holds lo < conf <= hi; confidence 0 cannot happen for a softmax over 7 classes
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for i in range(bins):
        mask = which == i
        n = int(mask.sum())
        acc = float(correct[mask].mean()) if n else 0.0
        mean_conf = float(conf[mask].mean()) if n else 0.0
        ece += n / max(1, len(conf)) * abs(acc - mean_conf)
        table.append(
            {
                "lo": edges[i],
                "hi": edges[i + 1],
                "count": n,
                "confidence": mean_conf,
                "accuracy": acc,
            }
        )
    return float(ece), table


def negative_log_likelihood(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean -log p(true class), natural log; probabilities floored at 1e-12."""
    p = probs[np.arange(len(probs)), np.asarray(y_true)]
    return float(-np.log(np.maximum(p, 1e-12)).mean())


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact two-sided McNemar test on paired predictions of two models on the same faces.

    b = faces only A gets right, c = faces only B gets right. Under the null hypothesis
    (equal error rates) each discordant face is a fair coin, so
    p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)]), computed exactly.
    """
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    n, k = b + c, min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    p = min(1.0, float(Fraction(2 * tail, 2**n))) if n else 1.0
    # log10 p, exact from the integers: a p under 1e-308 is 0.0 as a float (thousands of
    # discordant faces), and it is printed from this (`format_p`), never as "0"
    log10_p = min(0.0, math.log10(2 * tail) - n * math.log10(2)) if n else 0.0
    return {"only_a": b, "only_b": c, "p_value": p, "log10_p": log10_p}


def format_p(test: dict[str, float]) -> str:
    """A McNemar p for people: 4 significant digits, or from log10 p below float's range
    ("3.2e-412")."""
    if test["p_value"] > 0:
        return f"{test['p_value']:.4g}"
    exponent = math.floor(test["log10_p"])
    return f"{10 ** (test['log10_p'] - exponent):.2g}e{exponent}"
