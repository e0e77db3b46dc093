"""Choose an ensemble's members on a validation split, never on the test split.

`ferkit export RUN... --choose-on PublicTest --out ens.onnx` exports each run alone
(`ferkit.export.pipeline`); here each file scores the split through the shared inference
path, then the mean probabilities of every subset are scored and the best subset wins. Ties
go to the smaller subset (cheaper to run), then to the runs named first. PrivateTest is
refused: choosing on it is tuning on the test."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.data import load_cache
from ferkit.modelfile.classifier import Classifier

MAX_CANDIDATES = 10  # 2**10 - 1 subsets, each a mean over a few thousand rows: under a second
CHOOSABLE_SPLITS = ("PublicTest", "Training")


def best_subset(
    probs: Sequence[np.ndarray], y: np.ndarray, weights: Sequence[float] | None = None
) -> tuple[tuple[int, ...], float]:
    """(indices, accuracy) of the subset of models whose mean probabilities [N, C] are
    right most often on labels `y`; smallest subset first, then earliest, on ties.
    `weights`: each model's weight in a mean (the networks a file holds; default 1 each)."""
    if not 1 <= len(probs) <= MAX_CANDIDATES:
        raise FerkitError(f"choose among 1 to {MAX_CANDIDATES} models, got {len(probs)}")
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, float)
    best, best_acc = (0,), -1.0
    for k in range(1, len(probs) + 1):
        for subset in combinations(range(len(probs)), k):
            mean = np.average([probs[i] for i in subset], axis=0, weights=w[list(subset)])
            acc = float(np.mean(mean.argmax(1) == y))
            if acc > best_acc:  # strict: an equal score never displaces a smaller subset
                best, best_acc = subset, acc
    return best, best_acc


def check_split(split: str) -> None:
    """Refuse to choose on anything but a validation split."""
    if split not in CHOOSABLE_SPLITS:
        raise FerkitError(
            f"--choose-on {split}: choose on {' or '.join(CHOOSABLE_SPLITS)}; choosing on "
            "PrivateTest would tune on the test set and make its accuracy meaningless"
        )


def choose_models(
    models: Sequence[Path],
    names: Sequence[str],
    data_dir: Path,
    split: str,
    weights: Sequence[float] | None = None,
) -> tuple[tuple[int, ...], list[str]]:
    """(indices of the chosen ONNX models, report lines): each model's accuracy alone on
    the split, through the shared inference path, then the chosen mean's."""
    check_split(split)
    x, y = load_cache(data_dir).split(split)
    if not len(y):
        raise FerkitError(f"{data_dir}: the cache has no {split} images to choose on")
    probs = [Classifier(model).classify(x) for model in models]
    subset, acc = best_subset(probs, y, weights)
    lines = [
        f"  {name}: {100 * float(np.mean(p.argmax(1) == y)):.2f}%"
        for name, p in zip(names, probs, strict=True)
    ]
    lines.append(f"chosen on {split}: {' + '.join(names[i] for i in subset)} ({100 * acc:.2f}%)")
    return subset, [f"{split} accuracy alone:", *lines]
