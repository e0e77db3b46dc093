"""`ferkit export`: run folders and model files to one ONNX file (`ferkit.export.pipeline`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ferkit.cli.options import COUNT, SHIPPED_NAMES
from ferkit.core.atomic import check_writable
from ferkit.core.errors import FerkitError
from ferkit.modelfile.metadata import TTA_MODES


def cmd_export(args: argparse.Namespace) -> int:
    from ferkit.export.pipeline import ExportConfig, run_export

    out = check_writable(args.out)
    if out.suffix.lower() != ".onnx":  # never RUN/best.pt, or a photo, by a slip
        raise FerkitError(f"{out}: export writes an ONNX file; give --out a name ending .onnx")
    if any(Path(src).resolve() == out.resolve() for src in args.runs):
        raise FerkitError(f"{out}: is also an input; write the export to another file")
    cfg = ExportConfig(
        sources=tuple(args.runs),
        out=out,
        tta=args.tta,
        choose_on=args.choose_on,
        int8=args.int8,
        data=Path(args.data) if args.data else None,
        calib_images=args.calib_images,
    )
    print("\n".join(run_export(cfg)))
    return 0


def add_export_command(sub) -> None:
    """Register `ferkit export` on the top-level subparsers."""
    p = sub.add_parser("export", help="export a run's best EMA model to ONNX (optionally int8)")
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders written by `ferkit train` and/or exported models (.onnx files, "
        f"shipped names: {SHIPPED_NAMES}); several: one graph averaging every network in them; one "
        ".onnx alone: quantised with --int8 and/or given new views with --tta",
    )
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument(
        "--tta",
        choices=TTA_MODES,
        help="test-time views averaged inside the graph: none, hflip (the image and its "
        "mirror) or views8 (+ a zoom and two rotations, each mirrored; 4x slower); default for "
        "run folders: the views their recipe names (config `tta`: hflip, views8 for --config "
        "quick); with one model file alone, that network exported again (fp32) with these views",
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
    p.add_argument(
        "--calib-images", type=COUNT, default=1024, help="Training images to calibrate on"
    )
    p.set_defaults(func=cmd_export)
