"""Choose an ensemble's members on a validation split, never on the test split.

`ferkit export RUN... --choose-on PublicTest --out ens.onnx` exports each run alone, scores
the split with the shared inference path, then scores the mean probabilities of every
subset of the runs and exports the best one. Ties go to the smaller subset (cheaper to run),
then to the runs named first. PrivateTest is refused: choosing on it is tuning on the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError

MAX_CANDIDATES = 10  # 2**10 - 1 subsets, each a mean over a few thousand rows: under a second
CHOOSABLE_SPLITS = ("PublicTest", "Training")


def best_subset(probs: Sequence[np.ndarray], y: np.ndarray) -> tuple[tuple[int, ...], float]:
    """(indices, accuracy) of the subset of models whose mean probabilities [N, C] are
    right most often on labels `y`; smallest subset first, then earliest, on ties."""
    if not 1 <= len(probs) <= MAX_CANDIDATES:
        raise FerkitError(f"choose among 1 to {MAX_CANDIDATES} models, got {len(probs)}")
    best, best_acc = (0,), -1.0
    for k in range(1, len(probs) + 1):
        for subset in combinations(range(len(probs)), k):
            mean = np.mean([probs[i] for i in subset], axis=0)
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


def split_probs(runs: Sequence[Path], data_dir: Path, split: str, tmp: Path, tta: str) -> list:
    """Each run's probabilities on the split, through its own exported ONNX graph."""
    from ferkit.data import load_cache
    from ferkit.export import export
    from ferkit.infer import Classifier

    x, _ = load_cache(data_dir).split(split)
    probs = []
    for i, run in enumerate(runs):
        onnx = tmp / f"{i}.onnx"
        export(run, onnx, tta=tta)
        probs.append(Classifier(onnx).classify(x))
    return probs


def choose(
    runs: Sequence[Path], data_dir: Path, split: str, tmp: Path, tta: str = "hflip"
) -> tuple[list[Path], list[str]]:
    """(chosen runs, report lines): each run's accuracy alone, then the chosen mean's."""
    from ferkit.data import load_cache

    check_split(split)
    _, y = load_cache(data_dir).split(split)
    if not len(y):
        raise FerkitError(f"{data_dir}: the cache has no {split} images to choose on")
    probs = split_probs(runs, data_dir, split, tmp, tta)
    subset, acc = best_subset(probs, y)
    lines = [
        f"  {run.name}: {100 * float(np.mean(p.argmax(1) == y)):.2f}%"
        for run, p in zip(runs, probs, strict=True)
    ]
    chosen = [runs[i] for i in subset]
    names = " + ".join(r.name for r in chosen)
    lines.append(f"chosen on {split}: {names} ({100 * acc:.2f}%)")
    return chosen, [f"{split} accuracy alone:", *lines]
