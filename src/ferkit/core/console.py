"""Rich consoles for the command line: results to stdout, progress and problems to stderr.

Everything they print passes `printable` first: file names are the user's (or an
attacker's), and one holding ESC sequences could clear the terminal or recolour it, and
one holding a newline could forge an `error:` line of its own.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 (0x9b is a one-byte CSI)
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text: str, newlines: bool = False) -> str:
    """`text` with control characters written as escapes (ESC as \\x1b, a newline as \\n);
    with `newlines`, line breaks are kept (for multi-line output of ferkit's own)."""
    pattern = _CONTROL_BUT_NEWLINE if newlines else _CONTROL
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def console(stderr: bool = False):
    from rich.console import Console

    class SafeConsole(Console):
        def print(self, *objects, **kwargs) -> None:
            safe = (printable(o, newlines=True) if isinstance(o, str) else o for o in objects)
            super().print(*safe, **kwargs)

    return SafeConsole(stderr=stderr, highlight=False, soft_wrap=True)


def progress_bar(*columns, err=None, disable: bool = False):
    """A transient rich progress bar on stderr (or `err`), shown only on a terminal: in a
    log file or a pipe its redraws are noise and it left a stray blank line."""
    from rich.progress import Progress

    err = err or console(stderr=True)
    return Progress(*columns, console=err, transient=True, disable=disable or not err.is_terminal)


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
