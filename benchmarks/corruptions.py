"""FER-2013-C for shipped models, candidates and the `fer` package, on the same images.

    python benchmarks/corruptions.py [--data data/fer2013] [--split PublicTest]
        [--models default accurate runs/x/model.onnx ...] [--fer-python PATH] [--json F]

Every model is scored on the split clean and under each of the 27 corrupted copies
(`ferkit.evaluation.corruptions`, seed `--seed`), through `Classifier.classify` for ONNX
models. `--fer-python` is an interpreter with the `fer` package (TensorFlow, setuptools<80,
OpenCV 4): the same corrupted crops go to its mini-Xception in a subprocess, batched
through its Keras model as `fer` itself prepares them (64x64, scaled to [-1, 1]).
It prints mCA and each corruption's mean side by side, then for each model the accuracy at
every severity and each emotion's share shift at severity 2, as markdown tables.
Choose on PublicTest-C; report PrivateTest-C once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ferkit.data import load_cache
from ferkit.evaluation.report import md_table
from ferkit.evaluation.robustness import conditions, score, summarise, tables
from ferkit.modelfile.classifier import Classifier

FER_SCRIPT = r"""
import sys, numpy as np, cv2
from fer.fer import FER
sets = np.load(sys.argv[1])
det = FER(use_tflite=False)  # the Keras mini-Xception: batched; the same weights as tflite
out = {}
for key in sets.files:
    x = np.stack([cv2.resize(c, (64, 64)) for c in sets[key]]).astype("float32")
    out[key] = np.asarray(det._classify_emotions((x / 255 * 2 - 1)[..., None]))
np.savez(sys.argv[2], **out)
"""


def fer_report(x: np.ndarray, y: np.ndarray, seed: int, python: str, tmp: Path) -> dict:
    """FER-2013-C for `fer`'s model (its labels are FER-2013's order too)."""
    sets = {"clean": x, **{f"{n}|{s}": im for n, s, im in conditions(x, seed)}}
    np.savez(tmp / "sets.npz", **sets)
    r = subprocess.run(
        [python, "-c", FER_SCRIPT, str(tmp / "sets.npz"), str(tmp / "probs.npz")],
        capture_output=True,
        text=True,
    )
    if r.returncode:
        raise SystemExit(f"fer: failed ({r.stderr.strip().splitlines()[-1]})")
    probs = np.load(tmp / "probs.npz")
    corrupted = {}
    for key in probs.files:
        if key != "clean":
            name, severity = key.split("|")
            corrupted[name, int(severity)] = probs[key]
    return summarise(probs["clean"], corrupted, y, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/fer2013")
    ap.add_argument("--split", default="PublicTest", help="PublicTest to choose, PrivateTest once")
    ap.add_argument("--models", nargs="*", default=["default"], help="shipped names or ONNX")
    ap.add_argument("--fer-python", help="python with the `fer` package, for the comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write every report here")
    args = ap.parse_args()

    x, y = load_cache(args.data).split(args.split)
    reports = {m: score(Classifier(m).classify, x, y, args.seed) for m in args.models}
    if args.fer_python:
        with tempfile.TemporaryDirectory() as tmp:
            reports["fer"] = fer_report(x, y, args.seed, args.fer_python, Path(tmp))

    names = list(reports)
    first = reports[names[0]]
    print(f"FER-2013-C on {args.split} ({len(y):,} faces per condition, seed {args.seed})")
    print(f"{'':16}" + "".join(f"{n[-14:]:>15}" for n in names))
    print(f"{'clean':16}" + "".join(f"{r['clean']['accuracy']:>15.2%}" for r in reports.values()))
    print(f"{'mCA':16}" + "".join(f"{r['mca']:>15.2%}" for r in reports.values()))
    for c in first["corruptions"]:
        cells = "".join(f"{r['corruptions'][c]['mean_accuracy']:>15.2%}" for r in reports.values())
        print(f"  {c:14}{cells}")
    for name, r in reports.items():
        big = r["largest_gain_at_severity_2"]
        sad = max(r["corruptions"][c]["severities"][1]["shift"]["sad"] for c in r["corruptions"])
        print(
            f"{name}: largest gain at severity 2 {big['label']} under {big['corruption']} "
            f"{big['points']:+.1f} points; sad at most {sad:+.1f}"
        )
    for name, r in reports.items():  # every condition and every shift, as markdown
        for caption, header, rows in tables(r):
            print(f"\n{name}: {caption}\n\n{md_table(header, rows)}")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
