"""ONNX Runtime session settings, measured: threads, spinning, graph optimisation, batch.

    python benchmarks/ort_settings.py [--model default fast ...] [--rounds 3] [--seconds 1]

For each model, every combination of intra-op threads (1, all cores), thread spinning (on,
off) and graph optimisation level (basic, extended, all) is timed at batches of 1 (one
face per call: a photo, the serve API), 4 (a video frame with several faces: `video`
classifies a frame's faces in one call) and 256 (`evaluate`, folders of crops), through the
one inference path (`Classifier`, `faces_per_second`). Settings are interleaved over
`--rounds` rounds and each cell is the median, so a load that drifts during the run hits
every setting alike. Ratios are against ONNX Runtime's defaults (all cores, spinning on,
optimisation all), measured in the same run; a last line compares what a face costs in a
call of four with a call of its own.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics

from ferkit.core.console import console, table
from ferkit.modelfile import classifier
from ferkit.modelfile.catalog import faces_per_second
from ferkit.modelfile.classifier import Classifier

THREADS = (1, 0)  # 0: ONNX Runtime's default, one thread per core
SPINNING = tuple(classifier.SPINNING)
LEVELS = ("basic", "extended", "all")
BATCHES = (1, 4, 256)
BASELINE = (0, "on", "all")  # ONNX Runtime's defaults


def measure(model: str, rounds: int, seconds: float) -> dict[tuple, dict[int, float]]:
    """faces/s per (threads, spinning, level) and batch: the median over `rounds`."""
    settings = list(itertools.product(THREADS, SPINNING, LEVELS))
    clfs = {s: Classifier(model, threads=s[0], spinning=s[1], optimization=s[2]) for s in settings}
    runs: dict[tuple, dict[int, list[float]]] = {s: {b: [] for b in BATCHES} for s in settings}
    for _ in range(rounds):
        for s, clf in clfs.items():
            for b in BATCHES:
                runs[s][b].append(faces_per_second(clf, b, seconds))
    return {s: {b: statistics.median(v) for b, v in by.items()} for s, by in runs.items()}


def paths(rounds: int, seconds: float) -> None:
    """The classifier's spinning inside the pipelines: one 640x480 photo end to end and a
    150-frame video, with each detector, all cores, interleaved over `rounds`; medians as
    ratios to spinning "on"."""
    import tempfile
    from functools import partial
    from pathlib import Path

    from fer_side import window
    from predict_speed import drifting_clip, photo_640x480, predict_one

    from ferkit import EmotionRecognizer
    from ferkit.apps.video import VideoConfig, process_video

    jpeg = photo_640x480()
    clip = str(drifting_clip(jpeg, Path(tempfile.mkdtemp())))
    rows = []
    for det in ("haar", "blazeface"):
        recs = {m: EmotionRecognizer(detector=det, spinning=m) for m in SPINNING}
        photo: dict[str, list[float]] = {m: [] for m in SPINNING}
        video: dict[str, list[float]] = {m: [] for m in SPINNING}
        for _ in range(rounds):
            for m, rec in recs.items():
                photo[m].append(window(partial(predict_one, rec, jpeg), seconds))
                video[m].append(process_video(VideoConfig(clip), rec).fps)
        for m in SPINNING:
            p, v = statistics.median(photo[m]), statistics.median(video[m])
            p0, v0 = statistics.median(photo["on"]), statistics.median(video["on"])
            rows.append([det, m, f"{1000 / p:.1f} ({p / p0:.2f}x)", f"{v:.0f} ({v / v0:.2f}x)"])
    header = ["detector", "spinning", "photo ms (speed vs on)", "video fps (vs on)"]
    console().print(table("The pipelines: default model, all cores", header, rows, text=header[:2]))


def describe(setting: tuple) -> list[str]:
    threads, spinning, level = setting
    return [str(threads or os.cpu_count()), spinning, level]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="*", default=["default"], help="shipped names or files")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repeats per cell")
    ap.add_argument("--seconds", type=float, default=1.0, help="timing per cell and round")
    ap.add_argument("--paths", action="store_true", help="only the photo and video pipelines")
    args = ap.parse_args()
    if args.paths:
        paths(args.rounds, args.seconds)
        return
    for model in args.model:
        found = measure(model, args.rounds, args.seconds)
        base = found[BASELINE]
        rows = []
        for s, by in sorted(found.items(), key=lambda kv: -kv[1][1]):
            cells = [f"{by[b]:,.0f} ({by[b] / base[b]:.2f}x)" for b in BATCHES]
            rows.append(describe(s) + cells)
        header = ["threads", "spinning", "optimisation"] + [f"batch {b}" for b in BATCHES]
        title = f"{model}: faces/s (ratio to ONNX Runtime's defaults)"
        console().print(table(title, header, rows, text=header[:3]))
        print(
            f"{model}, defaults: a face costs {base[1] / base[4]:.2f}x as much in a call of 4 "
            f"as alone ({base[4]:,.0f} vs {base[1]:,.0f} faces/s)"
        )


if __name__ == "__main__":
    main()
