"""A training recipe over several seeds: wall time per run and accuracy as mean +- std.

Runs `ferkit train --config RECIPE --seed S` for each seed, one after another, each timed
from the command's start to its end (scoring the teacher, every epoch's evaluation and the
final PublicTest and PrivateTest report included), and records the wall seconds and the CPU
in the run folder (`wall.json`). The line splits them into training, scoring PublicTest
after the epochs, and the rest (loading, scoring the teacher, the final report), from
`metrics.csv`. A run folder that already holds `final.json` is read, not trained again; an
unfinished one is resumed, and its wall time is then this session's alone, which its line
says. Prints one line per seed and the mean +- sample std over them: PublicTest and
PrivateTest with the run's own test-time views (`acc_views`: views8 for `quick`; flip TTA
for runs from before it was recorded), as `final.json` has them for the epoch chosen on
PublicTest, which flip TTA chose.

    python benchmarks/recipe_seeds.py --data data/fer2013 --config quick --seeds 0 1 2 \\
        --out runs/quick [--set KEY=VALUE ...]

Run folders are OUT-s0, OUT-s1, ...; `--set` is passed to every run.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ferkit.core.atomic import write_text
from ferkit.training import cpu


def train(run: Path, args: argparse.Namespace, seed: int) -> None:
    """Train (or resume) one seed and record its wall seconds and CPU in wall.json."""
    resumed = (run / "last.pt").is_file()
    if resumed:
        cmd = ["ferkit", "train", "--resume", str(run)]
    else:
        cmd = ["ferkit", "train", "--data", args.data, "--out", str(run)]
        cmd += ["--config", args.config, "--seed", str(seed)]
        cmd += [a for kv in args.set for a in ("--set", kv)]
    start = time.monotonic()
    done = subprocess.run(cmd, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {done.returncode}")
    record = {"seconds": time.monotonic() - start, "cpu": cpu.summary(), "resumed": resumed}
    write_text(run / "wall.json", json.dumps(record) + "\n")


def where_it_went(run: Path, seconds: float) -> str:
    """The wall time split into training, scoring PublicTest after the epochs, and the rest
    (loading, scoring the teacher, the final report), from the run's metrics.csv."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    train = sum(float(r["epoch_s"]) for r in rows)
    if not all(r.get("eval_s") for r in rows):  # a run from before the column
        return f"training {train / 60:.1f}, the rest {(seconds - train) / 60:.1f} min"
    scoring = sum(float(r["eval_s"]) for r in rows)
    rest = seconds - train - scoring
    return f"training {train / 60:.1f}, scoring {scoring / 60:.1f}, rest {rest / 60:.1f} min"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/fer2013")
    p.add_argument("--config", default="quick", help="a shipped recipe or a TOML file")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/quick", help="run folders are OUT-s0, OUT-s1, ...")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    public, private, views = [], [], set()
    for seed in args.seeds:
        run = Path(f"{args.out}-s{seed}")
        if not (run / "final.json").is_file():
            train(run, args, seed)
        final = json.loads((run / "final.json").read_text())
        wall = json.loads((run / "wall.json").read_text()) if (run / "wall.json").is_file() else {}
        minutes = "wall time not recorded"
        if wall.get("resumed"):
            minutes = f"{wall['seconds'] / 60:5.1f} min (resumed: earlier sessions not counted)"
        elif wall:
            minutes = f"{wall['seconds'] / 60:5.1f} min ({where_it_went(run, wall['seconds'])})"
        # the run's own views; a final.json from before `tta` was recorded has flip TTA alone
        tta, key = (final["tta"], "acc_views") if "tta" in final else ("hflip", "acc_tta")
        views.add(tta)
        public.append(100 * final["PublicTest"][key])
        private.append(100 * final["PrivateTest"][key])
        flip = [100 * final[split]["acc_tta"] for split in ("PublicTest", "PrivateTest")]
        print(
            f"{run}: {minutes}, best epoch {final['best_epoch']} of {final['epochs']}, "
            f"PublicTest {public[-1]:.2f}, PrivateTest {private[-1]:.2f} (TTA {tta}; "
            f"flip TTA {flip[0]:.2f}, {flip[1]:.2f})"
        )
    if len(views) > 1:
        print(f"no mean: the runs report different test-time views ({', '.join(sorted(views))})")
    elif len(args.seeds) > 1:
        for split, values in (("PublicTest", public), ("PrivateTest", private)):
            mean, std = statistics.mean(values), statistics.stdev(values)
            print(f"{split}: {mean:.2f} +- {std:.2f} over {len(values)} seeds (TTA {tta})")


if __name__ == "__main__":
    main()
