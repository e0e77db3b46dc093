"""Matplotlib figures of models: evaluation reports, training curves, emotions over a video.
Every figure is saved atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.core.figures import pyplot, save_figure
from ferkit.core.labels import COLOURS, LABELS


def training_curves(metrics_csv: Path, path: Path) -> Path:
    """Loss and accuracy per epoch, Training vs PublicTest, from a run's metrics.csv."""
    import csv
    import math

    plt = pyplot()
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]

    def col(name: str) -> list[float]:
        return [float(r[name]) for r in rows]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    ax_loss.plot(epochs, col("train_loss"), label="Training (augmented, smoothed labels)")
    ax_loss.plot(epochs, col("val_loss"), label="PublicTest (EMA)")
    ax_loss.set_title("loss")
    ax_acc.plot(epochs, col("train_acc"), label="Training (augmented)")
    ax_acc.plot(epochs, col("val_acc"), label="PublicTest (EMA)")
    ax_acc.plot(epochs, col("val_acc_tta"), label="PublicTest (EMA, flip TTA)")
    tta = col("val_acc_tta")  # nan where PublicTest was not scored (eval_last): no point
    scored = [i for i, a in enumerate(tta) if not math.isnan(a)]
    if scored:
        best = max(scored, key=lambda i: tta[i])
        ax_acc.scatter(
            [epochs[best]],
            [tta[best]],
            color="black",
            zorder=3,
            label=f"best {tta[best]:.2%} @ {epochs[best]}",
        )
    ax_acc.set_title("accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    return save_figure(fig, path)


def emotion_timeline(
    times: dict[int, list[float]], probs: dict[int, list[list[float]]], path: Path
) -> Path:
    """Emotion probabilities over time, one panel per tracked face (video output).
    `times[face_id]` in seconds; `probs[face_id]` rows in LABELS order."""
    plt = pyplot()
    ids = sorted(times) or [-1]
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.2 * len(ids) + 0.6), squeeze=False)
    for ax, fid in zip(axes[:, 0], ids, strict=True):
        t, p = np.asarray(times.get(fid, [])), np.asarray(probs.get(fid, []))
        for k, label in enumerate(LABELS):
            if len(t):
                b, g, r = COLOURS[label]
                ax.plot(t, p[:, k], color=(r / 255, g / 255, b / 255), label=label, lw=1.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face {fid}" if fid >= 0 else "no face")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    if times:  # no face, no lines: a legend would only warn
        axes[0, 0].legend(ncol=7, loc="lower center", bbox_to_anchor=(0.5, 1.02), frameon=False)
    return save_figure(fig, path)


def confusion_figure(cm: np.ndarray, path: Path, title: str = "") -> Path:
    """Counts and row-normalised percentages (recall per true class) in each cell."""
    plt = pyplot()
    n = len(LABELS)
    rows = cm.sum(1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), layout="constrained")
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            colour = "white" if pct[i, j] > 0.55 else "black"
            ax.text(j, i, f"{cm[i, j]}\n{100 * pct[i, j]:.0f}%", ha="center", va="center",
                    fontsize=8, color=colour)  # fmt: skip
    ax.set_xticks(range(n), LABELS, rotation=35, ha="right")
    ax.set_yticks(range(n), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (count, % of the true class)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return save_figure(fig, path)


def per_class_figure(pc: dict[str, np.ndarray], path: Path) -> Path:
    """Precision, recall and F1 per emotion, grouped bars, support under each name."""
    plt = pyplot()
    x = np.arange(len(LABELS))
    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    for k, name in enumerate(("precision", "recall", "f1")):
        bars = ax.bar(x + (k - 1) * 0.27, pc[name], 0.27, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    names = [f"{lab}\n(n={int(s)})" for lab, s in zip(LABELS, pc["support"], strict=True)]
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=3, frameon=False, loc="upper left")
    return save_figure(fig, path)


def reliability_figure(bins: list[dict[str, float]], ece: float, path: Path) -> Path:
    """Accuracy against confidence per bin (a calibrated model sits on the diagonal), with
    the share of samples per bin underneath."""
    plt = pyplot()
    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(5.5, 6), height_ratios=(3, 1), sharex=True, layout="constrained"
    )
    centres = [(b["lo"] + b["hi"]) / 2 for b in bins]
    width = bins[0]["hi"] - bins[0]["lo"]
    used = [b["count"] > 0 for b in bins]
    acc = [b["accuracy"] if u else 0 for b, u in zip(bins, used, strict=True)]
    conf = [b["confidence"] if u else 0 for b, u in zip(bins, used, strict=True)]
    ax.bar(centres, acc, width * 0.95, label="accuracy", edgecolor="black", lw=0.5)
    acc_a, conf_a = np.array(acc), np.array(conf)
    ax.bar(centres, np.abs(conf_a - acc_a), width * 0.95, bottom=np.minimum(acc_a, conf_a),
           color="tab:red", alpha=0.35, label="gap to mean confidence")  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (ECE {100 * ece:.2f}%)")
    ax.legend(frameon=False, loc="upper left")
    total = max(1, sum(b["count"] for b in bins))
    ax_n.bar(centres, [b["count"] / total for b in bins], width * 0.95, color="gray")
    ax_n.set_ylabel("share")
    ax_n.set_xlabel("confidence (top probability)")
    ax_n.set_xlim(0, 1)
    return save_figure(fig, path)


