"""Real photos end to end: `../shared/wild-dev` through detect, crop and classify, as
`ferkit predict` runs them, for each model and detector asked, and for `fer` in the same run.

wild-dev holds 1,551 real face photos (portraits and film stills, mostly 350x350 grayscale,
one person whose face fills most of the frame) filed by expression; its README says where
they come from. Each photo is decoded from its file, its largest face is classified (the
first face `predict` lists), and a photo with no face counts as wrong. Printed per row:
the share of photos with no face, accuracy, balanced accuracy (the mean of the per-class
recalls, so happy and neutral, two thirds of the photos, do not decide it alone), recall per
class, and the share of happy and of neutral photos read as sad. `--no-detect` rows take the
whole photo as the face (its centre square), as `ferkit predict --no-detect` does: what the
classifier does when detection and framing are out of the question.

wild-dev is for evaluation only: nothing in ferkit is trained, tuned or thresholded on it.

    python benchmarks/wild.py [--wild ../shared/wild-dev] [--models default,fast,accurate]
        [--detectors blazeface,haar] [--no-detect] [--margins 0,0.2]
        [--fer-python FER_VENV/bin/python] [--digits 3]

`--fer-python` points at an interpreter with the `fer` package (TensorFlow, setuptools<80,
OpenCV 4), as in predict_speed.py; `fer`'s default pipeline (its Haar cascade and
mini-Xception) runs on the same files in a subprocess, largest face first as here.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from detectors import detector

from ferkit import LABELS, EmotionRecognizer
from ferkit.core.errors import FerkitError

ROOT = Path(__file__).resolve().parents[1]

FER_SCRIPT = r"""
import json, sys, cv2
from fer.fer import FER
det = FER()  # fer's defaults: OpenCV's Haar cascade, mini-Xception (TFLite)
out = []
for path in json.load(open(sys.argv[1])):
    faces = det.detect_emotions(cv2.imread(path))
    faces.sort(key=lambda f: -f["box"][2] * f["box"][3])
    out.append(max(faces[0]["emotions"], key=faces[0]["emotions"].get) if faces else None)
json.dump(out, open(sys.argv[2], "w"))
"""


def load_labels(wild: Path) -> tuple[list[Path], np.ndarray]:
    """The photos of `labels.csv` and their FER-2013 label indices."""
    with open(wild / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [wild / r["image"] for r in rows], np.array([LABELS.index(r["emotion"]) for r in rows])


def ferkit_answers(rec: EmotionRecognizer, files: list[Path], detect: bool) -> list[int | None]:
    """The label index of each photo's largest face, or None for no face (or no image)."""
    out = []
    for path in files:
        try:
            faces = rec.predict(path, detect=detect)
        except FerkitError:
            faces = []
        out.append(LABELS.index(faces[0].label) if faces else None)
    return out


def fer_answers(python: str, files: list[Path]) -> list[int | None]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "files.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps([str(p) for p in files]))
        subprocess.run([python, "-c", FER_SCRIPT, str(inp), str(out)], check=True,
                       capture_output=True)  # fmt: skip
        return [None if a is None else LABELS.index(a) for a in json.loads(out.read_text())]


def report(name: str, answers: list[int | None], y: np.ndarray, digits: int = 3) -> str:
    """One markdown row: no face, accuracy, balanced accuracy (to `digits` places), recall
    per class, and the share of happy and neutral photos read as sad."""
    got = np.array([-1 if a is None else a for a in answers])
    present = [k for k in range(len(LABELS)) if (y == k).any()]
    recall = {k: float(np.mean(got[y == k] == k)) for k in present}
    sad = LABELS.index("sad")
    as_sad = [float(np.mean(got[y == LABELS.index(k)] == sad)) for k in ("happy", "neutral")]
    cells = [
        name,
        f"{100 * np.mean(got < 0):.1f}%",
        f"{100 * np.mean(got == y):.1f}%",
        f"{np.mean(list(recall.values())):.{digits}f}",
        " / ".join(f"{100 * recall[k]:.0f}" for k in present),
        f"{100 * as_sad[0]:.1f}% / {100 * as_sad[1]:.1f}%",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wild", type=Path, default=ROOT.parent / "shared" / "wild-dev")
    ap.add_argument("--models", default="default")
    ap.add_argument("--detectors", default="blazeface", help="also blazeface-1pass (before)")
    ap.add_argument("--no-detect", action="store_true", help="add rows without detection")
    ap.add_argument("--margins", default="", help="add rows cropping each box grown by these "
                    "margins instead of BlazeFace's frame, e.g. 0,0.2")  # fmt: skip
    ap.add_argument("--fer-python", help="an interpreter with the fer package")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--digits", type=int, default=3, help="balanced accuracy's places")
    args = ap.parse_args()
    if not (args.wild / "labels.csv").is_file():
        raise SystemExit(f"{args.wild}: no labels.csv (wild-dev lives in ../shared)")

    files, y = load_labels(args.wild)
    present = [k for k in range(len(LABELS)) if (y == k).any()]
    counts = ", ".join(f"{LABELS[k]} {int((y == k).sum())}" for k in present)
    print(f"{len(files)} photos of {args.wild} ({counts}); largest face per photo\n")
    names = " / ".join(LABELS[k] for k in present)
    print(f"| pipeline | no face | accuracy | balanced accuracy | recall {names}, % "
          "| happy / neutral read as sad |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for spec in args.detectors.split(","):
            rec = EmotionRecognizer(model, detector=detector(spec, None), threads=args.threads)
            answers = ferkit_answers(rec, files, detect=True)
            print(report(f"ferkit `{model}`, `{spec}`", answers, y, args.digits), flush=True)
        for margin in filter(None, args.margins.split(",")):
            rec = EmotionRecognizer(model, margin=float(margin), threads=args.threads)
            answers = ferkit_answers(rec, files, detect=True)
            print(
                report(f"ferkit `{model}`, box + margin {margin}", answers, y, args.digits),
                flush=True,
            )
        if args.no_detect:
            rec = EmotionRecognizer(model, threads=args.threads)
            answers = ferkit_answers(rec, files, detect=False)
            print(report(f"ferkit `{model}`, `--no-detect`", answers, y, args.digits), flush=True)
    if args.fer_python:
        fer = fer_answers(args.fer_python, files)
        print(report("`fer` (Haar + mini-Xception)", fer, y, args.digits))


if __name__ == "__main__":
    main()
