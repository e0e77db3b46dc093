"""`ferkit train`: fit a CNN on a prepared cache (needs ferkit[train]), or resume a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferkit.cli.options import SEED, SHIPPED_NAMES, ranged
from ferkit.core.console import console as _console
from ferkit.core.errors import FerkitError
from ferkit.core.extras import require_torch
from ferkit.training.recipes import recipe_names  # torch-free: names the TOML files


def cmd_train(args: argparse.Namespace) -> int:
    require_torch()
    from ferkit.training.config import TrainConfig, apply_overrides, load_toml
    from ferkit.training.loop import Interrupted, train
    from ferkit.training.runs import LAST, read_run_config

    overrides: dict[str, object] = {}
    if args.config:
        overrides.update(load_toml(args.config))
    flags = {
        "data": args.data,
        "out": args.out,
        "model.name": args.model,
        "model.width": args.width,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optim.lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "bf16": args.bf16,
        "channels_last": args.channels_last,
        "init": args.init,
    }
    if args.init and (args.model or args.width or args.resume):
        flag = "--resume" if args.resume else "--model/--width"
        raise FerkitError(f"--init takes the architecture from {args.init}; drop {flag}")
    overrides.update({k: v for k, v in flags.items() if v is not None})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise FerkitError(f"--set {item}: expected KEY=VALUE, e.g. model.width=64")
        overrides[key.strip()] = value.strip()
    if args.resume and args.overwrite:
        raise FerkitError("--resume continues a run and --overwrite replaces it: choose one")
    if args.resume:
        # The recorded thread count too: float sums, and so the metrics, depend on it; a
        # resumed run equals the uninterrupted one on the same threads (--threads overrides)
        base = read_run_config(Path(args.resume))
        cfg = apply_overrides(base, {**overrides, "out": args.resume})
    else:
        cfg = apply_overrides(TrainConfig(), overrides)
    try:
        result = train(cfg, resume=bool(args.resume), overwrite=args.overwrite)
    except Interrupted:
        if (Path(cfg.out) / LAST).is_file():
            print(
                f"interrupted: the last complete epoch is saved; continue with "
                f"`ferkit train --resume {cfg.out}`",
                file=sys.stderr,
            )
        else:
            print(
                "interrupted before the first epoch ended: nothing to resume; "
                "run the same command again to start over",
                file=sys.stderr,
            )
        return 130
    if result:
        _console().print_json(data=result)
    return 0


def add_train_command(sub) -> None:
    """Register `ferkit train` on the top-level subparsers."""
    p = sub.add_parser("train", help="train a CNN on a prepared cache (needs ferkit[train])")
    p.add_argument("--data", help="directory written by `ferkit data prepare`")
    p.add_argument("--out", help="run folder for config, metrics, curves and checkpoints")
    p.add_argument("--model", help='architecture (docs/training.md, "Models")')
    p.add_argument("--width", type=ranged(int, 1, 1024), help="channels of the first stage")
    p.add_argument("--epochs", type=ranged(int, 1, 100_000))
    p.add_argument(
        "--batch-size", type=ranged(int, 1, 65_536), help="images per step, over all processes"
    )
    p.add_argument(
        "--lr", type=ranged(float, 0, 100, low_open=True), help="SGD learning rate per 128 images"
    )
    p.add_argument("--seed", type=SEED)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument(
        "--threads",
        type=ranged(int, 0, 1024),
        help="torch threads per process (0: all cores; kept by --resume)",
    )
    p.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast")
    p.add_argument("--channels-last", action="store_true", default=None, help="NHWC layout")
    p.add_argument(
        "--config",
        help="TOML file of settings ([model], [optim], [augment] tables), or a shipped "
        f"recipe by name: {', '.join(recipe_names())} (docs/training.md)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any setting by dotted name, e.g. --set optim.ema_decay=0.998",
    )
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="start from an exported network's weights and architecture (an ONNX file, or "
        f"a shipped single network by name: {SHIPPED_NAMES})",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train into --out even if it holds a run (its checkpoints and metrics go first)",
    )
    p.set_defaults(func=cmd_train)
