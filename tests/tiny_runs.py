"""Tiny training runs on generated data, shared by the training and export tests."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from ferkit.data import synthetic
from ferkit.data.prepare import PrepareConfig, prepare


def prepared_cache(root: Path, per_class: dict[str, int]) -> Path:
    """Synthetic faces written as fer2013.csv and prepared like a user's data."""
    x, y, s = synthetic.make_dataset(per_class, seed=0)
    source = synthetic.write_csv(root / "fer2013.csv", x, y, s)
    prepare(PrepareConfig(source=source, out=root / "cache"))
    return root / "cache"


def train_cfg(data: Path, out: Path, **kw):
    """A 2-epoch, width-8 config: seconds per epoch on two cores."""
    from ferkit.training.config import TrainConfig, apply_overrides
    from ferkit.training.networks import ModelConfig

    base = TrainConfig(
        data=str(data),
        out=str(out),
        epochs=2,
        batch_size=32,
        threads=2,
        model=ModelConfig(width=8),
        eval_batch=256,
    )
    return apply_overrides(base, {"optim.warmup_epochs": 0.3, **kw})


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def learned_metrics(run: Path) -> list[tuple[str, ...]]:
    """The metrics that must be reproducible (not the timings)."""
    keys = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_acc_tta")
    return [tuple(r[k] for k in keys) for r in read_metrics(run)]


def train_args(data: Path, run: Path, epochs: int) -> list[str]:
    """`ferkit train` arguments for a tiny, fast model."""
    return [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--epochs",
        str(epochs),
        "--width",
        "8",
        "--batch-size",
        "32",
    ]


def ferkit_process(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    """`python -m ferkit ARGS` as a child process, unbuffered, its output piped."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ferkit", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def stopping_at(epoch: int):
    """A stand-in for `loop.train_one_epoch` that interrupts the run when `epoch` (0-based)
    starts, as Ctrl-C would; the real function runs the epochs before it."""
    from ferkit.training import loop

    real = loop.train_one_epoch

    def train_one_epoch(*args, **kwargs):
        if args[5] == epoch:  # the epoch index
            raise loop.Interrupted
        return real(*args, **kwargs)

    return train_one_epoch
