"""Compare the face detectors on real faces in real photos, and choose the crop margin.

The test set: FER-2013 PrivateTest faces (real photos of people, 48x48) enlarged to 80-192
px (`--faces`) and pasted, with feathered edges, into 640x480 (`--sizes`) crops of face-free
photos that scikit-image and scikit-learn ship (coffee, cat, rocket, horse, brick, China,
flower...). Ground-truth boxes are known, so we get recall, false positives (precision) and
time per photo; then each found face is re-cropped at several margins (and aligned, where
the detector gives eyes) and classified, which measures what the whole pipeline loses
against the original crops.

    python benchmarks/detectors.py --data data/fer2013 [--images 150] [--detectors dlib,blazeface]
    python benchmarks/detectors.py --faces all --sizes 640x480,1920x1080,4000x3000 \
        --detectors blazeface-1pass,blazeface,haar

`--faces all` pastes faces from 40 px up to the photo's whole short side (a fifth of them
fill it), the close-ups and small faces that users bring; `blazeface-1pass` is BlazeFace as
ferkit ran it before its close-up and large-photo passes, a baseline in the same run.

Needs scikit-image and scikit-learn for the backgrounds (`pip install scikit-image
scikit-learn`), dlib + face_recognition_models for `dlib`. It is the source of the detector
table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import cv2
import numpy as np

from ferkit.data import load_cache
from ferkit.modelfile.classifier import Classifier
from ferkit.vision.blazeface import (
    FULL_THRESHOLD,
    LARGE_THRESHOLD,
    SHORT_THRESHOLD,
    BlazeFaceDetector,
    BlazeFaceSettings,
)
from ferkit.vision.detect import make_detector
from ferkit.vision.detection import iou
from ferkit.vision.recognize import crop_face, eye_angle


def backgrounds() -> list[np.ndarray]:
    from skimage import data as sk
    from sklearn.datasets import load_sample_images

    imgs = [getattr(sk, n)() for n in ("coffee", "chelsea", "rocket", "brick", "grass", "horse")]
    imgs += list(load_sample_images().images)
    out = []
    for im in imgs:
        im = np.asarray(im)
        im = (im.astype(np.uint8) * (255 if im.dtype == bool else 1)).astype(np.uint8)
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else im[:, :, ::-1]
        h, w = im.shape[:2]
        s = max(640 / w, 480 / h, 1.0)
        out.append(cv2.resize(np.ascontiguousarray(im), (round(w * s) + 1, round(h * s) + 1)))
    return out


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


def face_sides(rng, faces: str, short: int) -> int:
    """One pasted face's side, px: uniform in `lo-hi`, or for `all` log-uniform from 40 px
    to the photo's whole short side (a fifth of them exactly that: faces filling the frame)."""
    if faces != "all":
        lo, hi = (int(v) for v in faces.split("-"))
        return int(rng.integers(lo, hi + 1))
    if rng.random() < 0.2:
        return short
    return round(float(np.exp(rng.uniform(np.log(40), np.log(short)))))


def faces_text(faces: str) -> str:
    return "40 px to the short side" if faces == "all" else f"{faces} px"


def compose(rng, bgs, faces, labels, n_faces, tilt=0.0, size=(640, 480), sides="80-192"):
    """A `size` (width, height) canvas with `n_faces` non-overlapping pasted faces; returns
    the canvas and [(box, label, original_crop)]."""
    width, height = size
    bg = bgs[rng.integers(len(bgs))]
    s = max(width / bg.shape[1], height / bg.shape[0])
    if s > 1:  # the backgrounds are about 640x480: enlarge them for larger photos
        bg = cv2.resize(bg, (round(bg.shape[1] * s) + 1, round(bg.shape[0] * s) + 1))
    y0, x0 = rng.integers(bg.shape[0] - height + 1), rng.integers(bg.shape[1] - width + 1)
    canvas = bg[y0 : y0 + height, x0 : x0 + width].astype(np.float32)
    truth = []
    for _ in range(50):
        if len(truth) == n_faces:
            break
        s = face_sides(rng, sides, min(width, height))
        x, y = int(rng.integers(0, width - s + 1)), int(rng.integers(0, height - s + 1))
        if any(
            x < bx + bw and bx < x + s and y < by + bh and by < y + s
            for (bx, by, bw, bh), *_ in truth
        ):
            continue
        i = int(rng.integers(len(faces)))
        face = cv2.resize(faces[i], (s, s), interpolation=cv2.INTER_CUBIC)
        if tilt:  # a head tilted in the image plane, up to `tilt` degrees either way
            m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-tilt, tilt), 1.0)
            face = cv2.warpAffine(face, m, (s, s), borderMode=cv2.BORDER_REPLICATE)
        face = face.astype(np.float32)
        ramp = np.minimum(1, np.minimum(np.arange(s), np.arange(s)[::-1]) / (0.06 * s))
        alpha = np.minimum.outer(ramp, ramp)[:, :, None]  # feathered edge, 6% of the side
        patch = canvas[y : y + s, x : x + s]
        canvas[y : y + s, x : x + s] = alpha * face[:, :, None] + (1 - alpha) * patch
        truth.append(((x, y, s, s), int(labels[i]), faces[i]))
    return canvas.astype(np.uint8), truth


