"""Seconds of training's final report (`ferkit.training.scoring.final_report`: the best
epoch scored on PublicTest and PrivateTest, plain, flip TTA and the run's views), this
checkout's against an earlier commit's `scoring.py`, timed alternately on a copy of one
finished run folder (its `best.pt` and `config.json`; the run itself is not touched). Each
round prints both times, the ratio, and whether their accuracies agree to the last digit.

    python benchmarks/report_speed.py runs/q512-s0 --against 1f71d88 [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

from ferkit.training import scoring
from ferkit.training.runs import read_run_config


def scoring_at(rev: str, folder: Path) -> ModuleType:
    """`ferkit/training/scoring.py` as it was at `rev`, imported beside today's."""
    source = subprocess.run(
        ["git", "show", f"{rev}:src/ferkit/training/scoring.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / f"scoring_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(module: ModuleType, run: Path) -> tuple[float, dict]:
    """Seconds of the report, and its accuracies per split (its loss may differ in the
    last float digits: the faces are batched differently)."""
    start = time.perf_counter()
    result = module.final_report(run, read_run_config(run), torch.device("cpu"))
    seconds = time.perf_counter() - start
    keys = ("acc", "acc_tta", "acc_views")
    return seconds, {s: {k: v[k] for k in keys} for s, v in result.items() if isinstance(v, dict)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run folder")
    p.add_argument("--against", required=True, help="the earlier commit (the baseline)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        copy.mkdir()
        for name in ("best.pt", "config.json"):
            shutil.copy(args.run / name, copy / name)
        old = scoring_at(args.against, Path(tmp))
        print(f"{torch.get_num_threads()} threads; {args.run}, best epoch, both splits")
        for r in range(args.rounds):
            before, was = timed(old, copy)
            after, now = timed(scoring, copy)
            same = "the same figures" if was == now else f"DIFFERENT: {was} against {now}"
            print(f"round {r + 1}: {args.against} {before:.1f} s, this checkout ", end="")
            print(f"{after:.1f} s ({before / after:.2f}x); {same}")


if __name__ == "__main__":
    main()
