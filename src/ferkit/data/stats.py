"""`ferkit data stats`: counts per split and class, and the two figures to look at."""

from __future__ import annotations

from pathlib import Path

from ferkit.data.cache import Cache
from ferkit.emotions import LABELS, SPLITS


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
    from ferkit import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    train = cache.splits == 0
    images, labels = (
        (cache.images[train], cache.labels[train]) if train.any() else (cache.images, cache.labels)
    )
    return [
        plots.class_balance(cache.counts(), out_dir / "class_balance.png"),
        plots.sample_grid(images, labels, out_dir / "samples.png", seed=seed),
    ]
