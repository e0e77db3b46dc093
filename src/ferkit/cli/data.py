"""`ferkit data prepare | stats | download`: FER-2013 as users get it, into the cache."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ferkit.cli.options import SEED, ranged
from ferkit.core.atomic import check_writable
from ferkit.core.console import console as _console
from ferkit.core.console import progress_bar
from ferkit.core.console import warn as _warn


def cmd_prepare(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ferkit.data.prepare import PrepareConfig, prepare

    check_writable(args.out, folder=True)  # before reading the whole source
    cfg = PrepareConfig(
        source=Path(args.source),
        out=Path(args.out),
        val_fraction=args.val_fraction,
        seed=args.seed,
        force=args.force,
    )
    start = time.perf_counter()
    columns = (TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with progress_bar(*columns) as bar:
        task = bar.add_task("read", total=None)
        result = prepare(cfg, progress=lambda n: bar.advance(task, n))
    seconds = time.perf_counter() - start
    out = _console()
    m = result.manifest
    if result.up_to_date:
        sha = m["source_sha256"][:12]
        out.print(
            f"{cfg.out}: already prepared from this source with these options "
            f"(sha256 {sha}); nothing to do"
        )
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
    out_dir = check_writable(Path(args.out) if args.out else Path(args.dir), folder=True)
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


def _add_prepare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory for cache.npz and manifest.json")
    p.add_argument(
        "--val-fraction",
        type=ranged(float, 0, 0.9, low_open=True),
        default=0.1,
        help="share of each class carved from Training as PublicTest when the source has none",
    )
    p.add_argument("--seed", type=SEED, default=0, help="seed of that carve")
    p.add_argument(
        "--force", action="store_true", help="rewrite even if the cache matches the source"
    )


def add_data_commands(sub) -> None:
    """Register `ferkit data ...` on the top-level subparsers."""
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
    p.add_argument("--seed", type=SEED, default=0, help="seed for the sample faces")
    p.set_defaults(func=cmd_stats)

    p = data_sub.add_parser("download", help="fetch FER-2013 from Kaggle, then prepare it")
    p.add_argument("--dest", default="data/download", help="where the zip goes")
    _add_prepare_options(p)
    p.set_defaults(func=cmd_download)
