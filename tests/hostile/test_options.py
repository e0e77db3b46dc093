"""Bad option values stop at the parser, in one line and exit 2: not a number, not finite,
out of range, for every numeric option of every command (a test walks the parser and
fails when an option is added without its bad values here)."""

from __future__ import annotations

import argparse

import pytest

from ferkit.cli import main

BAD = [
    (["predict", "x.jpg", "--margin"], ["nan", "inf", "-1", "abc", "3"]),
    (["predict", "x.jpg", "--min-face"], ["0", "-5", "1.5", "1e9"]),
    (["predict", "x.jpg", "--actors"], ["0", "1e4"]),
    (["predict", "x.jpg", "--actor-cpus"], ["0", "nan"]),
    (["predict", "x.jpg", "--batch-size"], ["0", "-1"]),
    (["video", "x.mp4", "--smoothing"], ["0", "1.5", "nan"]),
    (["video", "--camera"], ["-1", "x"]),
    (["video", "x.mp4", "--min-face"], ["0"]),
    (["video", "x.mp4", "--margin"], ["inf"]),
    (["video", "x.mp4", "--task-cpus"], ["0", "65"]),
    (["serve", "--port"], ["0", "70000", "-1", "http"]),
    (["serve", "--workers"], ["0", "65"]),
    (["serve", "--max-upload-mb"], ["0", "-1", "inf", "1e6"]),
    (["serve", "--min-face"], ["0"]),
    (["serve", "--max-streams"], ["0", "1.5"]),
    (["serve", "--max-fps"], ["0", "nan"]),
    (["serve", "--idle-s"], ["-1", "inf"]),
    (["serve", "--max-video-mb"], ["0"]),
    (["serve", "--max-video-s"], ["-5"]),
    (["serve", "--max-jobs"], ["0"]),
    (["serve", "--keep-s"], ["nan"]),
    (["data", "prepare", "x.zip", "--out", "o", "--val-fraction"], ["0", "1", "-0.1", "nan"]),
    (["data", "prepare", "x.zip", "--out", "o", "--seed"], ["-1", "1.5", str(2**32)]),
    (["data", "download", "--out", "o", "--val-fraction"], ["1"]),
    (["data", "download", "--out", "o", "--seed"], ["-1"]),
    (["data", "stats", "d", "--seed"], ["-3"]),
    (["evaluate", "--data", "d", "--corruption-seed"], ["-1", "x"]),
    (["export", "run", "--out", "m.onnx", "--calib-images"], ["0", "-1"]),
    (["train", "--epochs"], ["0", "-2", "x"]),
    (["train", "--batch-size"], ["0"]),
    (["train", "--lr"], ["0", "-0.1", "nan", "inf"]),
    (["train", "--width"], ["0", "5000"]),
    (["train", "--threads"], ["-1"]),
    (["train", "--seed"], ["-1"]),
    (["models", "--threads"], ["-1", "x"]),
]
CASES = [(args, value) for args, values in BAD for value in values]


@pytest.mark.parametrize(("args", "value"), CASES, ids=[f"{a[-1]}={v}" for a, v in CASES])
def test_bad_option_values_are_one_line_and_exit_2(args, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*args, value])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ferkit "), err
    assert args[-1] in err and "Traceback" not in err


def test_good_values_still_parse():
    from ferkit.cli import build_parser

    args = build_parser().parse_args(["predict", "x.jpg", "--margin", "-0.1", "--min-face", "40"])
    assert (args.margin, args.min_face) == (-0.1, 40)
    args = build_parser().parse_args(["serve", "--port", "65535", "--max-upload-mb", "0.5"])
    assert (args.port, args.max_upload_mb) == (65535, 0.5)


def numeric_options(parser: argparse.ArgumentParser, command: tuple[str, ...] = ()):
    """(command words, option) of every option that parses a number, in every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from numeric_options(sub, (*command, name))
        elif action.option_strings and getattr(action.type, "__name__", "") in ("int", "float"):
            yield command, action.option_strings[-1]


def test_every_numeric_option_is_tried():
    from ferkit.cli import build_parser

    parser = build_parser()
    commands = {command for command, _ in numeric_options(parser)}
    found = set(numeric_options(parser))
    tried = {(next(c for c in commands if tuple(args[: len(c)]) == c), args[-1]) for args, _ in BAD}
    assert found - tried == set(), "numeric options with no bad values tried"
    assert len(found) >= 35
