"""Option values checked where they enter: typed, finite and in range, one place per option.

`ranged(int, 1, 10_000)` is an argparse `type` that turns "abc", "nan", "inf", "-3" or
"1e9" into one line naming the option and its range, before any command runs, so no value
reaches an algorithm that it cannot take (a NaN margin, a negative port, a zero batch).
`Parser` makes every argparse error one line too, the usage left to `--help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ferkit.core.console import printable
from ferkit.modelfile.shipped import SHIPPED_MODELS
from ferkit.vision.detect import DEFAULT_DETECTOR


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line and exit status 2, like every ferkit error."""

    def error(self, message: str) -> NoReturn:
        line = printable(f"{self.prog}: {message}")
        print(f"error: {line} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def ranged(
    kind: type[int] | type[float],
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> Callable[[str], int | float]:
    """An argparse `type`: parse as `kind`, require a finite value in [low, high] (or
    (low, high] with `low_open`); either bound may be None."""
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"<= {high:g}"
    span = " and ".join(s for s in (lo, hi) if s)
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be {span}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def default(config: type, name: str) -> Any:
    """The default of field `name` of the dataclass `config`: an option takes its default
    from the config it fills, so the value is written once (help shows it as %(default)s)."""
    for f in dataclasses.fields(config):
        if f.name == name:
            return f.default
    raise KeyError(f"{config.__name__} has no field {name}")


# The ranges of the options that several commands share
PIXELS = ranged(int, 1, 100_000)  # a face side, px
MARGIN = ranged(float, -0.5, 2.0)  # share of the box side added around it
SEED = ranged(int, 0, 2**32 - 1)  # numpy's and torch's seeds
COUNT = ranged(int, 1)  # epochs, images, widths: at least one

# How every --model (and every model argument) names the shipped models
SHIPPED_NAMES = f"{', '.join(SHIPPED_MODELS)}: `ferkit models` lists them"
# The help of the options every recognising command shares (predict, video, serve)
MODEL_HELP = f"a shipped model by name ({SHIPPED_NAMES}) or an ONNX file (default: default)"
DETECTOR_HELP = f"{DEFAULT_DETECTOR} (default), dlib (ferkit[dlib]), haar or yunet:FILE.onnx"
