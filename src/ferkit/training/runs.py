"""Run folders: config.json, metrics.csv, curves.png and checkpoints, all written atomically.

A run folder is everything `ferkit train --resume` and `ferkit export` need: the resolved
config (so the model can be rebuilt from the folder alone), per-epoch metrics, and
`last.pt` / `best.pt` checkpoints that load with `weights_only=True`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ferkit.core.atomic import atomic_path, write_text
from ferkit.core.errors import FerkitError
from ferkit.modelfile.shipped import resolve_model, sha256_file
from ferkit.training.config import TrainConfig, from_dict

LAST, BEST = "last.pt", "best.pt"
METRICS = "metrics.csv"
FIELDS = [
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_acc_tta",
    "img_per_s",
    "epoch_s",  # training seconds of the epoch
    "eval_s",  # seconds scoring PublicTest after it (0 where eval_last skips it)
]


# What a run has made once an epoch ends; config.json and a header-only metrics.csv, written
# at the start, are not a run yet
RUN_FILES = (LAST, BEST, "final.json")
LOCK = ".lock"  # held by the `ferkit train` writing the run (`run_lock`)


def check_out(run: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, in one line, to train over a run unless resuming it or told to overwrite it
    (then its files go first, so no old metrics mix with the new), and to resume a folder
    that has nothing to resume."""
    if run.exists() and not run.is_dir():
        raise FerkitError(f"{run}: exists and is not a folder; choose another --out")
    if resume:
        if not (run / LAST).is_file():
            raise FerkitError(f"{run}: no {LAST} to resume (no epoch of it finished)")
        return
    held = [name for name in RUN_FILES if (run / name).exists()]
    if held and not overwrite:
        raise FerkitError(
            f"{run}: holds a run already ({', '.join(held)}); continue it with "
            f"`ferkit train --resume {run}`, or add --overwrite to start it afresh"
        )
    for name in (*held, METRICS, "curves.png"):  # a fresh run starts from no metrics
        (run / name).unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """Hold `RUN/.lock` while training writes the run: a second `ferkit train --out RUN`
    stops in one line instead of mixing its files with the first's. The kernel drops the
    lock when the process ends, however it ends, so a killed run never leaves it stale."""
    import fcntl

    if run.exists() and not run.is_dir():
        raise FerkitError(f"{run}: exists and is not a folder; choose another --out")
    made = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    try:
        with open(run / LOCK, "a") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise FerkitError(
                    f"{run}: another `ferkit train` is writing this run; wait for it to "
                    "end or choose another --out"
                ) from None
            yield
    finally:
        if made and [p.name for p in run.iterdir()] == [LOCK]:  # refused before any work
            shutil.rmtree(run, ignore_errors=True)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a temporary file and an atomic rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`: tensors and plain containers only."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FerkitError(f"{path}: no checkpoint") from None
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise FerkitError(f"{path}: not a ferkit checkpoint ({exc})") from None


def restore(path: Path, model, ema, opt) -> tuple[int, int, dict]:
    """Load a run's checkpoint into its model, EMA copy and optimiser; (epoch, step, best).
    One copied from another run (other layers, shapes or keys) is one line."""
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        return state["epoch"], state["step"], state["best"]
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        why = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FerkitError(
            f"{path}: does not fit this run's model (from another run?): {why}"
        ) from None


def write_run_info(run: Path, cfg: TrainConfig, fresh: bool) -> None:
    """config.json (resolved config, seed, git revision, command) and, for a new run, an
    empty metrics.csv."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    previous = {}
    if not fresh and (run / "config.json").is_file():
        previous = json.loads((run / "config.json").read_text()).get("sha256", {})
    info = {
        "config": dataclasses.asdict(cfg),
        "seed": cfg.seed,
        "sha256": model_digests(cfg, previous),
        "git_revision": rev or "unknown",
        "torch": torch.__version__,
        "argv": sys.argv,
    }
    write_text(run / "config.json", json.dumps(info, indent=2) + "\n")
    if fresh:
        write_text(run / METRICS, ",".join(FIELDS) + "\n")


def model_digests(cfg: TrainConfig, previous: dict[str, str]) -> dict[str, str]:
    """SHA-256 of the model files a run starts from (`init`) and learns from
    (`distill.teacher`): config.json names them by path or shipped name, which another file
    can take later. A resume keeps the recorded `init` (read once, at the start) and hashes
    the teacher again (scored, or loaded, on every start)."""
    out = {}
    for key, model in (("init", cfg.init), ("distill.teacher", cfg.distill.teacher)):
        path = resolve_model(model)[0] if model else None
        if key == "init" and previous.get(key):
            out[key] = previous[key]
        elif path is not None and path.is_file():
            out[key] = sha256_file(path)
    return out


def read_run_config(run: Path) -> TrainConfig:
    """The resolved config saved in a run folder."""
    try:
        info = json.loads((run / "config.json").read_text())
        return from_dict(info["config"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, FerkitError):
        raise FerkitError(
            f"{run}: not a ferkit run folder (no readable config.json with its config)"
        ) from None


def log_epoch(run: Path, row: dict[str, float], redraw: bool = True) -> None:
    """Append the epoch to metrics.csv (dropping rows a resumed run redoes) and, with `redraw`,
    redraw curves.png (about 0.5 s of matplotlib: a GPU epoch can take 3 s)."""
    with open(run / METRICS, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < row["epoch"]]
    rows.append({k: row[k] for k in FIELDS})
    with atomic_path(run / METRICS) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    if redraw:
        draw_curves(run)


def draw_curves(run: Path) -> None:
    """curves.png from metrics.csv (loss, accuracy and lr per epoch)."""
    from ferkit.evaluation.plots import training_curves

    training_curves(run / METRICS, run / "curves.png")
