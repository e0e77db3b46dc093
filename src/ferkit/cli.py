"""The `ferkit` command line. Every subcommand turns a FerkitError into one line and exit 2.

Data, training and export commands live here; predict, video and demo in `cli_predict`."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ferkit import __version__
from ferkit.cli_predict import add_predict_commands
from ferkit.console import console as _console
from ferkit.console import warn as _warn
from ferkit.errors import FerkitError
from ferkit.infer import TTA_MODES, resolve_model


def cmd_prepare(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ferkit.data.prepare import PrepareConfig, prepare

    cfg = PrepareConfig(
        source=Path(args.source),
        out=Path(args.out),
        val_fraction=args.val_fraction,
        seed=args.seed,
        force=args.force,
    )
    start = time.perf_counter()
    columns = (TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("read", total=None)
        result = prepare(cfg, progress=lambda n: bar.advance(task, n))
    seconds = time.perf_counter() - start
    out = _console()
    m = result.manifest
    if result.up_to_date:
        sha = m["source_sha256"][:12]
        out.print(f"{cfg.out}: already prepared from this source (sha256 {sha}); nothing to do")
        return 0
    for w in result.warnings:
        _warn(w)
    split_counts = ", ".join(f"{s} {sum(c.values()):,}" for s, c in m["counts"].items())
    out.print(
        f"prepared {m['rows']:,} faces from {m['source_kind']} {cfg.source} in {seconds:.1f} s"
    )
    out.print(f"splits: {split_counts} ({m['split_source']})")
    out.print(f"wrote {cfg.out / 'cache.npz'} and manifest.json; next: ferkit data stats {cfg.out}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from ferkit.data import load_cache
    from ferkit.data.stats import stats_table, write_figures

    cache = load_cache(args.dir)
    out_dir = Path(args.out) if args.out else Path(args.dir)
    console = _console()
    console.print(stats_table(cache))
    if cache.manifest.get("cross_split_duplicates"):
        n = cache.manifest["cross_split_duplicates"]
        _warn(f"{n} images have identical pixels in another split")
    for p in write_figures(cache, out_dir, seed=args.seed):
        console.print(f"wrote {p}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from ferkit.data.download import download

    zip_path = download(Path(args.dest))
    _console().print(f"downloaded {zip_path}")
    args.source = str(zip_path)
    return cmd_prepare(args)


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
    if files and len(sources) == 1:  # one exported model: quantise it (onnx, not torch)
        if not args.int8:
            raise FerkitError(f"{files[0]}: one model file alone needs --int8 (or more members)")
        if not args.data:
            raise FerkitError("--int8 on a model file needs --data DIR for calibration images")
        return _quantize(resolve_model(files[0])[0], out, Path(args.data), args.calib_images)
    runs = [s for s in sources if not is_model_file(str(s))]
    if runs:
        _require_torch()
    from ferkit.runs import read_run_config

    data = Path(args.data) if args.data else Path(read_run_config(runs[0]).data) if runs else None
    if files:  # an ensemble grown from exported models (and runs), joined as ONNX graphs
        from ferkit.compose import join

        tta, int8 = args.tta, args.int8
        print("\n".join(join(args.runs, out, tta, args.choose_on, data, int8, args.calib_images)))
        return 0
    from ferkit.export import export

    if args.choose_on:
        from ferkit.choose import check_split, choose

        check_split(args.choose_on)
        with tempfile.TemporaryDirectory() as tmp:
            sources, lines = choose(sources, data, args.choose_on, Path(tmp), args.tta)
        print("\n".join(lines))
    target = out.with_name(f".{out.stem}.fp32.onnx") if args.int8 else out
    result = export(sources, target, tta=args.tta)
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
    if (len(sources) > 1 or "accuracy_PublicTest" not in meta) and (data / "cache.npz").is_file():
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


def _add_prepare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory for cache.npz and manifest.json")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of each class carved from Training as PublicTest when the source has none",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of that carve")
    p.add_argument(
        "--force", action="store_true", help="rewrite even if the cache matches the source"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferkit", description="Facial emotion recognition (FER-2013)."
    )
    parser.add_argument("--version", action="version", version=f"ferkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="prepare, inspect or download FER-2013")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("prepare", help="read a zip, folder or CSV and write the cache")
    p.add_argument(
        "source",
        help="Kaggle archive.zip, extracted train/test folder, <emotion>/ folders or fer2013.csv",
    )
    _add_prepare_options(p)
    p.set_defaults(func=cmd_prepare)

    p = data_sub.add_parser("stats", help="per-split, per-class counts and figures")
    p.add_argument("dir", help="a directory written by `ferkit data prepare`")
    p.add_argument("--out", help="where to write the figures (default: DIR)")
    p.add_argument("--seed", type=int, default=0, help="seed for the sample faces")
    p.set_defaults(func=cmd_stats)

    p = data_sub.add_parser("download", help="fetch FER-2013 from Kaggle, then prepare it")
    p.add_argument("--dest", default="data/download", help="where the zip goes")
    _add_prepare_options(p)
    p.set_defaults(func=cmd_download)

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
        help="start from an exported fp32 model's weights and architecture (file or 'default')",
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
        ".onnx alone: quantised with --int8",
    )
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="hflip",
        help="test-time views averaged inside the graph: none, hflip (default: the image and "
        "its mirror) or views8 (+ a zoom and two rotations, each mirrored; 4x slower)",
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

    add_predict_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FerkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
