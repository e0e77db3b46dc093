"""`ferkit predict`, `video` and `demo`: the applications, on the inference path."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ferkit.apps.predict import PredictConfig
from ferkit.apps.video import VideoConfig
from ferkit.cli.engines import (
    add_engine_options,
    add_video_engine_options,
    cmd_predict_ray,
    cmd_video_ray,
)
from ferkit.cli.options import DETECTOR_HELP, MARGIN, MODEL_HELP, PIXELS, default, ranged
from ferkit.core.atomic import check_writable
from ferkit.core.console import console as _console
from ferkit.core.console import printable, progress_bar
from ferkit.core.errors import FerkitError
from ferkit.vision.blazeface import BLAZEFACE_MIN_FACE
from ferkit.vision.detect import DEFAULT_DETECTOR
from ferkit.vision.detection import DEFAULT_MIN_FACE
from ferkit.vision.recognize import EmotionRecognizer


def _recognizer(args: argparse.Namespace):
    return EmotionRecognizer(
        model=args.model,
        detector=args.detector,
        min_face=args.min_face,
        margin=args.margin,
        align=args.align,
    )


def cmd_predict(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        return cmd_predict_ray(args)
    if args.out:
        check_writable(args.out, folder=True)
    return run_predict(args.inputs, args.out, args.format, not args.no_detect, _recognizer(args))


def run_predict(
    inputs: list[str], out: str | None, fmt: str, detect: bool, rec: EmotionRecognizer
) -> int:
    """Predict on the images in `inputs` with a progress bar, and say what was written."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ferkit.apps.predict import predict_files
    from ferkit.vision.images import find_images

    paths = find_images(inputs, skip=Path(out) if out else None)
    if not paths:
        raise FerkitError("no image files found in " + " ".join(inputs))
    cfg = PredictConfig(tuple(paths), Path(out) if out else None, fmt, detect)
    if cfg.detect:
        rec.detector  # noqa: B018 -- fail on a missing detector before the batch starts
    err = _console(stderr=True)
    columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with progress_bar(*columns, err=err, disable=len(paths) < 2) as bar:
        task = bar.add_task("files", total=len(paths))

        def on_file(path: Path, problem: str | None) -> None:
            if problem:
                bar.console.print(printable(problem), style="yellow", markup=False)
            bar.advance(task)

        summary = predict_files(cfg, rec, sys.stdout, on_file)
    err.print(summary.line())
    if cfg.out:
        suffix = "jsonl" if cfg.format == "json" else "csv"
        err.print(f"wrote {cfg.out / ('predictions.' + suffix)} and annotated images in {cfg.out}")
    return 1 if summary.errors else 0


