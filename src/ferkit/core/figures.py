"""Matplotlib on the file-only Agg backend, and PNG figures saved atomically.

pyplot is imported on first use, so modules that draw stay cheap to import."""

from __future__ import annotations

from pathlib import Path

from ferkit.core.atomic import atomic_path


def pyplot():
    """pyplot on the file-only Agg backend (no display needed); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """Save `fig` to `path` atomically and close it."""
    plt = pyplot()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
