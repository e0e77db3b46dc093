"""A model's accuracy on the cache's selection and test splits, recorded in its metadata.

Exported ensembles and int8 models carry the PublicTest and PrivateTest accuracy they were
measured at, as single-run exports carry theirs from training's final.json. Selection still
uses PublicTest only; PrivateTest is reported, never chosen on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.data import load_cache
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.metadata import update_metadata

REPORTED_SPLITS = ("PublicTest", "PrivateTest")


def split_accuracies(model: Path, data_dir: Path) -> dict[str, float]:
    """Accuracy of an ONNX model on the cache's PublicTest and PrivateTest, where present."""
    cache, clf, found = load_cache(data_dir), Classifier(model), {}
    counts = cache.counts()
    for split in REPORTED_SPLITS:
        if sum(counts[split]):
            x, y = cache.split(split)
            found[split] = float(np.mean(clf.classify(x).argmax(1) == y))
    return found


def accuracy_metadata(accs: dict[str, float]) -> dict[str, str]:
    """The metadata entries (`accuracy_<split>`, 4 decimals) for measured accuracies."""
    return {f"accuracy_{k}": f"{v:.4f}" for k, v in accs.items()}


def record_accuracies(model: Path, data_dir: Path) -> dict[str, float]:
    """Measure an exported model on the cache's PublicTest/PrivateTest and write the numbers
    into its metadata (atomically)."""
    accs = split_accuracies(model, data_dir)
    update_metadata(model, accuracy_metadata(accs))
    return accs
