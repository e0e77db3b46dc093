"""Photos that are one face cut tighter than the face: film stills, FER-2013-like crops, the
close-ups users bring. Chooses BlazeFace's close-up looks (`blazeface.CLOSEUP_ZOOM`) off
wild-dev, which only measures them.

Face photos: FER-2013 PublicTest crops (the split models are chosen on) as whole photos,
enlarged to 48, 100 or 350 px, upright and tilted 15-35 degrees either way (a head rolled in
a film still). Face-free photos: patches of every photo scikit-image and scikit-learn ship,
except the two with faces (astronaut, camera): patches of 48 px to the whole photo, square,
4:3 or 16:9, resized to 48-1920 px, half of them dimmed. Printed per
detector: the share of face photos with a face found, the face-free photos with any face,
and the time per face photo.

    python benchmarks/closeups.py [--images 600] [--detectors blazeface-4pass,blazeface]
    python benchmarks/closeups.py --scores

    python benchmarks/closeups.py --framing [--detectors blazeface@frame_inside=0,blazeface]

`blazeface-4pass` is the detector without its close-up looks (pass 5). `--scores` prints
what set them: for rules that keep a face from one look alone or from both agreeing, at
several cut-offs, the face-free photos (of those passes 1-4 leave empty) given a face, and
the share of the face photos passes 1-4 miss that are found.
`--framing` classifies the faces found on PublicTest crops with their outer 0, 15 and 30%
cut away (cut tighter than FER-2013 cuts), each cropped at its frame, and the same photos
taken whole (`--no-detect`'s crop) and as the original 48x48 crops: accuracy and balanced
accuracy on the found faces (the default model), which set `blazeface.FRAME_INSIDE`.
Needs scikit-image and scikit-learn (`pip install scikit-image scikit-learn`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from detectors import detector

from ferkit.data import load_cache
from ferkit.modelfile.classifier import Classifier
from ferkit.vision.blazeface import (
    CLOSEUP_SHARE,
    CLOSEUP_THRESHOLD,
    CLOSEUP_ZOOM,
    FULL_RANGE,
    SHORT_THRESHOLD,
    BlazeFaceDetector,
    agreed,
    fit,
    min_side,
)
from ferkit.vision.recognize import crop_face

WITH_FACES = {"astronaut.png", "camera.png"}


def sample_photos() -> list[np.ndarray]:
    """Every face-free sample photo of scikit-image and scikit-learn, BGR, at least 64 px."""
    import skimage
    from sklearn.datasets import load_sample_images

    folder = Path(skimage.__file__).parent / "data"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))
    photos = [cv2.imread(str(p)) for p in files if p.name not in WITH_FACES]
    photos += [np.ascontiguousarray(im[:, :, ::-1]) for im in load_sample_images().images]
    return [p for p in photos if p is not None and min(p.shape[:2]) >= 64]


def face_free(rng, photos: list[np.ndarray], n: int) -> list[np.ndarray]:
    """`n` face-free photos: patches of `photos` (aspect 1:1, 4:3 or 16:9, either way up, 48
    px to the whole photo) resized to a long side of 48-1920 px, a quarter of them at half
    and a quarter at a quarter of their brightness."""
    out = []
    for _ in range(n):
        photo = photos[rng.integers(len(photos))]
        h, w = photo.shape[:2]
        aspect = float(rng.choice([1.0, 4 / 3, 16 / 9]))
        aspect = aspect if rng.random() < 0.5 else 1 / aspect  # width / height
        ph = int(rng.integers(48, min(h, w / aspect) + 1))  # the patch's height, px
        pw = round(ph * aspect)
        y, x = rng.integers(h - ph + 1), rng.integers(w - pw + 1)
        long = int(rng.choice([48, 64, 100, 160, 350, 480, 1080, 1920]))
        scale = long / max(ph, pw)
        size = (max(1, round(pw * scale)), max(1, round(ph * scale)))
        patch = cv2.resize(photo[y : y + ph, x : x + pw], size, interpolation=cv2.INTER_AREA)
        out.append((patch * rng.choice([1.0, 1.0, 0.5, 0.25])).astype(np.uint8))
    return out


def face_photos(rng, faces: np.ndarray, n: int, tilted: bool) -> list[np.ndarray]:
    out = []
    for i in rng.choice(len(faces), n, replace=False):
        side = int(rng.choice([48, 100, 350]))
        photo = cv2.resize(faces[i], (side, side), interpolation=cv2.INTER_CUBIC)
        if tilted:
            angle = float(rng.choice([-1, 1]) * rng.uniform(15, 35))
            m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
            photo = cv2.warpAffine(photo, m, (side, side), borderMode=cv2.BORDER_REPLICATE)
        out.append(cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR))
    return out


def looks(det: BlazeFaceDetector, photo: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """The two close-up looks' (boxes, scores) at any score over 0.3, with their boxes'
    shorter sides as shares of the photo's."""
    small = fit(photo, FULL_RANGE.side, FULL_RANGE.side)
    out = []
    for net, zoom in zip((det.full, det.short), CLOSEUP_ZOOM, strict=True):
        boxes, _, scores = net.run(small, 0.3, zoom_out=zoom)
        out.append((boxes, scores, min_side(boxes) / min(small.shape[:2])))
    return out


