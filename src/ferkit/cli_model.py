"""`ferkit train`, `ferkit export` and `ferkit evaluate`: the commands that make models and
measure them."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ferkit.console import console as _console
from ferkit.errors import FerkitError
from ferkit.infer import TTA_MODES, resolve_model


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise FerkitError("this command needs torch: pip install 'ferkit[train]'") from None


def cmd_train(args: argparse.Namespace) -> int:
    _require_torch()
    from ferkit.config import TrainConfig, apply_overrides, load_toml
    from ferkit.runs import read_run_config
    from ferkit.train import Interrupted, train

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
    if args.resume:
        # Threads describe the machine, not the recipe: a resumed run uses all cores again
        # (0 = auto) unless --threads is given, whatever the interrupted process was told.
        base = read_run_config(Path(args.resume))
        cfg = apply_overrides(base, {"threads": 0, **overrides, "out": args.resume})
    else:
        cfg = apply_overrides(TrainConfig(), overrides)
    try:
        result = train(cfg, resume=bool(args.resume))
    except Interrupted:
        print(
            f"interrupted: the last complete epoch is saved; continue with "
            f"`ferkit train --resume {cfg.out}`",
            file=sys.stderr,
        )
        return 130
    if result:
        _console().print_json(data=result)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ferkit.compose import is_model_file

    sources, out = [Path(r) for r in args.runs], Path(args.out)
    files = [s for s in args.runs if is_model_file(s)]
    tta = args.tta or "hflip"  # run folders' views; a model file keeps its own unless --tta
    if files and len(sources) == 1 and not args.tta:  # quantise it (onnx, not torch)
        if not args.int8:
            raise FerkitError(
                f"{files[0]}: one model file alone needs --int8 or --tta (or more members)"
            )
        if not args.data:
            raise FerkitError("--int8 on a model file needs --data DIR for calibration images")
        return _quantize(resolve_model(files[0])[0], out, Path(args.data), args.calib_images)
    runs = [s for s in sources if not is_model_file(str(s))]
    alone = files and len(sources) == 1  # one exported network, new views (torch rebuilds it)
    if runs or alone:
        _require_torch()
    from ferkit.runs import read_run_config

    data = Path(args.data) if args.data else Path(read_run_config(runs[0]).data) if runs else None
    if files and not alone:  # an ensemble grown from exported models (and runs), ONNX joined
        from ferkit.compose import join

        lines = join(args.runs, out, tta, args.choose_on, data, args.int8, args.calib_images)
        print("\n".join(lines))
        return 0
    if alone and (args.choose_on or (args.int8 and not data)):
        why = "--choose-on needs two or more members" if args.choose_on else "--int8 needs --data"
        raise FerkitError(f"{files[0]} --tta {tta}: {why}")
    from ferkit.export import export, export_views

    if args.choose_on:
        from ferkit.choose import check_split, choose

        check_split(args.choose_on)
        with tempfile.TemporaryDirectory() as tmp:
            sources, lines = choose(sources, data, args.choose_on, Path(tmp), tta)
        print("\n".join(lines))
    target = out.with_name(f".{out.stem}.fp32.onnx") if args.int8 else out
    result = export_views(files[0], target, tta) if alone else export(sources, target, tta=tta)
    meta = result["metadata"]
    members = f", {len(sources)} members" if len(sources) > 1 else ""
    print(
        f"wrote {target} ({result['bytes'] / 1e6:.2f} MB{members}), max |torch - onnx| = "
        f"{result['max_abs_diff']:.1e}, tta {meta['tta']}"
    )
    print(f"training: {meta['training']}")
    if args.int8:
        try:
            return _quantize(target, out, data, args.calib_images)
        finally:
            target.unlink(missing_ok=True)
    has_data = data is not None and (data / "cache.npz").is_file()
    if (len(sources) > 1 or "accuracy_PublicTest" not in meta) and has_data:
        from ferkit.evaluate import record_accuracies

        accs = record_accuracies(out, data)
        print("measured accuracy: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in accs.items()))
    return 0


def _quantize(fp32: Path, out: Path, data: Path, count: int) -> int:
    from ferkit.quantize import calibration_images, quantize

    meta = quantize(fp32, out, calibration_images(data, count), data_dir=data)
    accs = ", ".join(
        f"{k.removeprefix('accuracy_')} {100 * float(v):.2f}%"
        for k, v in meta.items()
        if k.startswith("accuracy_")
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {meta['quantization']}")
    if accs:
        print(f"int8 accuracy: {accs}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ferkit.evaluate import EvalConfig, run_evaluation
    from ferkit.report import COMPARISON_HEADER, MCNEMAR_HEADER, comparison_rows, headline_rows

    cfg = EvalConfig(
        data=Path(args.data), split=args.split, out=Path(args.out) if args.out else None
    )
    evals, comparison = run_evaluation(args.models or [None], cfg)
    out = _console()
    if comparison is None:
        (e,) = evals
        table = Table(title=f"{e.name} on {cfg.split} ({e.metrics['n']:,} faces)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for label, value in headline_rows(e.metrics):
            table.add_row(label, value)
        out.print(table)
    else:
        rows, tests = comparison_rows(comparison)
        n = evals[0].metrics["n"]
        for title, header, body in (
            (f"{len(evals)} models on {cfg.split} ({n:,} faces)", COMPARISON_HEADER, rows),
            ("McNemar's exact test (paired, two-sided)", MCNEMAR_HEADER, tests),
        ):
            table = Table(title=title)
            for i, col in enumerate(header):
                table.add_column(col, justify="left" if i == 0 or col == "B" else "right")
            for row in body:
                table.add_row(*row)
            out.print(table)
    if cfg.out:
        out.print(f"wrote metrics.json, figures, report.html and report.md under {cfg.out}")
    return 0


def add_model_commands(sub) -> None:
    """Register train, export and evaluate on the top-level subparsers."""
    p = sub.add_parser("train", help="train a CNN on a prepared cache (needs ferkit[train])")
    p.add_argument("--data", help="directory written by `ferkit data prepare`")
    p.add_argument("--out", help="run folder for config, metrics, curves and checkpoints")
    p.add_argument("--model", help="architecture: vgg-s or resnet18")
    p.add_argument("--width", type=int, help="channels of the first stage")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="images per step, over all processes")
    p.add_argument("--lr", type=float, help="SGD learning rate per 128 images")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument(
        "--threads", type=int, help="torch threads per process (0: all cores; not kept by --resume)"
    )
    p.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast")
    p.add_argument("--channels-last", action="store_true", default=None, help="NHWC layout")
    p.add_argument("--config", help="TOML file of settings ([model], [optim], [augment] tables)")
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
        help="start from an exported model's weights and architecture (file or 'default')",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a run's best EMA model to ONNX (optionally int8)")
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders written by `ferkit train` and/or exported models (.onnx files, "
        "'default', 'accurate'); several: one graph averaging every network in them; one "
        ".onnx alone: quantised with --int8 and/or given new views with --tta",
    )
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument(
        "--tta",
        choices=TTA_MODES,
        help="test-time views averaged inside the graph: none, hflip (default for run folders: "
        "the image and its mirror) or views8 (+ a zoom and two rotations, each mirrored; 4x "
        "slower); with one model file alone, that network exported again (fp32) with these views",
    )
    p.add_argument(
        "--choose-on",
        metavar="SPLIT",
        help="export the subset of the runs whose mean scores best on SPLIT (PublicTest)",
    )
    p.add_argument(
        "--int8", action="store_true", help="static int8 quantisation (ONNX Runtime), ~3x faster"
    )
    p.add_argument(
        "--data",
        help="prepared cache: int8 calibration images, and where an ensemble's accuracy is "
        "measured (default: the first run's data)",
    )
    p.add_argument("--calib-images", type=int, default=1024, help="Training images to calibrate on")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="metrics, figures and a report for ONNX models")
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="shipped model names (default, accurate), ONNX files or run folders "
        "(default: default); two or more: compared",
    )
    p.add_argument("--data", required=True, help="directory written by `ferkit data prepare`")
    p.add_argument("--split", default="PrivateTest", help="Training, PublicTest or PrivateTest")
    p.add_argument("--out", help="folder for metrics.json, figures and report.html/.md")
    p.set_defaults(func=cmd_evaluate)
