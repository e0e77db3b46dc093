"""`ferkit data stats`: counts per split and class, and the two figures to look at
(class balance, sample faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.core.figures import pyplot, save_figure
from ferkit.core.labels import LABELS, SPLITS
from ferkit.data.cache import Cache


def stats_table(cache: Cache):
    """A rich Table of per-class counts (rows) per split (columns), with shares and totals."""
    from rich.table import Table

    counts = cache.counts()
    splits = [s for s in SPLITS if sum(counts[s]) > 0]
    table = Table(
        title=f"{int(cache.labels.shape[0]):,} faces, {cache.manifest['source_kind']} source"
    )
    table.add_column("emotion")
    for s in splits:
        table.add_column(s, justify="right")
    for i, name in enumerate(LABELS):
        cells = [f"{counts[s][i]:,} ({counts[s][i] / sum(counts[s]):.1%})" for s in splits]
        table.add_row(name, *cells)
    table.add_section()
    table.add_row("total", *[f"{sum(counts[s]):,}" for s in splits])
    return table


def write_figures(cache: Cache, out_dir: Path, seed: int = 0) -> list[Path]:
    """Write `class_balance.png` and `samples.png` (Training faces, or all if none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    train = cache.splits == 0
    images, labels = (
        (cache.images[train], cache.labels[train]) if train.any() else (cache.images, cache.labels)
    )
    return [
        class_balance(cache.counts(), out_dir / "class_balance.png"),
        sample_grid(images, labels, out_dir / "samples.png", seed=seed),
    ]


def class_balance(counts: dict[str, list[int]], path: Path) -> Path:
    """Grouped bar chart: images per emotion, one bar per split, counts on the bars."""
    plt = pyplot()
    splits = [s for s, c in counts.items() if sum(c) > 0]
    x = np.arange(len(LABELS))
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, split in enumerate(splits):
        bars = ax.bar(
            x + (i - (len(splits) - 1) / 2) * width,
            counts[split],
            width,
            label=f"{split} ({sum(counts[split]):,})",
        )
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, LABELS)
    ax.set_ylabel("images")
    ax.set_title("Class balance per split")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return save_figure(fig, path)


def sample_grid(
    images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 8, seed: int = 0
) -> Path:
    """A grid of random faces, one row per emotion, labelled with the emotion's name."""
    plt = pyplot()
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(LABELS), per_class, figsize=(per_class * 1.1, len(LABELS) * 1.2), layout="constrained"
    )
    for row, name in enumerate(LABELS):
        rows = np.flatnonzero(labels == row)
        picks = rng.choice(rows, size=min(per_class, len(rows)), replace=False) if len(rows) else []
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            if col < len(picks):
                ax.imshow(images[picks[col]], cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_ylabel(f"{name}\n({len(rows):,})", rotation=0, ha="right", va="center")
    fig.suptitle("Random Training faces per emotion")
    return save_figure(fig, path)
