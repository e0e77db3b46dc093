"""MediaPipe's BlazeFace full-range face detector, run by ONNX Runtime (no extra package).

The network (`weights/blazeface_full_range.onnx`, Apache-2.0, converted from MediaPipe's
TFLite file; `weights/NOTICE-blazeface.md` and `scripts/build_blazeface.py` say how) looks at
one 192x192 RGB image in -1..1 and answers, for each of 2,304 anchors (one per cell of a
48x48 grid, stride 4 px), a score logit and 16 numbers: the box centre offset and size, and
six keypoints (two eyes, nose tip, mouth, two ear tragions), all in input pixels.

Decoding follows MediaPipe's own graph for this model: the photo is letterboxed (scaled to
fit, padded to a square, so faces keep their shape), scores go through a sigmoid, offsets
are added to the anchor centres, overlapping boxes are merged by weighted NMS (the
score-weighted mean of a cluster, which steadies boxes between video frames), and boxes
and keypoints are mapped back through the letterbox to the photo's pixels.

Small faces: one pass sees the photo at 192 px, so a 640x480 photo's 80 px face is 24 px
there, and such faces are often missed. When `min_face` is given, the photo is also covered
by half-overlapping square tiles, sized so that a `min_face` face spans `TILE_FACE` px of the
input, and doubling in size up to the photo's own; each tile is one more pass, and all passes
are merged by one weighted NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.modelfile.classifier import open_session
from ferkit.modelfile.shipped import shipped_model_path, verify_shipped
from ferkit.vision.detection import Detection

MODEL_FILE = "blazeface_full_range.onnx"
INPUT_SIZE = 192  # px, the network's square input
STRIDE = 4  # px per grid cell: a 48x48 grid, one anchor per cell
KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right and left ear tragion
# px: BlazeFace costs the same at any face size (unlike the scanning detectors' 80); FER-2013
# crops are 48 px, so smaller faces would be classified from upscaled pixels
BLAZEFACE_MIN_FACE = 40
# px of the input that a `min_face` face spans in a tile. On benchmarks/detectors.py with
# --min-face 40 (150 photos): 16 gives 43.9% recall, 24 gives 53.0% (7 passes for 640x480,
# no false face), 32 gives 59.8% (19 passes, 5 false faces on 150 face-free photos)
TILE_FACE = 24


def anchors(size: int = INPUT_SIZE, stride: int = STRIDE) -> np.ndarray:
    """Anchor centres [N, 2] as (x, y) in 0..1 of the input, row by row: cell centres,
    (col + 0.5) / cells. MediaPipe's full-range config: one layer, fixed anchor size 1."""
    cells = size // stride
    grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


