"""The `ferkit` command line: one module per command group, all thin over the packages."""

from ferkit.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
