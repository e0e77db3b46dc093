"""`ferkit predict --engine ray`: the options and the command of the Ray Data engine."""

from __future__ import annotations

import argparse

from ferkit.cli.options import default, ranged
from ferkit.core.console import console as _console
from ferkit.core.console import printable, progress_bar
from ferkit.core.errors import FerkitError
from ferkit.scale.config import RayConfig, RayVideoConfig


def recognizer_kwargs(args: argparse.Namespace) -> dict:
    """What each actor or task builds its own EmotionRecognizer from (the model and the
    detector are built on the worker, not shipped from here)."""
    keys = ("model", "detector", "min_face", "margin", "align")
    return {k: getattr(args, k) for k in keys}


def _engine_group(p: argparse.ArgumentParser, engines: str):
    """--engine and --address, in a group for the engine's other options."""
    g = p.add_argument_group("engine (--engine ray needs ferkit[ray])")
    g.add_argument("--engine", choices=["local", "ray"], default="local", help=engines)
    g.add_argument(
        "--address",
        help="a running cluster: auto, HOST:PORT or ray://HOST:PORT (default: a local one)",
    )
    return g


def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = _engine_group(
        p, "local: this process (default); ray: Ray Data actors, Parquet out in --out"
    )
    g.add_argument(
        "--actors",
        type=ranged(int, 1, 4096),
        default=default(RayConfig, "actors"),
        help="recognisers (default %(default)s)",
    )
    g.add_argument(
        "--actor-cpus",
        type=ranged(float, 0, 64, low_open=True),
        default=default(RayConfig, "actor_cpus"),
        help="CPUs per actor (default %(default)g; leave some for reading the files)",
    )
    g.add_argument(
        "--batch-size",
        type=ranged(int, 1, 4096),
        default=default(RayConfig, "batch_size"),
        help="files per actor call (default %(default)s)",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="skip the files whose rows --out holds already (a rerun after an interruption)",
    )


def cmd_predict_ray(args: argparse.Namespace) -> int:
    """`ferkit predict --engine ray`."""
    from ferkit.scale.ray_engine import predict_on_ray
    from ferkit.vision.images import find_images

    if not args.out:
        raise FerkitError("--engine ray writes Parquet: give --out (a folder or a URI)")
    local = [p for p in args.inputs if "://" not in p]
    paths = [str(p) for p in find_images(local)] if local else []
    if local and not paths:
        raise FerkitError("no image files found in " + " ".join(local))
    cfg = RayConfig(
        inputs=(*paths, *(p for p in args.inputs if "://" in p)),
        out=args.out,
        address=args.address,
        actors=args.actors,
        actor_cpus=args.actor_cpus,
        batch_size=args.batch_size,
        resume=args.resume,
        recognizer=recognizer_kwargs(args),
        detect=not args.no_detect,
    )
    summary = predict_on_ray(cfg)
    err = _console(stderr=True)
    for part in summary.removed:
        err.print(f"removed {part}: half-written by an interrupted run", markup=False)
    for problem in summary.errors:
        err.print(printable(problem), style="yellow", markup=False)
    err.print(summary.line())
    err.print(f"wrote Parquet rows to {args.out}")
    return 1 if summary.errors else 0


def add_video_engine_options(p: argparse.ArgumentParser) -> None:
    g = _engine_group(
        p, "local: one video here (default); ray: one Ray task per video, results in --out"
    )
    g.add_argument(
        "--task-cpus",
        type=ranged(float, 0, 64, low_open=True),
        default=default(RayVideoConfig, "task_cpus"),
        help="CPUs per video task (default %(default)g)",
    )


def cmd_video_ray(args: argparse.Namespace) -> int:
    """`ferkit video --engine ray`."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ferkit.core.atomic import check_writable
    from ferkit.scale.ray_engine import videos_on_ray

    if not args.inputs or args.camera is not None:
        raise FerkitError("--engine ray takes video files, not --camera")
    if not args.out:
        raise FerkitError("--engine ray needs --out: a folder for each video's results")
    if args.csv or args.timeline:
        raise FerkitError("--engine ray writes frames.csv and timeline.png in each video's "
                          "folder; drop --csv and --timeline")  # fmt: skip
    check_writable(args.out, folder=True)
    cfg = RayVideoConfig(
        videos=tuple(args.inputs),
        out=args.out,
        address=args.address,
        task_cpus=args.task_cpus,
        smoothing=args.smoothing,
        recognizer=recognizer_kwargs(args),
    )
    err = _console(stderr=True)
    columns = (TextColumn("videos"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with progress_bar(*columns, err=err) as bar:
        task = bar.add_task("videos", total=len(cfg.videos))

        def on_done(r: dict) -> None:  # a line per video as it finishes, then the bar moves
            if r["status"] == "error":
                bar.console.print(printable(r["error"]), style="yellow", markup=False)
            else:
                bar.console.print(f"{r['video']}: {r['frames']} frames, {r['faces']} face "
                                  f"detections in {r['tracks']} tracks -> {r['folder']}",
                                  markup=False)  # fmt: skip
            bar.advance(task)

        rows = videos_on_ray(cfg, on_done)
    failed = sum(r["status"] == "error" for r in rows)
    err.print(f"{len(rows)} videos, {failed} failed; wrote {args.out}/summary.parquet")
    return 1 if failed else 0