# px, the pasted faces' sides: the three of 80-192 px faces, or doubling from 40 px for `all`
SIZE_BINS = ((80, 111), (112, 143), (144, 192))
ALL_BINS = ((40, 79), (80, 159), (160, 319), (320, 639), (640, 1279), (1280, 4000))


def timed_matches(det, canvas, boxes, min_iou: float = 0.3):
    """Detect, timed, and match each detection to the true box it overlaps most, if by
    `min_iou` and that box is not taken yet: ({truth index: detection}, false faces, s)."""
    t0 = time.perf_counter()
    found = det.detect(canvas)
    seconds = time.perf_counter() - t0
    used, false = {}, 0
    for d in found:
        ious = [iou(d.box, b) for b in boxes]
        j = int(np.argmax(ious)) if ious else -1
        if j >= 0 and j not in used and ious[j] >= min_iou:
            used[j] = d
        else:
            false += 1
    return used, false, seconds


def size_bin(side: int, bins=SIZE_BINS) -> tuple[int, int]:
    return next(b for b in bins if side <= b[1])


class FourPass(BlazeFaceDetector):
    """BlazeFace without its close-up looks (pass 5), as ferkit ran it before them (the
    baseline of `--detectors blazeface-4pass`)."""

    name = "blazeface-4pass"

    def closeups(self, image):
        return []


class OnePass(FourPass):
    """BlazeFace as ferkit ran it before the close-up and large-photo passes: full range
    once at 192x192, cropped at the box (the baseline of `--detectors blazeface-1pass`; it
    keeps today's rule that a face filling half a small photo is kept under 40 px)."""

    name = "blazeface-1pass"

    def passes(self, image):
        return [self.full.run(image, FULL_THRESHOLD)]

    def detect(self, image):
        return [replace(d, frame=None) for d in super().detect(image)]


def detector(spec: str, min_face: int | None):
    """A detector by `make_detector`'s name; `blazeface-1pass` or `blazeface-4pass`, the
    baselines above; or
    `blazeface@FIELD=VALUE`, BlazeFace with one of its `BlazeFaceSettings` changed (e.g.
    `blazeface@short_threshold=0.65`)."""
    if spec in ("blazeface-1pass", "blazeface-4pass"):
        return (OnePass if spec == "blazeface-1pass" else FourPass)(min_face)
    name, _, setting = spec.partition("@")
    if name == "blazeface" and setting:
        field, _, value = setting.partition("=")
        settings = replace(BlazeFaceSettings(), **{field: float(value)})
        return BlazeFaceDetector(min_face, settings=settings)
    return make_detector(spec, min_face=min_face)


def evaluate(det, scenes, empties, bins):
    """Recall, false faces, times and the found faces of one detector on one photo size."""
    times, tp, fp, fp_empty = [], 0, 0, 0
    found_by_size = {b: [0, 0] for b in bins}  # (found, all) per true face size
    matched = []  # (detection, label, image)
    for canvas, truth in scenes:
        used, false, seconds = timed_matches(det, canvas, [t[0] for t in truth])
        times.append(seconds)
        fp += false
        matched += [(d, truth[j][1], canvas) for j, d in used.items()]
        tp += len(used)
        for j, t in enumerate(truth):
            counts = found_by_size[size_bin(t[0][2], bins)]
            counts[0] += j in used
            counts[1] += 1
    for canvas in empties:
        t0 = time.perf_counter()
        fp_empty += len(det.detect(canvas))
        times.append(time.perf_counter() - t0)
    return tp, fp, fp_empty, statistics.median(times), found_by_size, matched


def crop_accuracy(clf, matched, margins) -> None:
    """Accuracy on the found faces, cropped at each margin (and aligned, where the detector
    gives eyes), and by the detector's own frame where it places one."""
    size = clf.info.input_size
    y = np.array([m[1] for m in matched])
    for margin in margins:
        for align in (False, True):
            if align and not any(m[0].eyes for m in matched):
                continue
            crops = [
                crop_face(im, d.box, size, margin, eye_angle(d.eyes) if align and d.eyes else 0)
                for d, _, im in matched
            ]
            acc = float(np.mean(clf.classify(crops).argmax(1) == y))
            tag = ", aligned" if align else ""
            print(f"  margin {margin:.1f}{tag}: accuracy on found faces {100 * acc:.1f}%")
    if matched and all(d.frame is not None for d, _, _ in matched):
        crops = [crop_face(im, d.frame, size) for d, _, im in matched]
        acc = float(np.mean(clf.classify(crops).argmax(1) == y))
        print(f"  its keypoints' frame (the default): accuracy on found faces {100 * acc:.1f}%")


