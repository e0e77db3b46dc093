"""Face detectors on whole heads: real portraits, pasted at many sizes, turns and lights.

benchmarks/detectors.py pastes FER-2013 crops: 48x48 grayscale faces cut tight, with no hair,
ears or head outline, enlarged. That is a fair test of how a detector treats faces framed as
FER-2013 frames them, but not of a person in a photo. Here the pasted thing is a whole head
(hair, ears, neck) cut from one of three freely licensed portraits that ship with ferkit's
own dependencies: a frontal smile (`examples/astronaut.jpg`), a man turned into semi-profile
behind a camera (`examples/cameraman.png`) and a frontal portrait in uniform (matplotlib's
`grace_hopper.jpg`). Each paste is resized so its face is 60-192 px, mirrored half of the
time, optionally rotated (`--tilt`) and dimmed (`--dim`: the scene's light times 0.3, gamma
1.5, and sensor noise), into 640x480 crops of the same face-free photos as detectors.py.
The face's box in each portrait was drawn by hand; a detection within IoU 0.3 of it counts.
It prints the share of found heads whose crop (what `EmotionRecognizer` classifies) holds
the mouth and the chin, both marked by hand, which a crop above the smile loses (a mouth or
chin off the photo counts as held by a crop that reaches the photo's edge next to it). For
detectors that give the eyes it also prints how far the eye line they report is from
the true one (the portrait's own, as the detector sees it upright, turned by the paste),
which is what alignment rotates by.

Three people are few: read it as "how each detector copes with heads, poses and light",
per portrait, beside detectors.py's 3,589 faces, not as a face-detection benchmark.

    python benchmarks/heads.py [--images 300] [--detectors haar,dlib,blazeface] [--tilt 25] [--dim]
    python benchmarks/heads.py --faces all --sizes 640x480,1920x1080,4000x3000 \
        --detectors blazeface-1pass,blazeface,haar

`--faces all` sizes faces from 40 px up to the photo's whole short side (a fifth of them fill
it; the head around such a face runs off the photo, as in a close-up portrait).

Needs scikit-image and scikit-learn (backgrounds), as detectors.py does.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import cv2
import numpy as np
from detectors import (
    ALL_BINS,
    backgrounds,
    detector,
    face_sides,
    faces_text,
    parse_size,
    size_bin,
    timed_matches,
)

from ferkit.vision.recognize import eye_angle

ROOT = Path(__file__).resolve().parents[1]
# name: (head region x0, y0, x1, y1; face box x, y, w, h), photo pixels, drawn by hand
PORTRAITS = {
    "astronaut": ((110, 20, 340, 280), (176, 76, 96, 96)),
    "cameraman": ((140, 50, 300, 240), (203, 124, 66, 68)),
    "grace_hopper": ((90, 30, 440, 440), (160, 128, 212, 212)),
}
# name: the mouth's centre and the bottom of the chin, photo pixels, marked by hand: a crop
# that holds both keeps the smile and the jaw (FER-2013's crops end below the chin)
MOUTH_CHIN = {
    "astronaut": ((225, 145), (225, 179)),
    "cameraman": ((237, 178), (232, 196)),
    "grace_hopper": ((270, 280), (270, 327)),
}
SIZE_BINS = ((60, 79), (80, 111), (112, 143), (144, 192))  # px, the pasted faces' sides


def portraits() -> dict[str, tuple[np.ndarray, tuple[int, ...], np.ndarray]]:
    """Each portrait's head cut out, its face box and its mouth and chin [2, 2], in the
    cut's pixels."""
    import matplotlib.cbook

    photos = {
        "astronaut": cv2.imread(str(ROOT / "examples" / "astronaut.jpg")),
        "cameraman": cv2.imread(str(ROOT / "examples" / "cameraman.png")),
        "grace_hopper": cv2.imread(
            str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        ),
    }
    out = {}
    for name, ((x0, y0, x1, y1), (fx, fy, fw, fh)) in PORTRAITS.items():
        points = np.array(MOUTH_CHIN[name], np.float32) - (x0, y0)
        out[name] = (photos[name][y0:y1, x0:x1], (fx - x0, fy - y0, fw, fh), points)
    return out


