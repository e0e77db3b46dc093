"""Would per-class logit offsets chosen on PublicTest raise a model's accuracy?

FER-2013's classes are unbalanced (happy 25%, disgust 1.5% of Training), so adding a
constant to each class's log-probability before the argmax is the cheapest correction
there is: seven numbers, no training. This fits them on the PublicTest probabilities that
`ferkit evaluate MODEL --split PublicTest --out E` writes (`E/probabilities.npy`) by
coordinate ascent on accuracy, and, because accuracy fitted and measured on the same faces
flatters, estimates the honest gain by repeated 2-fold cross-validation inside PublicTest.
PrivateTest is never read: a gain would have to show here first.

    python benchmarks/class_bias.py E/probabilities.npy [--data data/fer2013]
"""

from __future__ import annotations

import argparse

import numpy as np

from ferkit.core.labels import LABELS
from ferkit.data import load_cache

GRID = np.linspace(-1.0, 1.0, 41)  # offsets in nats, 0.05 apart
SWEEPS = 3  # passes over the seven classes
REPEATS = 40  # random halvings of PublicTest


def accuracy(logp: np.ndarray, y: np.ndarray, bias: np.ndarray) -> float:
    """Share of faces whose offset log-probabilities put the label first."""
    return float(((logp + bias).argmax(1) == y).mean())


def fit_bias(logp: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Offsets maximising accuracy, one class at a time; ties keep the smaller offset."""
    bias = np.zeros(logp.shape[1])
    for _ in range(SWEEPS):
        for c in range(len(bias)):
            scores = []
            for g in GRID:
                trial = bias.copy()
                trial[c] = g
                scores.append((accuracy(logp, y, trial), -abs(g), g))
            bias[c] = max(scores)[2]
    return bias


def cv_gains(logp: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Accuracy gained on the held-out half by offsets fitted on the other half."""
    rng = np.random.default_rng(seed)
    zero = np.zeros(logp.shape[1])
    gains = []
    for _ in range(REPEATS):
        order = rng.permutation(len(y))
        halves = order[: len(y) // 2], order[len(y) // 2 :]
        for fit, held in (halves, halves[::-1]):
            bias = fit_bias(logp[fit], y[fit])
            gains.append(accuracy(logp[held], y[held], bias) - accuracy(logp[held], y[held], zero))
    return np.array(gains)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probabilities", help="probabilities.npy of PublicTest from `ferkit evaluate`")
    ap.add_argument("--data", default="data/fer2013", help="prepared cache")
    args = ap.parse_args()
    _, y = load_cache(args.data).split("PublicTest")
    p = np.load(args.probabilities)
    if p.shape != (len(y), len(LABELS)):
        raise SystemExit(
            f"{args.probabilities}: shape {p.shape}, PublicTest needs ({len(y)}, {len(LABELS)})"
        )
    logp = np.log(np.clip(p, 1e-9, 1.0))
    bias = fit_bias(logp, y)
    base = accuracy(logp, y, np.zeros(len(LABELS)))
    print(f"PublicTest {base:.2%}; with offsets fitted on all of it {accuracy(logp, y, bias):.2%}")
    print("offsets (nats):", " ".join(f"{b:+.2f}" for b in bias))
    g = cv_gains(logp, y)
    print(
        f"2-fold CV x {REPEATS}: held-out gain {g.mean():+.2%} (sd {g.std():.2%}), "
        f"positive in {(g > 0).mean():.0%} of halves"
    )


if __name__ == "__main__":
    main()
