"""`ferkit evaluate`: metrics, figures and a report for models on a prepared split."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from ferkit.cli.options import SEED, SHIPPED_NAMES
from ferkit.core.atomic import check_writable
from ferkit.core.console import console as _console
from ferkit.core.console import progress_bar, table
from ferkit.core.extras import has_torch


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ferkit.evaluation.corruptions import N_CONDITIONS
    from ferkit.evaluation.evaluate import EvalConfig, needs_export, run_evaluation
    from ferkit.evaluation.report import (
        MCNEMAR_HEADER,
        comparison_header,
        comparison_rows,
        headline_rows,
    )
    from ferkit.evaluation.robustness import tables

    cfg = EvalConfig(
        data=Path(args.data),
        split=args.split,
        out=check_writable(args.out, folder=True) if args.out else None,
        corruptions=args.corruptions,
        corruption_seed=args.corruption_seed,
    )
    specs = args.models or [None]
    what = ", ".join(s or "the shipped model" for s in specs)
    err = _console(stderr=True)
    # scoring takes up to a minute: a spinner says so on a terminal (FER-2013-C has a bar)
    plain = not cfg.corruptions and err.is_terminal
    waiting = err.status(f"scoring {what} on {cfg.split}") if plain else contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as tmp:
        exported = {}
        if has_torch() and any(map(needs_export, specs)):  # such run folders are exported first
            from ferkit.export.pipeline import export_run_folders

            exported = export_run_folders(specs, Path(tmp))
        columns = (TextColumn("FER-2013-C"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with waiting, progress_bar(*columns, disable=not cfg.corruptions) as bar:
            task = bar.add_task("conditions", total=len(specs) * N_CONDITIONS)
            evals, comparison = run_evaluation(
                specs, cfg, exported, progress=lambda n: bar.advance(task, n)
            )
    out = _console()
    if comparison is None:
        (e,) = evals
        title = f"{e.name} on {cfg.split} ({e.metrics['n']:,} faces)"
        out.print(table(title, ["metric", "value"], [list(r) for r in headline_rows(e.metrics)]))
    else:
        rows, tests = comparison_rows(comparison)
        n = evals[0].metrics["n"]
        title = f"{len(evals)} models on {cfg.split} ({n:,} faces)"
        out.print(table(title, comparison_header(comparison), rows))
        out.print(table("McNemar's exact test (paired, two-sided)", MCNEMAR_HEADER, tests, ("B",)))
    for e in evals if cfg.corruptions else ():
        caption, header, rows = tables(e.metrics["corruptions"])[0]
        out.print(table(f"{e.name}: {caption}", header, rows))
        big = e.metrics["corruptions"]["largest_gain_at_severity_2"]
        out.print(f"largest gain of a predicted emotion at severity 2: {big['label']} under "
                  f"{big['corruption']}, {big['points']:+.1f} points")  # fmt: skip
    if cfg.out:
        out.print(f"wrote metrics.json, figures, report.html and report.md under {cfg.out}")
    return 0


def add_evaluate_command(sub) -> None:
    """Register `ferkit evaluate` on the top-level subparsers."""
    p = sub.add_parser("evaluate", help="metrics, figures and a report for ONNX models")
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=f"shipped model names ({SHIPPED_NAMES}), ONNX files or run folders "
        "(default: default); two or more: compared",
    )
    p.add_argument("--data", required=True, help="directory written by `ferkit data prepare`")
    p.add_argument("--split", default="PrivateTest", help="Training, PublicTest or PrivateTest")
    p.add_argument("--out", help="folder for metrics.json, figures and report.html/.md")
    p.add_argument(
        "--corruptions",
        action="store_true",
        help="also score FER-2013-C: the split under 9 real-world corruptions at 3 "
        "severities (mCA, accuracy per corruption, predicted-share shifts; "
        "corruptions.json and corruptions.png)",
    )
    p.add_argument("--corruption-seed", type=SEED, default=0, help="FER-2013-C's seed (default 0)")
    p.set_defaults(func=cmd_evaluate)
