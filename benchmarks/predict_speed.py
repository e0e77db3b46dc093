"""Inference speed: the shipped models against `fer` per core and on all cores; detectors.

    python benchmarks/predict_speed.py [--data data/fer2013] [--fer-python FER_VENV/bin/python]
        [--model CANDIDATE.onnx ...] [--shipped all|fast,...|none] [--crops-only]
        [--detectors haar,dlib,blazeface] [--rounds 5]

- crops: faces/s classifying the same 48x48 crops (FER-2013 PrivateTest when `--data` has
  a prepared cache, else noise), batched (256 a call) and one at a time, at one thread
  ("per core") and at all cores, for every shipped model and any ONNX file given with
  `--model` (what a candidate would cost), with its PrivateTest accuracy;
- photo: one 640x480 JPEG with one face, decode + detect + crop + classify, per core and
  on all cores, with the default model and detector;
- with `--fer-python`, both are ratios to `fer` 25.10's defaults (Haar + TFLite
  mini-Xception) measured by `fer_side.py`'s rules: the same input, preprocessing timed on
  both sides, threads matched, interleaved windows, median ratio and its range;
- detectors (ferkit alone, `--threads`): for each of `--detectors`, the photo above, the
  detector alone, video frames/s of `process_video` on a generated 640x480 clip (without
  and with the annotated mp4 written), a 1920x1080 JPEG of four people whose faces are
  90 px (how many each finds), and a 640x480 JPEG with no face (what a photo costs when
  every pass finds nothing), as ratios to the first detector. `blazeface-1pass` and
  `blazeface-4pass` are BlazeFace as ferkit ran it before its close-up and large-photo
  passes (benchmarks/detectors.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from detectors import detector
from fer_side import FerWorker, crops_step, interleave, save_inputs, window

from ferkit import EmotionRecognizer
from ferkit.apps.video import VideoConfig, process_video
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import SHIPPED_MODELS, shipped_model_path

ROOT = Path(__file__).resolve().parents[1]
N_CROPS = 4096


def photo_640x480() -> bytes:
    """The astronaut portrait (one face) on a 640x480 canvas, JPEG-encoded."""
    a = cv2.imread(str(ROOT / "examples" / "astronaut.jpg"))
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[:, 64:576] = a[:480]
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def group_1920x1080(face_px: int = 90) -> bytes:
    """Four people (the three portraits of heads.py, one mirrored) whose faces are `face_px`
    wide, in a row across a 1920x1080 face-free photo (a scikit-image background), JPEG."""
    from detectors import backgrounds
    from heads import portraits

    canvas = cv2.resize(backgrounds()[0], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    heads = list(portraits().values())
    heads.append((heads[0][0][:, ::-1], *heads[0][1:]))
    for i, (head, (*_, fw, _), _) in enumerate(heads):
        s = face_px / fw
        head = cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        x, y = 150 + 450 * i, 300 + 200 * (i % 2)
        canvas[y : y + head.shape[0], x : x + head.shape[1]] = head
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def empty_640x480() -> bytes:
    """A 640x480 face-free photo (a scikit-image background), JPEG-encoded."""
    from detectors import backgrounds

    canvas = cv2.resize(backgrounds()[2], (640, 480), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def median_ms(fn: Callable[[], object], runs: int = 100) -> float:
    """Median wall time of `fn()` in ms over `runs` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def predict_one(rec: EmotionRecognizer, jpeg: bytes) -> int:
    """One photo decoded, searched and read: a step of one item, for `window`."""
    rec.predict(jpeg)
    return 1


def photo_ms(rec: EmotionRecognizer, jpeg: bytes, runs: int = 100) -> tuple[float, int]:
    """Decode + detect + crop + classify one JPEG: median ms, and the faces found."""
    return median_ms(lambda: rec.predict(jpeg), runs), len(rec.predict(jpeg))