def empty_scores(empties) -> None:
    """The highest score each BlazeFace network gives anything on face-free photos: its
    cut-off must sit above it for 0 false faces."""
    low = {"large_threshold": 0.01, "full_threshold": 0.01, "short_threshold": 0.01}
    det = BlazeFaceDetector(settings=replace(BlazeFaceSettings(), **low))
    best = {"full range, larger looks": [], "full range, 192 px": [], "short range": []}
    for canvas in empties:
        runs = det.passes(canvas)  # larger looks, the 192 px look, then short range twice
        for name, part in zip(best, (runs[:-3], runs[-3:-2], runs[-2:]), strict=True):
            best[name].append(max((float(s.max()) for *_, s in part if len(s)), default=0.0))
    cuts = (LARGE_THRESHOLD, FULL_THRESHOLD, SHORT_THRESHOLD)  # the defaults
    for (name, scores), cut in zip(best.items(), cuts, strict=True):
        top = np.sort(scores)[::-1]
        print(f"{name}: best score on each face-free photo, highest {top[0]:.3f}, then "
              f"{top[1]:.3f}, {top[2]:.3f}; photos at or over its cut-off {cut}: "
              f"{int((top >= cut).sum())} of {len(top)}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared FER-2013 cache")
    ap.add_argument("--images", type=int, default=150, help="photos with faces, per size")
    ap.add_argument("--detectors", default="haar,dlib", help="also blazeface-1pass (before)")
    ap.add_argument("--sizes", default="640x480", help="photo sizes, e.g. 640x480,4000x3000")
    ap.add_argument("--faces", default="80-192", help="face sides LO-HI px, or all: 40 px "
                    "to the photo's short side")  # fmt: skip
    ap.add_argument("--margins", default="-0.1,0,0.1,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dlib-threshold", type=float, help="override dlib's SVM cut-off")
    ap.add_argument("--min-face", type=int, help="smallest face, px (default: each detector's)")
    ap.add_argument("--tilt", type=float, default=0.0, help="rotate pasted faces up to +-DEG")
    ap.add_argument("--empty-scores", action="store_true", help="print BlazeFace's best "
                    "scores on the face-free photos, per network (its cut-offs)")  # fmt: skip
    args = ap.parse_args()

    faces, labels = load_cache(args.data).split("PrivateTest")
    clf = Classifier(threads=1)
    margins = [float(m) for m in args.margins.split(",")]
    bins = ALL_BINS if args.faces == "all" else SIZE_BINS
    cv2.setNumThreads(1)
    dets = {}
    for spec in args.detectors.split(","):
        try:
            dets[spec] = detector(spec, args.min_face)
            if spec == "dlib" and args.dlib_threshold is not None:
                dets[spec].threshold = args.dlib_threshold
        except Exception as exc:
            print(f"{spec}: unavailable ({exc})")
    for photo_size in map(parse_size, args.sizes.split(",")):
        rng = np.random.default_rng(args.seed)
        bgs = backgrounds()
        scenes = [
            compose(
                rng, bgs, faces, labels, int(rng.integers(1, 4)), args.tilt, photo_size, args.faces
            )
            for _ in range(args.images)
        ]
        empties = [compose(rng, bgs, faces, labels, 0, size=photo_size)[0] for _ in scenes]
        n_true = sum(len(t) for _, t in scenes)
        truth_all = [t for _, ts in scenes for t in ts]
        base = clf.classify([t[2] for t in truth_all]).argmax(1)
        base_acc = float(np.mean(base == np.array([t[1] for t in truth_all])))
        print(
            f"\n{len(scenes)} {photo_size[0]}x{photo_size[1]} photos with {n_true} faces of "
            f"{faces_text(args.faces)} (tilted up "
            f"to {args.tilt:g} degrees), {len(empties)} face-free photos; classifier on the "
            f"original 48x48 crops of those faces: {100 * base_acc:.1f}%"
        )
        if args.empty_scores:
            empty_scores(empties)
        first_ms = None
        for spec, det in dets.items():
            tp, fp, fp_empty, seconds, by_size, matched = evaluate(det, scenes, empties, bins)
            first_ms = first_ms or 1000 * seconds
            print(
                f"{spec}: recall {100 * tp / n_true:.1f}%, precision "
                f"{100 * tp / max(1, tp + fp):.1f}%, false faces on face-free photos "
                f"{fp_empty}/{len(empties)}, {1000 * seconds:.1f} ms/photo "
                f"({1000 * seconds / first_ms:.2f}x the first)"
            )
            print("  recall by face side: " + ", ".join(
                f"{lo}-{hi} px {100 * f / n:.1f}% ({n})"
                for (lo, hi), (f, n) in by_size.items() if n
            ))  # fmt: skip
            crop_accuracy(clf, matched, margins)


if __name__ == "__main__":
    main()
