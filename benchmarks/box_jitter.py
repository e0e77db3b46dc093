"""Does weighted NMS steady BlazeFace's boxes between video frames? Measured against plain NMS.

A synthetic clip: the astronaut's head (a real photo, bundled in examples/) glides across a
640x480 photo from scikit-learn along a known path, with fresh sensor noise in every frame.
Its true box is known in every frame, so what is left after removing the detector's constant
offset is jitter: the frame-to-frame wobble that `ferkit video` would draw and that the
tracker's smoothing has to absorb.

    python benchmarks/box_jitter.py [--frames 150] [--noise 4] [--scale 0.6]

Prints, for each NMS, the share of frames with the face found and the standard deviation
of the box centre and side around the true path, px; and their ratio, plain over weighted.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

import ferkit.vision.blazeface as bf

ROOT = Path(__file__).resolve().parents[1]


def clip(frames: int, noise: float, scale: float, seed: int):
    """Yield (frame, (x, y) of the pasted head's top-left corner, scale) for each frame."""
    from sklearn.datasets import load_sample_images

    china = np.ascontiguousarray(load_sample_images().images[0][:, :, ::-1])  # 427x640
    bg = cv2.resize(china, (640, 480)).astype(np.float32)
    photo = cv2.imread(str(ROOT / "examples" / "astronaut.jpg"))
    rng = np.random.default_rng(seed)
    for t in range(frames):
        s = scale * (1 + 0.2 * math.sin(t / 25))  # the head comes closer and goes back
        head = cv2.resize(photo[40:260, 130:320], None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        h, w = head.shape[:2]
        x = 40 + (640 - w - 80) * t / max(1, frames - 1)  # left to right
        y = 120 + 60 * math.sin(t / 15)
        frame = bg.copy()
        xi, yi = round(x), round(y)
        frame[yi : yi + h, xi : xi + w] = head
        frame += rng.normal(0, noise, frame.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8), (xi, yi), s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--noise", type=float, default=4.0, help="sensor noise, grey levels (std)")
    ap.add_argument("--scale", type=float, default=0.6, help="head size against the photo's")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    frames = list(clip(args.frames, args.noise, args.scale, args.seed))
    ref = bf.BlazeFaceDetector().detect(cv2.imread(str(ROOT / "examples" / "astronaut.jpg")))
    rx, ry, rw, _ = ref[0].box  # the box on the full photo, mapped onto each pasted head
    results = {}
    for name, weighted in (("weighted NMS", True), ("plain NMS", False)):
        det = bf.BlazeFaceDetector()
        det.weighted = weighted
        errors = []
        for frame, (x, y), s in frames:
            found = det.detect(frame)
            if not found:
                continue
            bx, by, bw, bh = max(found, key=lambda d: d.score).box
            truth = (x + (rx - 130 + rw / 2) * s, y + (ry - 40 + rw / 2) * s, rw * s)
            errors.append((bx + bw / 2 - truth[0], by + bh / 2 - truth[1], bw - truth[2]))
        e = np.array(errors) - np.mean(errors, axis=0)  # the constant offset is not jitter
        centre = float(np.sqrt((e[:, :2] ** 2).sum(1).mean()))
        results[name] = (len(errors) / len(frames), centre, float(e[:, 2].std()))
    print(
        f"{args.frames} frames, head {args.scale:g}x +-20% (face ~{rw * args.scale:.0f} px), "
        f"noise {args.noise:g}"
    )
    for name, (found, centre, side) in results.items():
        print(
            f"  {name:<13} found {100 * found:5.1f}%, centre jitter {centre:.2f} px, "
            f"side jitter {side:.2f} px"
        )
    (_, cw, sw), (_, cp, sp) = results.values()
    print(f"  plain / weighted: centre {cp / cw:.2f}x, side {sp / sw:.2f}x")


if __name__ == "__main__":
    main()
