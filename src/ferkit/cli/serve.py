"""`ferkit serve`: the web page, the REST API, the live stream and video jobs."""

from __future__ import annotations

import argparse
import sys

from ferkit.cli.options import DETECTOR_HELP, MODEL_HELP, PIXELS, default, ranged
from ferkit.core.atomic import check_writable
from ferkit.serve.config import JobsConfig, ServeConfig, StreamConfig

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace) -> int:
    from ferkit.serve.app import serve

    cfg = ServeConfig(
        model=args.model,
        detector=args.detector,
        min_face=args.min_face,
        max_upload_mb=args.max_upload_mb,
        stream=StreamConfig(max_streams=args.max_streams, max_fps=args.max_fps, idle_s=args.idle_s),
        jobs=JobsConfig(
            root=check_writable(args.jobs_dir, folder=True) if args.jobs_dir else None,
            max_video_mb=args.max_video_mb,
            max_seconds=args.max_video_s,
            max_jobs=args.max_jobs,
            keep_s=args.keep_s,
        ),
    )
    if args.host not in LOOPBACK:
        print(f"warning: listening on {args.host}, reachable from other machines", file=sys.stderr)
    serve(cfg, host=args.host, port=args.port, workers=args.workers)
    return 0


def add_serve_command(sub) -> None:
    p = sub.add_parser("serve", help="web page and REST API (needs ferkit[serve])")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=ranged(int, 1, 65535), default=8000, help="(default %(default)s)")
    p.add_argument(
        "--workers",
        type=ranged(int, 1, 64),
        default=1,
        help="processes serving the one port, each with its own model (default %(default)s); "
        "a live stream stays on the worker that accepted it, jobs are shared through --jobs-dir",
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--detector", default=default(ServeConfig, "detector"), help=DETECTOR_HELP)
    p.add_argument("--min-face", type=PIXELS, metavar="PX", help="as for predict")
    positive = ranged(float, 0, None, low_open=True)
    p.add_argument(
        "--max-upload-mb",
        type=ranged(float, 0, 1024, low_open=True),
        default=default(ServeConfig, "max_upload_mb"),
        help="largest accepted photo, MB (default %(default)g)",
    )
    live = p.add_argument_group("live stream (/v1/stream)")
    live.add_argument(
        "--max-streams",
        type=ranged(int, 1, None),
        default=default(StreamConfig, "max_streams"),
        help="streams open at once, per worker (default %(default)g)",
    )
    live.add_argument(
        "--max-fps",
        type=positive,
        default=default(StreamConfig, "max_fps"),
        help="frames a client may send per second (default %(default)g)",
    )
    live.add_argument(
        "--idle-s",
        type=positive,
        default=default(StreamConfig, "idle_s"),
        help="seconds without a frame before a stream is closed (default %(default)g)",
    )
    jobs = p.add_argument_group("video jobs (/v1/jobs)")
    jobs.add_argument(
        "--jobs-dir",
        help="folder for jobs' files (default: a temporary folder, removed when the server stops)",
    )
    jobs.add_argument(
        "--max-video-mb",
        type=positive,
        default=default(JobsConfig, "max_video_mb"),
        help="largest accepted video, MB (default %(default)g)",
    )
    jobs.add_argument(
        "--max-video-s",
        type=positive,
        default=default(JobsConfig, "max_seconds"),
        help="longest accepted video, seconds (default %(default)g)",
    )
    jobs.add_argument(
        "--max-jobs",
        type=ranged(int, 1, None),
        default=default(JobsConfig, "max_jobs"),
        help="video jobs queued or running at once (default %(default)g)",
    )
    jobs.add_argument(
        "--keep-s",
        type=positive,
        default=default(JobsConfig, "keep_s"),
        help="seconds a finished job's results are kept (default %(default)g)",
    )
    p.set_defaults(func=cmd_serve)
