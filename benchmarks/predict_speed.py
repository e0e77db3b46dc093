"""Inference speed: batched crops, one photo end to end, video; fp32 vs int8 vs `fer`.

    python benchmarks/predict_speed.py [--data data/fer2013] [--fer-python PATH]
        [--model CANDIDATE.onnx ...] [--detectors haar,dlib,blazeface]

- crops: faces/s classifying 48x48 crops at batch 256 and one at a time
  (`catalog.faces_per_second`, as `ferkit models --benchmark`), for every shipped model,
  the no-TTA variant given with `--no-tta-model` and any other ONNX files given with
  `--model` (what a candidate would cost), with PrivateTest accuracy when `--data` has a
  prepared cache, and ratios to `fer` measured first in the same run;
- photo: one 640x480 JPEG with one face, decode + detect + crop + classify, median ms, for
  each model with the default detector, then for each of `--detectors` with the default
  model (and the detector alone), as ratios to the first detector;
- video: frames/s of `process_video` on a generated 640x480 clip, without and with the
  annotated mp4 written, for each of `--detectors`;
- group photo: a 1920x1080 JPEG of four people whose faces are 90 px, end to end, and how
  many of the four each detector finds;
- face-free photo: a 640x480 JPEG with no face, end to end: what a photo costs when every
  pass finds nothing (BlazeFace then adds its close-up looks). `blazeface-1pass` and
  `blazeface-4pass` in `--detectors` are BlazeFace as ferkit ran it before its close-up and
  large-photo passes and before its close-up looks (benchmarks/detectors.py).
`--fer-python` points at an interpreter with the `fer` package installed (it needs
TensorFlow, setuptools<80 and OpenCV 4); its default pipeline is measured on the same
crops and photo in a subprocess, so both sides are timed in this one run: its TFLite path
(fer's default, one face per interpreter call inside) at 256 faces per call and at one,
and its Keras path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from detectors import detector

from ferkit import EmotionRecognizer
from ferkit.apps.video import VideoConfig, process_video
from ferkit.modelfile.catalog import faces_per_second
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import SHIPPED_MODELS, shipped_model_path

ROOT = Path(__file__).resolve().parents[1]
N_CROPS = 4096

FER_SCRIPT = r"""
import json, sys, time, statistics, numpy as np, cv2
from fer.fer import FER
crops, photo, labels = np.load(sys.argv[1]), cv2.imread(sys.argv[2]), np.load(sys.argv[3])
out = {}
for name, tflite in (("tflite", True), ("keras", False)):
    det = FER(use_tflite=tflite)  # Haar cascade + mini-Xception; tflite is fer's default
    size = (64, 64)  # mini-Xception's input
    x = np.stack([cv2.resize(c, size) for c in crops]).astype("float32") / 255 * 2 - 1
    x = x if tflite else x[..., None]  # its tflite path adds the channel axis itself
    det._classify_emotions(x[:256])  # warm-up
    n = 512 if tflite else len(x)
    t = time.perf_counter()
    for i in range(0, n, 256):  # tflite runs one face at a time inside; Keras a batch
        det._classify_emotions(x[i : i + 256])
    out[name] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(256):  # one face per call, as a photo with one face is classified
        det._classify_emotions(x[i : i + 1])
    out[name + "_one"] = 256 / (time.perf_counter() - t)
    if not tflite:
        out["params"] = det._FER__emotion_classifier.count_params()
    if not tflite and len(labels):  # fer's labels are FER-2013's order too
        p = np.asarray(det._classify_emotions(x[: len(labels)]))
        out["accuracy"] = float(np.mean(p.argmax(1) == labels))
    det.detect_emotions(photo)
    times = []
    for _ in range(30):
        t = time.perf_counter()
        faces = det.detect_emotions(photo)
        times.append(time.perf_counter() - t)
    out[name + "_photo_ms"], out[name + "_faces"] = 1000 * statistics.median(times), len(faces)
print(json.dumps(out))
"""


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


def photo_ms(rec: EmotionRecognizer, jpeg: bytes, runs: int = 100) -> tuple[float, int]:
    """Decode + detect + crop + classify one JPEG: median ms, and the faces found."""
    return median_ms(lambda: rec.predict(jpeg), runs), len(rec.predict(jpeg))


def detect_ms(rec: EmotionRecognizer, jpeg: bytes) -> float:
    """The detector alone on the decoded photo (colour, as `predict` passes it): median ms."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return median_ms(lambda: rec.detector.detect(image))


