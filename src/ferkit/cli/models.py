"""`ferkit models`: the shipped emotion models, their recorded accuracy, what a face costs
(multiply-accumulates) and (with `--benchmark`) their faces/s on this machine
(`ferkit.modelfile.catalog`)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ferkit.cli.options import ranged
from ferkit.core.console import console, table

HEADER = ["name", "architecture", "params", "MB", "TTA", "precision", "PublicTest", "PrivateTest"]
COST = ["MACs/face"]  # beside the speed: a slow model told from a slow machine
SPEED = ["faces/s batch 1", "faces/s batch 256"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def cmd_models(args: argparse.Namespace) -> int:
    from ferkit.modelfile.catalog import faces_per_second, shipped_models
    from ferkit.modelfile.classifier import Classifier

    rows = []
    for m in shipped_models():
        row = dataclasses.asdict(m)
        if args.benchmark:  # one model at a time, nothing else running in this process
            clf = Classifier(m.name, threads=args.threads)
            row["faces_per_s"] = {str(b): round(faces_per_second(clf, b), 1) for b in (1, 256)}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cells = [
        [
            r["name"],
            r["architecture"],
            "-" if r["parameters"] is None else f"{r['parameters'] / 1e6:.2f} M",
            f"{r['megabytes']:.1f}",
            r["tta"],
            r["precision"],
            _pct(r["public_test"]),
            _pct(r["private_test"]),
            "-" if r["macs"] is None else f"{r['macs'] / 1e6:,.0f} M",
            *(f"{r['faces_per_s'][b]:,.0f}" for b in ("1", "256") if args.benchmark),
        ]
        for r in rows
    ]
    header = HEADER + COST + (SPEED if args.benchmark else [])
    out = console()
    if not out.is_terminal:  # a pipe or a log gets every column unwrapped, not 80 wide
        out.width = 160
    out.print(table("ferkit's shipped models (--model NAME)", header, cells, ("architecture",)))
    for r in rows:
        out.print(f"  {r['name']:10s} {r['file']:16s} SHA-256 {r['sha256']}")
    return 0


def add_models_command(sub) -> None:
    """Register `ferkit models` on the top-level subparsers."""
    p = sub.add_parser("models", help="the shipped models: accuracy, size, SHA-256, speed")
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="also measure faces/s on this machine, one face per call and 256 per call "
        "(2 s of calls each after a warm-up: seconds per network, a minute for `accurate` "
        "on a 2-core CPU without AVX-512)",
    )
    p.add_argument(
        "--threads",
        type=ranged(int, 0, 1024),
        default=0,
        help="ONNX Runtime threads for --benchmark (0: all cores)",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_models)
