"""Compare the face detectors on real faces in real photos, and choose the crop margin.

The test set: FER-2013 PrivateTest faces (real photos of people, 48x48) enlarged to 80-192
px and pasted, with feathered edges, into 640x480 crops of face-free photos that
scikit-image and scikit-learn ship (coffee, cat, rocket, horse, brick, China, flower...).
Ground-truth boxes are known, so we get recall, false positives (precision) and time per
640x480 image; then each found face is re-cropped at several margins (and aligned, where
the detector gives eyes) and classified, which measures what the whole pipeline loses
against the original crops.

    python benchmarks/detectors.py --data data/fer2013 [--images 150] [--detectors dlib,blazeface]

Needs scikit-image and scikit-learn for the backgrounds (`pip install scikit-image
scikit-learn`), dlib + face_recognition_models for `dlib`. It is the source of the detector
table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from ferkit.data import load_cache
from ferkit.modelfile.classifier import Classifier
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


def compose(rng, bgs, faces, labels, n_faces, tilt=0.0):
    """A 640x480 canvas with `n_faces` non-overlapping pasted faces; returns the canvas and
    [(box, label, original_crop)]."""
    bg = bgs[rng.integers(len(bgs))]
    y0, x0 = rng.integers(bg.shape[0] - 479), rng.integers(bg.shape[1] - 639)
    canvas = bg[y0 : y0 + 480, x0 : x0 + 640].astype(np.float32).copy()
    truth = []
    for _ in range(50):
        if len(truth) == n_faces:
            break
        s = int(rng.integers(80, 193))  # px; 80 is the default --min-face
        x, y = int(rng.integers(0, 640 - s)), int(rng.integers(0, 480 - s))
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


SIZE_BINS = ((80, 111), (112, 143), (144, 192))  # px, the pasted faces' sides


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


def size_bin(side: int) -> tuple[int, int]:
    return next(b for b in SIZE_BINS if side <= b[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared FER-2013 cache")
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--detectors", default="haar,dlib")
    ap.add_argument("--margins", default="-0.1,0,0.1,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dlib-threshold", type=float, help="override dlib's SVM cut-off")
    ap.add_argument("--blazeface-threshold", type=float, help="override BlazeFace's cut-off")
    ap.add_argument("--blazeface-tile-face", type=float, help="override blazeface.TILE_FACE, px")
    ap.add_argument("--min-face", type=int, help="smallest face, px (default: each detector's)")
    ap.add_argument("--tilt", type=float, default=0.0, help="rotate pasted faces up to +-DEG")
    args = ap.parse_args()

    faces, labels = load_cache(args.data).split("PrivateTest")
    rng = np.random.default_rng(args.seed)
    bgs = backgrounds()
    scenes = [
        compose(rng, bgs, faces, labels, int(rng.integers(1, 4)), args.tilt)
        for _ in range(args.images)
    ]
    empties = [compose(rng, bgs, faces, labels, 0)[0] for _ in range(args.images)]
    n_true = sum(len(t) for _, t in scenes)
    clf = Classifier(threads=1)
    margins = [float(m) for m in args.margins.split(",")]
    size = clf.info.input_size

    truth_all = [t for _, ts in scenes for t in ts]
    base = clf.classify([t[2] for t in truth_all]).argmax(1)
    base_acc = float(np.mean(base == np.array([t[1] for t in truth_all])))
    print(
        f"{len(scenes)} photos with {n_true} faces (tilted up to {args.tilt:g} degrees), "
        f"{len(empties)} face-free photos, 640x480"
    )
    print(f"classifier on the original 48x48 crops of those faces: {100 * base_acc:.1f}%\n")

    cv2.setNumThreads(1)
    if args.blazeface_tile_face:
        import ferkit.vision.blazeface as bf

        bf.TILE_FACE = args.blazeface_tile_face
    for spec in args.detectors.split(","):
        try:
            det = make_detector(spec, min_face=args.min_face)
            cut_off = {"dlib": args.dlib_threshold, "blazeface": args.blazeface_threshold}
            if cut_off.get(spec) is not None:
                det.threshold = cut_off[spec]
        except Exception as exc:
            print(f"{spec}: unavailable ({exc})")
            continue
        times, tp, fp, fp_empty = [], 0, 0, 0
        found_by_size = {b: [0, 0] for b in SIZE_BINS}  # (found, all) per true face size
        matched = []  # (detection, label, image)
        for canvas, truth in scenes:
            used, false, seconds = timed_matches(det, canvas, [t[0] for t in truth])
            times.append(seconds)
            fp += false
            matched += [(d, truth[j][1], canvas) for j, d in used.items()]
            tp += len(used)
            for j, t in enumerate(truth):
                counts = found_by_size[size_bin(t[0][2])]
                counts[0] += j in used
                counts[1] += 1
        for canvas in empties:
            t0 = time.perf_counter()
            fp_empty += len(det.detect(canvas))
            times.append(time.perf_counter() - t0)
        ms = 1000 * statistics.median(times)
        print(
            f"{spec}: recall {100 * tp / n_true:.1f}%, precision {100 * tp / max(1, tp + fp):.1f}%,"
            f" false faces on face-free photos {fp_empty}/{len(empties)}, {ms:.1f} ms/photo"
        )
        print(
            "  recall by face size: "
            + ", ".join(
                f"{lo}-{hi} px {100 * f / max(1, n):.1f}%"
                for (lo, hi), (f, n) in found_by_size.items()
            )
        )
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


if __name__ == "__main__":
    main()