def rule(kind: str, cut: float, alone: float = 1.01):
    """Whether a photo's close-up looks give a face: one network alone (`full`: boxes of at
    least `CLOSEUP_SHARE` of the photo; `short`: any) at `cut`, or `both` agreeing at `cut`
    (as the detector keeps them), or short range alone at `alone`."""

    def fires(runs) -> bool:
        (fb, fs, ff), (sb, ss, sf) = runs
        if kind == "full":
            return bool(((fs >= cut) & (ff >= CLOSEUP_SHARE)).any())
        if kind == "short":
            return bool((ss >= cut).any())
        full_ok, short_ok = (fs >= cut) & (ff >= CLOSEUP_SHARE), (ss >= cut) & (sf >= CLOSEUP_SHARE)
        both = (full_ok & agreed(fb, sb[short_ok])).any()
        return bool(both or (ss >= alone).any())

    return fires


def print_scores(empties: list[np.ndarray], photos: list[np.ndarray]) -> None:
    det = BlazeFaceDetector()
    empty = [looks(det, p) for p in empties if not det.kept(det.merged(p), p)]
    missed = [looks(det, p) for p in photos if not det.kept(det.merged(p), p)]
    print(f"passes 1-4 leave {len(empty)} of {len(empties)} face-free photos empty and miss "
          f"{len(missed)} of {len(photos)} face photos; the close-up looks, by the rule "
          f"that keeps a face:")  # fmt: skip
    rules = {f"full range alone at {c}": rule("full", c) for c in (0.5, 0.6, 0.7)}
    rules |= {f"short range alone at {c}": rule("short", c) for c in (0.5, 0.6, 0.7)}
    rules |= {f"both agreeing at {c}": rule("both", c) for c in (0.4, 0.45, 0.5)}
    rules["both agreeing at 0.5, or short range alone at 0.7 (the default)"] = rule(
        "both", CLOSEUP_THRESHOLD, SHORT_THRESHOLD
    )
    for name, fires in rules.items():
        false = sum(map(fires, empty))
        found = np.mean([fires(r) for r in missed])
        print(f"  {name}: face-free photos with a face {false}, missed faces found "
              f"{100 * found:.0f}%")  # fmt: skip


def scores_text(clf: Classifier, crops: list[np.ndarray], y: np.ndarray) -> str:
    """Accuracy and balanced accuracy (the mean of the per-class recalls) of `crops`."""
    pred = clf.classify(crops).argmax(1)
    balanced = np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)])
    return f"{100 * np.mean(pred == y):.1f}% ({balanced:.3f})"


def print_framing(specs: list[str], faces: np.ndarray, labels: np.ndarray, rng, n: int) -> None:
    clf = Classifier(threads=1)
    size = clf.info.input_size
    picked = rng.choice(len(faces), n, replace=False)
    for visible in (1.0, 0.85, 0.7):
        photos = []
        for i in picked:
            side = faces[i].shape[0]
            cut = (side - round(side * visible)) // 2
            inner = faces[i][cut : side - cut, cut : side - cut]
            photo = cv2.resize(inner, (200, 200), interpolation=cv2.INTER_CUBIC)
            photos.append(cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR))
        for spec in specs:
            det = detector(spec, None)
            found = [(j, max(fs, key=lambda d: d.box[2])) for j, p in enumerate(photos)
                     if (fs := det.detect(p))]  # fmt: skip
            y = labels[picked[[j for j, _ in found]]]
            at_frame = [crop_face(photos[j], d.frame, size) for j, d in found]
            whole = [crop_face(photos[j], (0, 0, 200, 200), size) for j, _ in found]
            original = [cv2.resize(faces[picked[j]], size[::-1], interpolation=cv2.INTER_AREA)
                        for j, _ in found]  # fmt: skip
            print(f"outer {100 * (1 - visible):.0f}% cut, {spec}: found {len(found)}/{n}; at "
                  f"its frame {scores_text(clf, at_frame, y)}, whole photo "
                  f"{scores_text(clf, whole, y)}, original crop "
                  f"{scores_text(clf, original, y)}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared FER-2013 cache")
    ap.add_argument("--images", type=int, default=600, help="face photos, upright and tilted each")
    ap.add_argument("--empty", type=int, default=1500, help="face-free photos")
    ap.add_argument("--detectors", default="blazeface-4pass,blazeface")
    ap.add_argument("--scores", action="store_true", help="the close-up looks' cut-offs")
    ap.add_argument("--framing", action="store_true", help="accuracy by where faces are cut")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cv2.setNumThreads(1)
    faces, labels = load_cache(args.data).split("PublicTest")
    rng = np.random.default_rng(args.seed)
    if args.framing:
        print_framing(args.detectors.split(","), faces, labels, rng, 2 * args.images)
        return
    empties = face_free(rng, sample_photos(), args.empty)
    upright = face_photos(rng, faces, args.images, tilted=False)
    tilted = face_photos(rng, faces, args.images, tilted=True)
    print(f"{len(upright)} PublicTest crops as whole photos, upright and tilted each; "
          f"{len(empties)} face-free photos")  # fmt: skip
    if args.scores:
        print_scores(empties, upright + tilted)
        return
    first = None
    for spec in args.detectors.split(","):
        det = detector(spec, None)
        t0 = time.perf_counter()
        found = [np.mean([bool(det.detect(p)) for p in ps]) for ps in (upright, tilted)]
        ms = 1000 * (time.perf_counter() - t0) / (2 * args.images)
        first = first or ms
        false = sum(bool(det.detect(p)) for p in empties)
        print(f"{spec}: found upright {100 * found[0]:.1f}%, tilted {100 * found[1]:.1f}%; "
              f"face-free photos with a face {false}/{len(empties)}; {ms:.1f} ms a face "
              f"photo ({ms / first:.2f}x the first)")  # fmt: skip


if __name__ == "__main__":
    main()
