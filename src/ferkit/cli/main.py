"""The `ferkit` command line. Every subcommand turns a FerkitError into one line and exit 2.

The parser lives here; each command group in its own module: `data`, `train`, `export`,
`evaluate`, `apps` (predict, video, demo), `serve` and `models`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ferkit.cli.apps import add_apps_commands
from ferkit.cli.data import add_data_commands
from ferkit.cli.evaluate import add_evaluate_command
from ferkit.cli.export import add_export_command
from ferkit.cli.models import add_models_command
from ferkit.cli.options import Parser
from ferkit.cli.serve import add_serve_command
from ferkit.cli.train import add_train_command
from ferkit.core.console import printable
from ferkit.core.errors import FerkitError
from ferkit.core.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ferkit", description="Facial emotion recognition (FER-2013).")
    parser.add_argument("--version", action="version", version=f"ferkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_data_commands(sub)
    add_train_command(sub)
    add_export_command(sub)
    add_evaluate_command(sub)
    add_apps_commands(sub)
    add_serve_command(sub)
    add_models_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FerkitError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`ferkit predict ... | head -1`): stop
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # or Python's flush at exit fails once more
        return 141  # 128 + SIGPIPE: what a Unix tool stopped by a closed pipe reports
    except OSError as exc:  # the file system refused, past the checks: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {printable(where + str(exc.strerror or exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