def detect_ms(rec: EmotionRecognizer, jpeg: bytes) -> float:
    """The detector alone on the decoded photo (colour, as `predict` passes it): median ms."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return median_ms(lambda: rec.detector.detect(image))


def drifting_clip(jpeg: bytes, tmp: Path, frames: int = 150) -> Path:
    """A 640x480 mp4 of `frames` frames of the photo, its face drifting right."""
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    src = tmp / "clip.mp4"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for i in range(frames):
        w.write(np.roll(frame, 2 * i, axis=1))
    w.release()
    return src


def video_fps(rec: EmotionRecognizer, jpeg: bytes, tmp: Path) -> tuple[float, float]:
    """`process_video` frames/s on `drifting_clip`, without and with the mp4 written."""
    src = drifting_clip(jpeg, tmp)
    plain = process_video(VideoConfig(str(src)), rec)
    written = process_video(VideoConfig(str(src), out=tmp / "annotated.mp4"), rec)
    return plain.fps, written.fps


THREADS = {"per core": 1, "all cores": os.cpu_count() or 1}  # ONNX Runtime, OpenCV, TFLite


def compare_models(
    models: dict[str, str], crops: np.ndarray, labels: np.ndarray, fers: dict, args
) -> None:
    """faces/s on the same crops, batched and one at a time, per core and on all cores;
    with `fers` (a `FerWorker` per setting), each as a ratio to `fer` in interleaved windows."""
    for name, path in models.items():
        line = []
        for setting, threads in THREADS.items():
            cv2.setNumThreads(threads)
            clf = Classifier(path, threads=threads)
            for batch in (256, 1):
                step = crops_step(clf.classify, crops, batch)
                ours = lambda step=step: window(step, args.seconds)  # noqa: E731
                label = f"{setting}, {'batch 256' if batch > 1 else 'one at a time'}"
                if setting not in fers:
                    line.append(f"{label} {statistics.median(ours() for _ in range(3)):.0f}")
                    continue
                theirs = lambda f=fers[setting], b=batch: f.ask(f"crops {b} {args.seconds}")  # noqa: E731
                r = interleave(ours, theirs, args.rounds)
                line.append(f"{label} {r.ours:.0f} faces/s = {r} fer")
        if len(labels):
            hit = clf.classify(crops[: len(labels)]).argmax(1) == labels
            line.append(f"PrivateTest {100 * hit.mean():.2f}%")
        print(f"  {name}: " + "; ".join(line))
    for setting, fer in fers.items():
        rates = [fer.ask(f"crops {b} {args.seconds}") for b in (256, 1)]
        print(f"  fer 25.10 TFLite {setting}: {rates[0]:.0f} faces/s batch 256, {rates[1]:.0f} one "
              "at a time")  # fmt: skip
    if fers and len(labels):
        acc = next(iter(fers.values())).ask("accuracy")
        print(f"  fer's TFLite model on FER-2013 PrivateTest: {100 * acc:.2f}%")


def compare_photo(jpeg: bytes, fers: dict, args) -> None:
    """One 640x480 photo end to end (decode, detect, classify) against `fer`'s
    `detect_emotions` (Haar + TFLite) on the same bytes, per core and on all cores."""
    for setting, threads in THREADS.items():
        cv2.setNumThreads(threads)
        rec = EmotionRecognizer(threads=threads)
        n = len(rec.predict(jpeg))
        ours = lambda rec=rec: window(partial(predict_one, rec, jpeg), args.seconds)  # noqa: E731
        if setting not in fers:
            print(f"photo 640x480 {setting}: {1000 / ours():.1f} ms ({n} face)")
            continue
        fer = fers[setting]
        r = interleave(ours, lambda f=fer: f.ask(f"photo {args.seconds}"), args.rounds)
        print(
            f"photo 640x480 {setting}: {1000 / r.ours:.1f} ms ({n} face), fer "
            f"{1000 / r.theirs:.1f} ms ({fer.photo_faces} face): ferkit {r} as many photos/s"
        )
    cv2.setNumThreads(THREADS["all cores"])


def load_crops(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """FER-2013 PrivateTest faces and labels when `data` holds a prepared cache, else
    `N_CROPS` noise faces and no labels."""
    if (data / "cache.npz").is_file():
        from ferkit.data import load_cache

        return load_cache(data).split("PrivateTest")
    noise = np.random.default_rng(0).integers(0, 256, (N_CROPS, 48, 48), dtype=np.uint8)
    return noise, np.zeros(0, np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared cache (crops, int8 calib)")
    ap.add_argument("--fer-python", help="python with the `fer` package, for the comparison")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads for the "
                    "detector rows (0: all)")  # fmt: skip
    ap.add_argument("--model", nargs="*", default=[], help="more ONNX files to time alike")
    ap.add_argument("--seconds", type=float, default=1.0, help="each timing window, s")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved windows per side")
    ap.add_argument(
        "--detectors",
        default="blazeface",
        help="detectors for the photo and video rows, comma-separated; ratios are against "
        "the first (e.g. haar,dlib,blazeface)",
    )
    ap.add_argument(
        "--detectors-only", action="store_true", help="only the detector rows (skip the models)"
    )
    ap.add_argument("--shipped", default="all", help="shipped models to time: all, or names "
                    "joined by commas, or none (only --model)")  # fmt: skip
    ap.add_argument(
        "--crops-only", action="store_true", help="only the crops rows (no photo, no detectors)"
    )
    args = ap.parse_args()

    crops, labels = load_crops(Path(args.data))
    tmp = Path(tempfile.mkdtemp())
    chosen = SHIPPED_MODELS if args.shipped == "all" else args.shipped.split(",")
    models: dict[str, str] = {
        name: name
        for name, file in SHIPPED_MODELS.items()
        if name in chosen and shipped_model_path(file).is_file()
    }
    models.update({Path(m).name: m for m in args.model})
    jpeg = photo_640x480()
    fers = {}
    if args.fer_python:
        save_inputs(tmp, crops, labels, jpeg)
        fers = {s: FerWorker(args.fer_python, tmp, t) for s, t in THREADS.items()}

    if not args.detectors_only:
        print(f"crops: the same {len(crops)} 48x48 faces on both sides, preprocessing timed; "
              f"{args.rounds} interleaved {args.seconds:g} s windows a side; median ratio "
              "(range over rounds)")  # fmt: skip
        compare_models(models, crops, labels, fers, args)
        if not args.crops_only:
            compare_photo(jpeg, fers, args)
    for fer in fers.values():
        fer.close()
    if not args.crops_only:
        detector_rows(args, jpeg, tmp)


def detector_rows(args, jpeg: bytes, tmp: Path) -> None:
    """Each of `--detectors` with the default model: photo, video, group and face-free
    photo, as ratios to the first detector."""
    first_ms = first_fps = first_group = first_empty = None
    group, empty = group_1920x1080(), empty_640x480()
    for spec in args.detectors.split(","):
        rec = EmotionRecognizer(detector=detector(spec, None), threads=args.threads)
        ms, n = photo_ms(rec, jpeg)
        plain, written = video_fps(rec, jpeg, tmp)
        group_ms, group_n = photo_ms(rec, group, runs=10)
        empty_ms, empty_n = photo_ms(rec, empty)
        first_ms, first_fps = first_ms or ms, first_fps or plain
        first_group, first_empty = first_group or group_ms, first_empty or empty_ms
        print(
            f"detector {spec}: photo {ms:.1f} ms ({ms / first_ms:.2f}x, {n} face; detection "
            f"alone {detect_ms(rec, jpeg):.1f} ms); video {plain:.0f} fps "
            f"({plain / first_fps:.2f}x), {written:.0f} fps writing the mp4; 1920x1080 group "
            f"photo {group_ms:.1f} ms ({group_ms / first_group:.2f}x), {group_n} of 4 faces; "
            f"face-free photo {empty_ms:.1f} ms ({empty_ms / first_empty:.2f}x, {empty_n} faces)"
        )


if __name__ == "__main__":
    main()