def video_fps(rec: EmotionRecognizer, jpeg: bytes, tmp: Path, frames: int = 150) -> tuple:
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    src = tmp / "clip.mp4"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for i in range(frames):
        w.write(np.roll(frame, 2 * i, axis=1))  # the face drifts right
    w.release()
    plain = process_video(VideoConfig(str(src)), rec)
    written = process_video(VideoConfig(str(src), out=tmp / "annotated.mp4"), rec)
    return plain.fps, written.fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared cache (crops, int8 calib)")
    ap.add_argument("--no-tta-model", help="the same model exported with --tta none")
    ap.add_argument("--fer-python", help="python with the `fer` package, for the comparison")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all)")
    ap.add_argument("--model", nargs="*", default=[], help="more ONNX files to time alike")
    ap.add_argument(
        "--detectors",
        default="blazeface",
        help="detectors for the photo and video rows, comma-separated; ratios are against "
        "the first (e.g. haar,dlib,blazeface)",
    )
    ap.add_argument(
        "--detectors-only", action="store_true", help="only the detector rows (skip the models)"
    )
    args = ap.parse_args()

    data = Path(args.data)
    if (data / "cache.npz").is_file():
        from ferkit.data import load_cache

        crops, labels = load_cache(data).split("PrivateTest")
        crops = np.resize(crops, (N_CROPS, *crops.shape[1:]))
    else:
        crops = np.random.default_rng(0).integers(0, 256, (N_CROPS, 48, 48), dtype=np.uint8)
        labels = np.zeros(0, np.int64)
    tmp = Path(tempfile.mkdtemp())
    models: dict[str, str | None] = {
        name: name for name, file in SHIPPED_MODELS.items() if shipped_model_path(file).is_file()
    }
    if args.no_tta_model:
        models["no TTA"] = args.no_tta_model
    models.update({Path(m).name: m for m in args.model})
    jpeg = photo_640x480()
    (tmp / "photo.jpg").write_bytes(jpeg)
    fer = run_fer(args.fer_python, crops, labels, tmp) if args.fer_python else None

    if args.detectors_only:
        models = {}
    print(f"crops: {len(crops)} 48x48 faces, ONNX Runtime threads {args.threads or 'all'}")
    for name, path in models.items():
        clf = Classifier(path, threads=args.threads)
        batched = faces_per_second(clf, 256)
        single = faces_per_second(clf, 1)
        acc = ""
        if len(labels):
            hit = clf.classify(crops[: len(labels)]).argmax(1) == labels
            acc = f"  PrivateTest {100 * hit.mean():.2f}%"
        vs = ""
        if fer:  # ratios to fer's TFLite path (its default), and batched to its Keras path
            vs = (
                f" = {batched / fer['tflite']:.2f}x fer tflite, {batched / fer['keras']:.2f}x "
                f"keras; one at a time {single / fer['tflite_one']:.2f}x fer tflite"
            )
        print(
            f"  {name:26s} batch 256: {batched:7.0f} faces/s  one at a time: {single:6.0f} "
            f"faces/s{acc}{vs}"
        )

    for name, path in models.items():
        rec = EmotionRecognizer(model=path, threads=args.threads)
        ms, n = photo_ms(rec, jpeg)
        print(f"photo 640x480, {name}: {ms:.1f} ms median (decode + detect + classify, {n} face)")
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

    if fer:
        for name in ("tflite", "keras"):
            print(
                f"fer 25.10 ({name}, Haar + mini-Xception): {fer[name]:.0f} faces/s batch 256, "
                f"{fer[name + '_one']:.0f} one at a time; photo {fer[name + '_photo_ms']:.1f} ms "
                f"({fer[name + '_faces']} face)"
            )
        if "accuracy" in fer:
            print(
                f"fer's model ({fer['params']:,} parameters) on FER-2013 PrivateTest: "
                f"{100 * fer['accuracy']:.2f}%"
            )


def run_fer(python: str, crops: np.ndarray, labels: np.ndarray, tmp: Path) -> dict | None:
    """`fer`'s figures from `FER_SCRIPT` run by `python` on the same crops and photo."""
    np.save(tmp / "crops.npy", crops)
    np.save(tmp / "labels.npy", labels)
    files = [str(tmp / f) for f in ("crops.npy", "photo.jpg", "labels.npy")]
    r = subprocess.run([python, "-c", FER_SCRIPT, *files], capture_output=True, text=True)
    if r.returncode:
        print(f"fer: failed ({r.stderr.strip().splitlines()[-1]})")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
