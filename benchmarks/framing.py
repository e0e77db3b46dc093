"""Where BlazeFace puts its keypoints on FER-2013's crops: the framing ferkit's crops copy.

Each crop (48x48) is enlarged to 192 px and padded by its own border to three times that, so
BlazeFace sees a whole face the size it finds best; the keypoints of the face found over the
crop are expressed in fractions of the crop's side. The medians of the eye midpoint and the
mouth are `FRAME_EYES` and `FRAME_MOUTH` in `ferkit/vision/blazeface.py`, which place the
crop of every face BlazeFace finds (`blazeface.frame`).

    python benchmarks/framing.py --data data/fer2013 [--split PublicTest] [--faces 1000]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from ferkit.data import load_cache
from ferkit.vision.blazeface import BlazeFaceDetector
from ferkit.vision.detection import box_iou

NAMES = ("right eye", "left eye", "nose tip", "mouth", "right ear", "left ear")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared FER-2013 cache")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--faces", type=int, default=1000)
    args = ap.parse_args()

    faces, _ = load_cache(args.data).split(args.split)
    pick = np.linspace(0, len(faces) - 1, min(args.faces, len(faces))).astype(int)
    det = BlazeFaceDetector()
    side, found = 192, []
    crop_box = np.array([side, side, 2 * side, 2 * side], np.float32)
    for i in pick:
        big = cv2.resize(faces[i], (side, side), interpolation=cv2.INTER_CUBIC)
        photo = cv2.copyMakeBorder(big, side, side, side, side, cv2.BORDER_REPLICATE)
        hits = [k for b, k, _ in det.merged(photo) if box_iou(b, crop_box[None])[0] > 0.3]
        if hits:
            found.append((hits[0] - side) / side)
    kp = np.array(found)
    eyes, mouth = kp[:, :2].mean(1), kp[:, 3]
    print(f"{args.split}: {len(kp)} of {len(pick)} crops found; keypoints as (x, y) fractions of")
    print("the crop side, median [25th-75th percentile]:")
    rows = [*zip(NAMES, kp.transpose(1, 0, 2), strict=True), ("eye midpoint", eyes)]
    for name, pts in rows:
        med, lo, hi = (np.percentile(pts, q, axis=0) for q in (50, 25, 75))
        print(f"  {name:>12}: ({med[0]:.3f}, {med[1]:.3f})  "
              f"[{lo[0]:.2f}-{hi[0]:.2f}, {lo[1]:.2f}-{hi[1]:.2f}]")  # fmt: skip
    print(f"FRAME_EYES = {np.median(eyes[:, 1]):.3f}, FRAME_MOUTH = {np.median(mouth[:, 1]):.3f}")


if __name__ == "__main__":
    main()