@dataclass(frozen=True)
class Letterbox:
    """How a photo was fitted into the square input: input px = photo px * scale + pad."""

    scale: float
    pad_x: float
    pad_y: float

    def to_photo(self, points: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
        """Points [..., 2] in 0..1 of the input to photo pixels."""
        pad = np.array([self.pad_x, self.pad_y], np.float32)
        return (points * size - pad) / self.scale


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """A BGR or grayscale photo to the network's input [1, 3, size, size] (RGB, -1..1),
    scaled to fit and centred on black padding; returns the input and its `Letterbox`."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    rgb = (
        cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
        if small.ndim == 2
        else cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    )
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.uint8)  # black padding: -1 after scaling
    canvas[py : py + nh, px : px + nw] = rgb
    x = canvas.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
    return x, Letterbox(nw / w, float(px), float(py))


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, centres: np.ndarray, size: int = INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [N, 4] as x0, y0, x1, y1, keypoints [N, 6, 2], scores [N]), coordinates in
    0..1 of the input, from the network's raw outputs [N, 16] and [N] (logits)."""
    raw = raw_boxes.reshape(len(centres), 4 + 2 * KEYPOINTS) / size
    cx, cy = raw[:, 0] + centres[:, 0], raw[:, 1] + centres[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw[:, 4:].reshape(-1, KEYPOINTS, 2) + centres[:, None, :]
    scores = 1 / (1 + np.exp(-np.clip(raw_scores.reshape(-1), -100, 100)))  # MediaPipe clips
    return boxes, keypoints, scores


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each of `others` [M, 4]."""
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    overlap: float = 0.3,
    weighted: bool = True,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: take the best box, merge every box that
    overlaps it by more than `overlap` IoU into the score-weighted mean of their boxes and
    keypoints (keeping the best score), drop them, repeat. Best first. `weighted=False` is
    plain NMS (the best box of each cluster), which benchmarks/box_jitter.py compares."""
    order = np.argsort(-scores, kind="stable")
    kept = []
    while len(order):
        merge = box_iou(boxes[order[0]], boxes[order]) > overlap
        merge[0] = True  # the best box itself, even when degenerate (zero area)
        cluster, order = order[merge], order[~merge]
        if not weighted:
            cluster = cluster[:1]
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kps = (keypoints[cluster] * w[:, :, None]).sum(0) / w.sum()
        kept.append((box, kps, float(scores[cluster[0]])))
    return kept


def tiles(width: int, height: int, min_face: int) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) that cover faces down to `min_face` px which one pass over
    the whole photo would miss: square tiles of side `min_face * 192 / TILE_FACE`,
    doubling while smaller than the photo's long side; at each side they overlap by at least
    half, so every face up to half a tile lies wholly inside one tile."""
    # never under the input's own 192 px: smaller tiles would only be enlarged
    side = max(INPUT_SIZE, math.ceil(min_face * INPUT_SIZE / TILE_FACE))
    out = []
    while side < max(width, height):
        xs, ys = _starts(width, side), _starts(height, side)
        out += [(x, y, min(x + side, width), min(y + side, height)) for y in ys for x in xs]
        side *= 2
    return out


def _starts(length: int, side: int) -> list[int]:
    """Evenly spaced window starts along one axis, steps of at most half a window."""
    if length <= side:
        return [0]
    n = math.ceil((length - side) / (side // 2)) + 1
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


class BlazeFaceDetector:
    """BlazeFace full range: faces from a few metres away up to close-ups, frontal to
    semi-profile; gives eye positions. The score is the network's probability, 0..1."""

    name = "blazeface"
    # Its eye keypoints are coarse for levelling: on whole heads tilted up to 25 degrees
    # (benchmarks/heads.py --tilt 25) the eye line is 1.9-2.3 degrees off (median) on
    # frontal faces and 12.2 on the semi-profile one (dlib: 0.3-0.5), and on FER-2013 crops
    # aligning by them costs 1.4 points upright and 2.5 tilted (benchmarks/detectors.py).
    align = False
    # On found faces (benchmarks/detectors.py, 600 photos): 73.1% at -0.1, 75.8% at 0.0,
    # 75.4% at 0.1, 74.7% at 0.2; its boxes already frame the face as FER-2013 does
    margin = 0.0

    def __init__(
        self,
        min_face: int | None = None,
        threshold: float = 0.5,
        overlap: float = 0.3,
        threads: int = 1,
    ) -> None:
        path = shipped_model_path(MODEL_FILE)
        if not path.is_file():
            raise FerkitError(f"{path}: the BlazeFace model is not in this ferkit installation")
        verify_shipped(path, MODEL_FILE)
        self.session = open_session(path, threads)  # 1: serve runs one detector per thread
        self.input = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.outputs = sorted(names, key=lambda n: "classifier" in n)  # boxes, then scores
        self.centres = anchors()
        # None: one pass, faces under 40 px dropped; a number asks for every face that size
        self.tiled = min_face is not None
        self.min_face = BLAZEFACE_MIN_FACE if min_face is None else min_face
        self.threshold, self.overlap = threshold, overlap
        self.weighted = True  # MediaPipe's weighted NMS; False: plain (benchmarks/box_jitter.py)

    def _run(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes [N, 4], keypoints [N, 6, 2] in the window's pixels and scores [N], the
        anchors that pass the cut-off."""
        x, lb = letterbox(window)
        raw_boxes, raw_scores = self.session.run(self.outputs, {self.input: x})
        boxes, keypoints, scores = decode(raw_boxes[0], raw_scores[0], self.centres)
        keep = scores >= self.threshold
        boxes = lb.to_photo(boxes[keep].reshape(-1, 2, 2)).reshape(-1, 4)
        return boxes, lb.to_photo(keypoints[keep]), scores[keep]

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        runs = [self._run(image)]
        for x0, y0, x1, y1 in tiles(w, h, self.min_face) if self.tiled else []:
            boxes, kps, scores = self._run(image[y0:y1, x0:x1])
            # a face cut by a tile's inner edge lies wholly inside a neighbour: drop it here
            edge = 0.02 * (x1 - x0)
            inner = np.array([x0 > 0, y0 > 0, x1 < w, y1 < h])
            bounds = np.array([edge, edge, x1 - x0 - edge, y1 - y0 - edge])
            cut = inner & np.concatenate([boxes[:, :2] < bounds[:2], boxes[:, 2:] > bounds[2:]], 1)
            keep = ~cut.any(1)
            shift = np.array([x0, y0], np.float32)
            runs.append((boxes[keep] + np.tile(shift, 2), kps[keep] + shift, scores[keep]))
        boxes, keypoints, scores = (np.concatenate(parts) for parts in zip(*runs, strict=True))
        found = []
        merged = weighted_nms(boxes, keypoints, scores, self.overlap, self.weighted)
        for box, kps, score in merged:
            x0, y0, x1, y1 = box
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
            if min(x1 - x0, y1 - y0) < self.min_face:
                continue
            eyes = sorted(map(tuple, kps[:2].tolist()))  # image-left eye first
            found.append(
                Detection(
                    (round(x0), round(y0), round(x1 - x0), round(y1 - y0)),
                    score,
                    (tuple(eyes[0]), tuple(eyes[1])),
                )
            )
        return found
