"""`ferkit predict --engine ray`: the options and the command of the Ray Data engine."""

from __future__ import annotations

import argparse

from ferkit.cli.options import ranged
from ferkit.core.console import console as _console
from ferkit.core.errors import FerkitError


def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine (--engine ray needs ferkit[ray])")
    g.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: Ray Data actors, Parquet out in --out",
    )
    g.add_argument("--address", help="Ray cluster: auto or ray://HOST:PORT (default: a local one)")
    g.add_argument("--actors", type=ranged(int, 1, 4096), default=1, help="recognisers (default 1)")
    g.add_argument(
        "--actor-cpus",
        type=ranged(float, 0, 64, low_open=True),
        default=1.0,
        help="CPUs per actor (default 1; leave some for reading the files)",
    )
    g.add_argument(
        "--batch-size", type=ranged(int, 1, 4096), default=16, help="files per actor call"
    )


def predict_on_ray(args: argparse.Namespace) -> int:
    from ferkit.apps.ray_engine import RayConfig
    from ferkit.apps.ray_engine import predict_on_ray as run
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
        recognizer={
            "model": args.model,
            "detector": args.detector,
            "min_face": args.min_face,
            "margin": args.margin,
            "align": args.align,
        },
        detect=not args.no_detect,
    )
    summary = run(cfg)
    err = _console(stderr=True)
    for problem in summary.errors:
        err.print(problem, style="yellow", markup=False)
    err.print(summary.line())
    err.print(f"wrote Parquet rows to {args.out}")
    return 1 if summary.errors else 0
