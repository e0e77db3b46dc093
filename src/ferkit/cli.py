"""The `ferkit` command line. Every subcommand turns a FerkitError into one line and exit 2."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ferkit import __version__
from ferkit.detect import DEFAULT_MIN_FACE  # cheap: OpenCV and dlib load on first use
from ferkit.errors import FerkitError
from ferkit.recognize import DEFAULT_MARGIN


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    _console(stderr=True).print(f"[yellow]warning:[/] {message}")


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


def _recognizer(args: argparse.Namespace):
    from ferkit.recognize import EmotionRecognizer

    return EmotionRecognizer(
        model=args.model,
        detector=args.detector,
        min_face=args.min_face,
        margin=args.margin,
        align=args.align,
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ferkit.images import find_images
    from ferkit.predict import PredictConfig, predict_files

    paths = find_images(args.inputs)
    if not paths:
        raise FerkitError("no image files found in " + " ".join(args.inputs))
    cfg = PredictConfig(
        inputs=tuple(paths),
        out=Path(args.out) if args.out else None,
        format=args.format,
        detect=not args.no_detect,
    )
    rec = _recognizer(args)
    if cfg.detect:
        rec.detector  # noqa: B018 -- fail on a missing detector before the batch starts
    err = _console(stderr=True)
    columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=len(paths) < 2) as bar:
        task = bar.add_task("files", total=len(paths))

        def on_file(path: Path, problem: str | None) -> None:
            if problem:
                bar.console.print(f"[yellow]{problem}[/]")
            bar.advance(task)

        summary = predict_files(cfg, rec, paths, sys.stdout, on_file)
    err.print(summary.line())
    if cfg.out:
        suffix = "jsonl" if cfg.format == "json" else "csv"
        err.print(f"wrote {cfg.out / ('predictions.' + suffix)} and annotated images in {cfg.out}")
    return 1 if summary.errors else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`ferkit predict` with the shipped model on the bundled sample photos."""
    images = Path(args.images)
    if not images.is_dir():
        raise FerkitError(f"{images}: sample photos not found; run from a ferkit checkout")
    ns = argparse.Namespace(
        inputs=[str(images)],
        out=args.out,
        format="json",
        no_detect=False,
        model=None,
        detector="dlib",
        min_face=DEFAULT_MIN_FACE,
        margin=DEFAULT_MARGIN,
        align=False,
    )
    code = cmd_predict(ns)
    print(f"annotated photos and predictions.jsonl are in {args.out}/")
    return code


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
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise FerkitError(f"--set {item}: expected KEY=VALUE, e.g. model.width=64")
        overrides[key.strip()] = value.strip()
    if args.resume:
        base = read_run_config(Path(args.resume))
        cfg = apply_overrides(base, {**overrides, "out": args.resume})
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
    _require_torch()
    from ferkit.export import export

    result = export(Path(args.run), Path(args.out), tta=not args.no_tta)
    meta = result["metadata"]
    print(
        f"wrote {args.out} ({result['bytes'] / 1e6:.2f} MB), max |torch - onnx| = "
        f"{result['max_abs_diff']:.1e}, tta {meta['tta']}"
    )
    print(f"training: {meta['training']}")
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


def _add_recognizer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="ONNX model file (default: the shipped model)")
    p.add_argument(
        "--detector", default="dlib", help="face detector: dlib (default), haar or yunet:FILE.onnx"
    )
    p.add_argument(
        "--min-face",
        type=int,
        default=DEFAULT_MIN_FACE,
        metavar="PX",
        help=f"smallest face side to find, pixels (default {DEFAULT_MIN_FACE}; smaller is slower)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="enlarge each face box by this share of its side before cropping",
    )
    p.add_argument(
        "--align", action="store_true", help="rotate faces so the eyes are level (dlib, yunet)"
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
    p.add_argument("--threads", type=int, help="torch threads per process (0: all cores)")
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
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a run's best EMA model to ONNX")
    p.add_argument("run", help="run folder written by `ferkit train`")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--no-tta", action="store_true", help="no flip averaging inside the graph")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="emotions of the faces in image files")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--out", help="folder for predictions and annotated images (default: stdout)")
    p.add_argument(
        "--format", choices=["json", "csv"], default="json", help="rows: JSON Lines or CSV"
    )
    p.add_argument(
        "--no-detect", action="store_true", help="each image is one already-cropped face"
    )
    _add_recognizer_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="predict on the bundled sample photos with the shipped model")
    p.add_argument("--images", default="examples", help="folder of sample photos")
    p.add_argument("--out", default="demo_out", help="output directory")
    p.set_defaults(func=cmd_demo)
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