def cmd_video(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from ferkit.apps.video import VIDEO_CODECS, process_video

    if args.engine == "ray":
        return cmd_video_ray(args)
    if len(args.inputs) > 1:
        raise FerkitError(f"{len(args.inputs)} videos: several need --engine ray; give one")
    args.input = args.inputs[0] if args.inputs else None
    if (args.input is None) == (args.camera is None):
        raise FerkitError("give a video file or --camera N, not both")
    out = Path(args.out) if args.out else None
    if out and out.suffix.lower() not in VIDEO_CODECS:
        raise FerkitError(f"{out}: the annotated video is written as .mp4 or .webm")
    timeline = Path(args.timeline) if args.timeline else None
    if timeline is None and (out or args.csv):
        timeline = (out or Path(args.csv)).with_name("timeline.png")
    written = [p for p in (out, args.csv and Path(args.csv), timeline) if p]
    for path in written:
        check_writable(path)
    if len({p.resolve() for p in written}) < len(written):
        raise FerkitError("--out, --csv and --timeline must be three different files")
    if args.input and Path(args.input).resolve() in {p.resolve() for p in written}:
        raise FerkitError(f"{args.input}: an output would overwrite the input video")
    cfg = VideoConfig(
        source=str(args.camera) if args.camera is not None else args.input,
        out=out,
        csv=Path(args.csv) if args.csv else None,
        timeline=timeline,
        camera=args.camera is not None,
        smoothing=args.smoothing,
    )
    rec = _recognizer(args)
    rec.detector  # noqa: B018 -- fail on a missing detector before reading frames
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with progress_bar(*columns) as bar:
        task = bar.add_task("video", total=None)

        def on_frame(i: int, total: int) -> None:
            fps = i / max(1e-9, time.perf_counter() - started)
            bar.update(task, completed=i, total=total or None, description=f"{fps:.1f} fps")

        started = time.perf_counter()
        to_stdout = not (cfg.out or cfg.csv or cfg.timeline)  # else nothing would be kept
        s = process_video(cfg, rec, on_frame, stdout=sys.stdout if to_stdout else None)
    err = _console(stderr=True)
    err.print(
        f"{s.frames} frames ({s.frames / s.fps_source:.1f} s at {s.fps_source:.1f} fps), "
        f"{s.faces} face detections in {s.tracks} tracks; processed at {s.fps:.1f} fps"
    )
    for label, path in (("video", cfg.out), ("per-frame CSV", cfg.csv), ("timeline", timeline)):
        if path:
            err.print(f"wrote {label} {path}")
    # The outputs hold every frame that could be read; say what is missing. A shortfall at
    # the end under a second is a container's estimated frame count, not damage.
    short = s.cut_short if s.cut_short > round(s.fps_source) else 0
    if s.lost or short:
        where = f"frames {s.lost[0]}-{s.lost[-1]} damaged" if s.lost else ""
        end = f"the last {short} missing: cut short" if short else ""
        err.print(
            f"warning: {cfg.source}: {len(s.lost) + short} of {s.frames + len(s.lost) + short} "
            f"frames could not be read ({'; '.join(x for x in (where, end) if x)}), left out",
            markup=False,
        )
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`ferkit predict` with the shipped model on the bundled sample photos."""
    images = Path(args.images)
    if not images.is_dir():
        raise FerkitError(f"{images}: sample photos not found; run from a ferkit checkout")
    check_writable(args.out, folder=True)
    code = run_predict([str(images)], args.out, "json", True, EmotionRecognizer())
    print(f"annotated photos and predictions.jsonl are in {args.out}/")
    return code


def _add_recognizer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help=f"face detector: {DETECTOR_HELP}",
    )
    p.add_argument(
        "--min-face",
        type=PIXELS,
        metavar="PX",
        help="smallest face side to find, pixels (blazeface: by default it searches a large "
        f"photo for {DEFAULT_MIN_FACE} px faces and keeps faces down to {BLAZEFACE_MIN_FACE}; "
        "a smaller PX searches a larger copy, slower; dlib, haar, yunet: default "
        f"{DEFAULT_MIN_FACE}, smaller is slower)",
    )
    p.add_argument(
        "--margin",
        type=MARGIN,
        help="crop each face box enlarged by this share of its side (default: blazeface "
        "frames each face from its eyes and mouth as FER-2013 does; dlib and haar use their "
        "measured margin, 0)",
    )
    p.add_argument(
        "--align",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rotate faces to level the eyes, from the detector's eye positions (default: on "
        "for dlib and yunet, off for blazeface, whose eyes are coarser; haar gives none)",
    )


def add_apps_commands(sub) -> None:
    """Register predict, video and demo on the top-level subparsers."""
    p = sub.add_parser("predict", help="emotions of the faces in image files")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--out", help="folder for predictions and annotated images (default: stdout)")
    p.add_argument(
        "--format",
        choices=["json", "csv"],
        default=default(PredictConfig, "format"),
        help="rows: JSON Lines or CSV (default %(default)s)",
    )
    p.add_argument(
        "--no-detect", action="store_true", help="each image is one already-cropped face"
    )
    _add_recognizer_options(p)
    add_engine_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("video", help="emotions over time in a video file or webcam stream")
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="VIDEO",
        help="a video file (anything OpenCV/FFmpeg reads); several with --engine ray",
    )
    p.add_argument(
        "--camera",
        type=ranged(int, 0, 99),
        metavar="N",
        help="webcam index: a live window where OpenCV has one, else recorded to --out/--csv "
        "until Ctrl-C (the browser's live mode: `ferkit serve`)",
    )
    p.add_argument(
        "--out",
        help="annotated video to write at the source frame rate: .mp4 "
        "(MPEG-4 Part 2, for players) or .webm (VP8, for browsers)",
    )
    p.add_argument(
        "--csv",
        help="per-frame CSV: face records with frame, time and track (given none of --out, "
        "--csv, --timeline: the rows go to stdout)",
    )
    p.add_argument("--timeline", help="timeline plot (default: timeline.png beside --out/--csv)")
    p.add_argument(
        "--smoothing",
        type=ranged(float, 0, 1, low_open=True),
        default=default(VideoConfig, "smoothing"),
        help="weight of the newest frame in each face's running average (1: none; default "
        "%(default)g)",
    )
    _add_recognizer_options(p)
    add_video_engine_options(p)
    p.set_defaults(func=cmd_video)

    p = sub.add_parser("demo", help="predict on the bundled sample photos with the shipped model")
    p.add_argument("--images", default="examples", help="folder of sample photos")
    p.add_argument("--out", default="demo_out", help="output directory")
    p.set_defaults(func=cmd_demo)
