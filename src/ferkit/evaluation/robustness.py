"""Scores on FER-2013-C: clean accuracy, mean corruption accuracy (mCA), accuracy per
corruption and severity, and how the share of each predicted emotion moves under each one
(does "sad" grow in dim light?). The protocol is the clean one's: choose on PublicTest-C,
report PrivateTest-C once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ferkit.core.labels import LABELS
from ferkit.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt

Probs = dict[tuple[str, int], np.ndarray]  # (corruption, severity) -> [N, 7] probabilities


def conditions(x: np.ndarray, seed: int = 0) -> Iterator[tuple[str, int, np.ndarray]]:
    """(corruption, severity, images) for every corruption at severities 1..3."""
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            yield name, severity, corrupt(x, name, severity, seed)


def shares(probs: np.ndarray) -> np.ndarray:
    """Share of the images predicted as each emotion (the argmax), [7], summing to 1."""
    return np.bincount(probs.argmax(1), minlength=len(LABELS)) / max(1, len(probs))


def summarise(clean: np.ndarray, corrupted: Probs, y: np.ndarray, seed: int) -> dict[str, Any]:
    """The FER-2013-C report, JSON-ready, from the clean and the corrupted probabilities.
    `shift` is a class's predicted share under a condition minus its clean share, in points
    of the whole split (+10: one image in ten more is called that emotion)."""
    clean_share = shares(clean)
    out: dict[str, Any] = {
        "seed": seed,
        "n": len(y),
        "clean": {
            "accuracy": float(np.mean(clean.argmax(1) == y)),
            "share": dict(zip(LABELS, clean_share.tolist(), strict=True)),
        },
        "corruptions": {},
    }
    accs, largest = [], None
    for name in CORRUPTIONS:
        rows = []
        for severity in SEVERITIES:
            p = corrupted[name, severity]
            acc = float(np.mean(p.argmax(1) == y))
            share = shares(p)
            shift = 100 * (share - clean_share)
            rows.append({
                "severity": severity,
                "accuracy": acc,
                "share": dict(zip(LABELS, share.tolist(), strict=True)),
                "shift": dict(zip(LABELS, shift.tolist(), strict=True)),
            })  # fmt: skip
            accs.append(acc)
            k = int(shift.argmax())
            if severity == 2 and (largest is None or shift[k] > largest["points"]):
                largest = {"label": LABELS[k], "corruption": name, "severity": 2,
                           "points": float(shift[k])}  # fmt: skip
        out["corruptions"][name] = {
            "mean_accuracy": float(np.mean([r["accuracy"] for r in rows])),
            "severities": rows,
        }
    out["mca"] = float(np.mean(accs))
    out["largest_gain_at_severity_2"] = largest
    return out


def corrupted_probs(
    classify: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Probs:
    """`classify` (uint8 crops [N, H, W] to [N, 7] probabilities: a `Classifier.classify`,
    or any other model's) on each of the 27 conditions; `progress(1)` after each."""
    out = {}
    for name, severity, images in conditions(x, seed):
        out[name, severity] = classify(images)
        if progress:
            progress(1)
    return out


def score(
    classify: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """FER-2013-C for one model, clean split included."""
    return summarise(classify(x), corrupted_probs(classify, x, seed), y, seed)


def tables(r: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of the two report tables: accuracy per corruption and
    severity, and each emotion's change of predicted share at severity 2."""
    pct = "{:.2%}".format
    acc = [["clean", pct(r["clean"]["accuracy"]), "", "", ""]]
    for name, c in r["corruptions"].items():
        acc.append([name, *(pct(s["accuracy"]) for s in c["severities"]),
                    pct(c["mean_accuracy"])])  # fmt: skip
    acc.append(["mCA", "", "", "", pct(r["mca"])])
    shift = [
        [name, *(f"{c['severities'][1]['shift'][k]:+.1f}" for k in LABELS)]
        for name, c in r["corruptions"].items()
    ]
    big = r["largest_gain_at_severity_2"]
    clean = ", ".join(f"{k} {v:.1%}" for k, v in r["clean"]["share"].items())
    return [
        (
            f"FER-2013-C accuracy (seed {r['seed']}, {r['n']:,} faces per condition)",
            ["corruption", "severity 1", "severity 2", "severity 3", "mean"],
            acc,
        ),
        (
            f"Change of predicted share at severity 2, points (clean: {clean}); largest gain: "
            f"{big['label']} under {big['corruption']}, {big['points']:+.1f}",
            ["corruption", *LABELS],
            shift,
        ),
    ]
