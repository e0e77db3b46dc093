"""Draw recognised faces on an image: box, label and confidence, and a small bar chart of
the seven probabilities beside each face. Sizes scale with the image so labels stay
legible on a 320 px thumbnail and a 4000 px photo alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferkit.core.labels import COLOURS
from ferkit.vision.recognize import Face


def _colour(label: str) -> tuple[int, int, int]:
    return COLOURS.get(label, (255, 255, 255))


def _text(img, text, org, scale, thick, fg, bg) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    y = max(y, th + base + 2)
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y + 1), bg, cv2.FILLED)
    cv2.putText(img, text, (x + 2, y - base), font, scale, fg, thick, cv2.LINE_AA)


def draw_faces(
    image: np.ndarray, faces: Sequence[Face], bars: bool = True, inplace: bool = False
) -> np.ndarray:
    """A BGR copy of `image` with each face drawn; the input is not modified unless
    `inplace` (a BGR image the caller no longer needs: one copy fewer of a large photo)."""
    import cv2

    if image.ndim == 2:
        out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    else:
        out = image if inplace else image.copy()
    h, w = out.shape[:2]
    unit = max(h, w) / 640  # 1.0 at VGA
    thick = max(1, round(2 * unit))
    scale = 0.5 * unit
    for face in faces:
        x, y, bw, bh = face.box
        colour = _colour(face.label)
        cv2.rectangle(out, (x, y), (x + bw, y + bh), colour, thick, cv2.LINE_AA)
        _text(out, f"{face.label} {100 * face.confidence:.0f}%", (x, y - 2), scale, thick,
              (0, 0, 0), colour)  # fmt: skip
        if bars:
            _bars(out, face, scale, unit)
    return out


def _bars(img: np.ndarray, face: Face, scale: float, unit: float) -> None:
    """Seven horizontal bars to the right of the face (or left, at the image edge)."""
    import cv2

    x, y, bw, _ = face.box
    font = cv2.FONT_HERSHEY_SIMPLEX
    row = max(8, round(13 * unit))
    name_w = cv2.getTextSize("surprise", font, 0.8 * scale, 1)[0][0]
    bar_w = max(30, round(60 * unit))
    panel_w = name_w + bar_w + 8
    panel_h = row * len(face.probs) + 4
    h, w = img.shape[:2]
    px = x + bw + 4 if x + bw + 4 + panel_w <= w else max(0, x - panel_w - 4)
    py = min(max(0, y), max(0, h - panel_h))
    if panel_w > w or panel_h > h:
        return  # too small an image for a legible chart
    region = img[py : py + panel_h, px : px + panel_w]
    region[:] = (region * 0.35).astype(np.uint8)  # darken so text reads on any background
    for i, (label, p) in enumerate(face.probs.items()):
        ty = py + 2 + (i + 1) * row - 3
        cv2.putText(img, label, (px + 2, ty), font, 0.8 * scale, (255, 255, 255), 1, cv2.LINE_AA)
        x0 = px + name_w + 6
        cv2.rectangle(
            img, (x0, ty - row + 5), (x0 + round(bar_w * p), ty), _colour(label), cv2.FILLED
        )