def paste(rng, canvas, head, face, points, placed, tilt, sides="60-192"):
    """Paste one head (resized, maybe mirrored and rotated) where its face overlaps no face
    in `placed`; the head may run off the photo's edges, its face may not. Returns its face
    box in canvas pixels, whether it was mirrored, the rotation in degrees (counter-
    clockwise) and its mouth and chin in canvas pixels, or None when it did not fit."""
    height, width = canvas.shape[:2]
    side = face_sides(rng, sides, min(width, height))
    s = side / face[2]
    img = cv2.resize(
        head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    )
    fx, fy, fw, fh = (v * s for v in face)
    points = points * s
    h, w = img.shape[:2]
    mirrored, angle = bool(rng.random() < 0.5), float(rng.uniform(-tilt, tilt))
    if mirrored:  # the cameraman turns the other way
        img, fx = img[:, ::-1].copy(), w - fx - fw
        points[:, 0] = w - points[:, 0]
    if tilt:  # in-plane rotation about the face's centre; the box keeps its size
        m = cv2.getRotationMatrix2D((fx + fw / 2, fy + fh / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        points = points @ m[:, :2].T + m[:, 2]
    if fw > width or fh > height:
        return None
    # the face's top-left corner in the canvas, so that the face lies inside it
    bx = int(rng.integers(0, int(width - fw) + 1))
    by = int(rng.integers(0, int(height - fh) + 1))
    box = (bx, by, fw, fh)
    if any(
        bx < px + pw and px < bx + fw and by < py + ph and py < by + fh for px, py, pw, ph in placed
    ):
        return None
    x, y = round(bx - fx), round(by - fy)  # the head's corner, maybe off the canvas
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    ramp = lambda n: np.minimum(1, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.06 * n))  # noqa: E731
    alpha = np.minimum.outer(ramp(h), ramp(w))[:, :, None]  # feathered edge, 6% of the side
    part = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    region = canvas[y0:y1, x0:x1]
    canvas[y0:y1, x0:x1] = alpha[part] * img[part] + (1 - alpha[part]) * region
    placed.append(box)
    return box, mirrored, angle if tilt else 0.0, points + np.array([x, y], np.float32)


def scene(rng, bgs, heads, tilt, dim, size=(640, 480), sides="60-192"):
    width, height = size
    bg = bgs[rng.integers(len(bgs))]
    s = max(width / bg.shape[1], height / bg.shape[0])
    if s > 1:  # the backgrounds are about 640x480: enlarge them for larger photos
        bg = cv2.resize(bg, (round(bg.shape[1] * s) + 1, round(bg.shape[0] * s) + 1))
    y0, x0 = rng.integers(bg.shape[0] - height + 1), rng.integers(bg.shape[1] - width + 1)
    canvas = bg[y0 : y0 + height, x0 : x0 + width].astype(np.float32)
    truth, placed, names = [], [], list(heads)
    for _ in range(int(rng.integers(1, 4))):
        for _ in range(20):
            name = names[rng.integers(len(names))]
            pasted = paste(rng, canvas, *heads[name], placed, tilt, sides)
            if pasted is not None:
                truth.append((pasted[0], name, *pasted[1:]))
                break
    if dim:  # a dim room: less light, darker mid-tones, and the sensor's noise shows
        canvas = 255 * (0.3 * canvas / 255) ** 1.5 + rng.normal(0, 3, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8), truth


def crop_square(d, margin: float) -> tuple[float, float, float]:
    """(x, y, side) of the square `EmotionRecognizer` crops for a detection: its frame, or
    its box grown by the detector's margin."""
    if d.frame is not None:
        return d.frame[:3]
    x, y, w, h = d.box
    side = max(w, h) * (1 + margin)
    return x + w / 2 - side / 2, y + h / 2 - side / 2, side


def holds(square: tuple[float, float, float], points: np.ndarray) -> bool:
    x, y, side = square
    return bool(np.all((points >= (x, y)) & (points <= (x + side, y + side))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300, help="photos per size")
    ap.add_argument("--detectors", default="haar,dlib,blazeface", help="also blazeface-1pass")
    ap.add_argument("--sizes", default="640x480", help="photo sizes, e.g. 640x480,4000x3000")
    ap.add_argument("--faces", default="60-192", help="face sides LO-HI px, or all: 40 px "
                    "to the photo's short side")  # fmt: skip
    ap.add_argument("--min-face", type=int, help="smallest face, px (default: each detector's)")
    ap.add_argument("--tilt", type=float, default=0.0, help="rotate heads up to +-DEG")
    ap.add_argument("--dim", action="store_true", help="dim light: 0.3x, gamma 1.5, noise")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    bins = ALL_BINS if args.faces == "all" else SIZE_BINS
    cv2.setNumThreads(1)
    bgs, heads = backgrounds(), portraits()
    dets = {}
    for spec in args.detectors.split(","):
        try:
            dets[spec] = detector(spec, args.min_face)
        except Exception as exc:
            print(f"{spec}: unavailable ({exc})")
    for width, height in map(parse_size, args.sizes.split(",")):
        rng = np.random.default_rng(args.seed)
        scenes = [
            scene(rng, bgs, heads, args.tilt, args.dim, (width, height), args.faces)
            for _ in range(args.images)
        ]
        n_true = sum(len(t) for _, t in scenes)
        print(
            f"\n{len(scenes)} {width}x{height} photos with {n_true} heads of 3 people (faces "
            f"{faces_text(args.faces)}, tilted up "
            f"to {args.tilt:g} degrees{', dim light' if args.dim else ''}), one core"
        )
        for spec, det in dets.items():
            evaluate(spec, det, heads, scenes, bins)


def evaluate(spec, det, heads, scenes, bins) -> None:
    """Print one detector's recall (per person and face size), false faces, time and eye
    line error on `scenes`."""
    times, fp, kept, eye_errors = [], 0, 0, {n: [] for n in PORTRAITS}
    hits = {k: [0, 0] for k in [*PORTRAITS, *bins]}  # (found, all)
    upright = {}  # each portrait's own eye line as this detector sees it, degrees
    for name, (head, *_) in heads.items():
        found = [d for d in det.detect(head) if d.eyes]
        upright[name] = eye_angle(found[0].eyes) if found else None
    for canvas, truth in scenes:
        used, false, seconds = timed_matches(det, canvas, [t[0] for t in truth])
        times.append(seconds)
        fp += false
        for j, d in used.items():
            _, name, mirrored, angle, points = truth[j]
            # a point off the photo is held by a crop reaching the photo's edge next to it
            inside = np.clip(points, 0, (canvas.shape[1] - 1, canvas.shape[0] - 1))
            kept += holds(crop_square(d, det.margin), inside)
            if d.eyes and upright[name] is not None:  # a mirror flips the eye line
                true = (-1 if mirrored else 1) * upright[name] - angle
                eye_errors[name].append(abs(eye_angle(d.eyes) - true))
        for j, (box, name, *_) in enumerate(truth):
            for key in (name, size_bin(round(box[2]), bins)):
                hits[key][0] += j in used
                hits[key][1] += 1
    tp = sum(hits[n][0] for n in PORTRAITS)
    n_true = sum(hits[n][1] for n in PORTRAITS)
    ms = 1000 * statistics.median(times)
    print(f"{spec}: recall {100 * tp / n_true:.1f}%, {fp} false faces, {ms:.1f} ms/photo")
    rows = [(n, *hits[n]) for n in PORTRAITS] + [
        (f"{lo}-{hi} px", *hits[(lo, hi)]) for lo, hi in bins
    ]
    print("  " + ", ".join(f"{k} {100 * f / n:.1f}% ({n})" for k, f, n in rows if n))
    print(f"  crops holding the mouth and the chin: {100 * kept / max(1, tp):.1f}% of {tp}")
    errs = {n: np.percentile(e, [50, 90]) for n, e in eye_errors.items() if e}
    if errs:
        print(
            "  eye line off the true one, median / 90th percentile: "
            + ", ".join(f"{n} {a:.1f} / {b:.1f} deg" for n, (a, b) in errs.items())
        )


if __name__ == "__main__":
    main()
