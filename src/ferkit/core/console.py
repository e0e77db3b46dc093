"""Rich consoles for the command line: results to stdout, progress and problems to stderr."""

from __future__ import annotations


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    console(stderr=True).print(f"[yellow]warning:[/] {message}")