def mistakes_grid(
    images: np.ndarray, y_true: np.ndarray, probs: np.ndarray, path: Path, count: int = 24
) -> Path:
    """The `count` most confident mistakes, each titled 'true -> predicted p'."""
    plt = pyplot()
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:count]
    cols = 6
    rows = max(1, -(-len(order) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.15 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order, strict=False):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{LABELS[y_true[i]]} -> {LABELS[pred[i]]}\n{probs[i, pred[i]]:.2f}",
                     fontsize=8)  # fmt: skip
    fig.suptitle("most confident mistakes (true -> predicted, probability)", fontsize=10)
    return save_figure(fig, path)


def corruption_figure(r: dict, path: Path, title: str = "") -> Path:
    """FER-2013-C in two heat maps: accuracy per corruption and severity (clean first, mCA
    in the title), and each emotion's change of predicted share at severity 2, in points."""
    plt = pyplot()
    names = list(r["corruptions"])
    acc = np.array([[s["accuracy"] for s in r["corruptions"][n]["severities"]] for n in names])
    shift = np.array(
        [[r["corruptions"][n]["severities"][1]["shift"][k] for k in LABELS] for n in names]
    )
    fig, (ax_a, ax_s) = plt.subplots(
        1, 2, figsize=(13, 0.45 * len(names) + 2.2), width_ratios=(4, 7), layout="constrained"
    )
    clean = r["clean"]["accuracy"]
    grid = np.column_stack([np.full(len(names), clean), acc])
    ax_a.imshow(grid, cmap="viridis", vmin=0, vmax=max(clean, 1e-6), aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        ax_a.text(j, i, f"{100 * v:.1f}", ha="center", va="center", fontsize=8,
                  color="black" if v > 0.6 * clean else "white")  # fmt: skip
    ax_a.set_xticks(range(4), ["clean", "1", "2", "3"])
    ax_a.set_yticks(range(len(names)), names)
    ax_a.set_xlabel("severity")
    ax_a.set_title(f"accuracy, % (mCA {100 * r['mca']:.2f}%)")
    lim = max(10.0, float(np.abs(shift).max()))
    im = ax_s.imshow(shift, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), v in np.ndenumerate(shift):
        ax_s.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=8)
    ax_s.set_xticks(range(len(LABELS)), LABELS, rotation=30, ha="right")
    ax_s.set_yticks(range(len(names)), [])
    ax_s.set_title("change of predicted share at severity 2, points")
    fig.colorbar(im, ax=ax_s, shrink=0.8, label="points of the split")
    fig.suptitle(title or f"FER-2013-C ({r['n']:,} faces per condition, seed {r['seed']})")
    return save_figure(fig, path)
