"""Rich consoles for the command line: results to stdout, progress and problems to stderr."""

from __future__ import annotations


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    console(stderr=True).print(f"[yellow]warning:[/] {message}")


def table(title: str, header: list[str], rows: list[list[str]], text: tuple[str, ...] = ()):
    """A rich table: text columns (the first, and those named in `text`) left, numbers right."""
    from rich.table import Table

    out = Table(title=title)
    for i, col in enumerate(header):
        out.add_column(col, justify="left" if i == 0 or col in text else "right")
    for row in rows:
        out.add_row(*row)
    return out
