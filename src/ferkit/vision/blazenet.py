"""One pass of a MediaPipe BlazeFace network, run by ONNX Runtime: fit the photo into the
network's input, run it, decode its anchors into boxes, keypoints and scores in photo pixels.

ferkit ships two of MediaPipe's networks (`weights/NOTICE-blazeface.md` and
`scripts/build_blazeface.py` say where from and how they were converted):

- **full range** (`blazeface_full_range.onnx`): made for faces up to a few metres away;
  MediaPipe runs it at 192x192, one anchor per 4 px cell. ferkit's copy takes any input whose
  sides are multiples of 32 px, which searches a large photo for small faces in one pass.
- **short range** (`blazeface_short_range.onnx`): made for faces close to the camera, at
  128x128, with anchors every 8 px (2 a cell) and 16 px (6 a cell).

Each answers, per anchor, a score logit and 16 numbers: the box centre's offset from the
anchor and the box size, and six keypoints (right eye, left eye, nose tip, mouth centre,
right and left ear tragion), all in input pixels. Decoding follows MediaPipe's graphs: the
photo is letterboxed (scaled to fit, centred on black padding, so faces keep their shape),
scores go through a clipped sigmoid, offsets are added to the anchor centres, and points are
mapped back through the letterbox to the photo's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.modelfile.classifier import open_session
from ferkit.modelfile.shipped import shipped_model_path, verify_shipped

KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right and left ear tragion


@dataclass(frozen=True)
class Network:
    """A BlazeFace network: its file, its square input side (px) and its anchor layers,
    each (stride px, anchors per cell), in the order of its outputs."""

    file: str
    side: int
    layers: tuple[tuple[int, int], ...]


FULL_RANGE = Network("blazeface_full_range.onnx", 192, ((4, 1),))
SHORT_RANGE = Network("blazeface_short_range.onnx", 128, ((8, 2), (16, 6)))


def anchors(height: int, width: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Anchor centres [N, 2] as (x, y) in input pixels: for each layer, the centre of each
    `stride` px cell, row by row, repeated once per anchor of the cell (MediaPipe's fixed
    anchor size: only the centres matter)."""
    out = []
    for stride, per_cell in layers:
        xs = (np.arange(width // stride, dtype=np.float32) + 0.5) * stride
        ys = (np.arange(height // stride, dtype=np.float32) + 0.5) * stride
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        out.append(np.repeat(np.stack([gx.ravel(), gy.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(out)


@dataclass(frozen=True)
class Letterbox:
    """How a photo was fitted into the input: input px = photo px * scale + pad."""

    scale: float
    pad_x: float
    pad_y: float

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Points [..., 2] in input pixels to photo pixels."""
        return (points - np.array([self.pad_x, self.pad_y], np.float32)) / self.scale


def fitted(w: int, h: int, height: int, width: int, zoom_out: float = 1.0) -> tuple[int, int]:
    """The (width, height) a w x h photo takes in a height x width input: scaled to fit,
    then shrunk `zoom_out` times more."""
    scale = min(width / w, height / h) / zoom_out
    return max(1, round(w * scale)), max(1, round(h * scale))


def letterbox(
    image: np.ndarray, height: int, width: int, zoom_out: float = 1.0
) -> tuple[np.ndarray, Letterbox]:
    """A BGR or grayscale photo to a network input [1, 3, height, width] (RGB, -1..1), scaled
    to fit (and then shrunk `zoom_out` times more) and centred on black padding; returns the
    input and its `Letterbox`."""
    import cv2

    h, w = image.shape[:2]
    nw, nh = fitted(w, h, height, width, zoom_out)
    small = image  # already fitted (`blazeface.fit`): only pad
    if (nw, nh) != (w, h):
        interp = cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR
        small = cv2.resize(image, (nw, nh), interpolation=interp)
    code = cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB
    px, py = (width - nw) // 2, (height - nh) // 2
    canvas = np.zeros((height, width, 3), np.uint8)  # black padding: -1 after scaling
    canvas[py : py + nh, px : px + nw] = cv2.cvtColor(small, code)
    x = canvas.transpose(2, 0, 1)[None].astype(np.float32) * (1 / 127.5) - 1.0
    return x, Letterbox(nw / w, float(px), float(py))


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [N, 4] as x0, y0, x1, y1, keypoints [N, 6, 2], scores [N]), in input pixels,
    from the network's raw outputs [N, 16] and [N] (logits) and its anchor centres [N, 2]."""
    raw = raw_boxes.reshape(len(centres), 4 + 2 * KEYPOINTS)
    cx, cy = raw[:, 0] + centres[:, 0], raw[:, 1] + centres[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw[:, 4:].reshape(-1, KEYPOINTS, 2) + centres[:, None, :]
    logits = np.clip(raw_scores.reshape(-1), -100, 100)  # MediaPipe clips at 100
    return boxes, keypoints, 1 / (1 + np.exp(-logits))


class BlazeNet:
    """One shipped BlazeFace network in an ONNX Runtime session (verified against its
    recorded SHA-256); `run` is one pass over a photo."""

    def __init__(self, network: Network, threads: int = 1) -> None:
        path = shipped_model_path(network.file)
        if not path.is_file():
            raise FerkitError(f"{path}: the BlazeFace model is not in this ferkit installation")
        verify_shipped(path, network.file)
        self.network = network
        self.session = open_session(path, threads)  # 1: serve runs one detector per thread
        self.input = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.outputs = sorted(names, key=lambda n: "classif" in n)  # boxes, then scores
        self._anchors: dict[tuple[int, int], np.ndarray] = {}

    def run(
        self,
        image: np.ndarray,
        threshold: float,
        size: tuple[int, int] | None = None,
        zoom_out: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes [N, 4] (x0, y0, x1, y1) and keypoints [N, 6, 2] in the photo's pixels and
        scores [N], for the anchors scoring at least `threshold`. `size`: the input (height,
        width), multiples of 32, for a network that takes any (default: its square side)."""
        height, width = size or (self.network.side, self.network.side)
        x, lb = letterbox(image, height, width, zoom_out)
        raw_boxes, raw_scores = self.session.run(self.outputs, {self.input: x})
        if (height, width) not in self._anchors:
            self._anchors[height, width] = anchors(height, width, self.network.layers)
        keep = raw_scores[0, :, 0] >= np.log(threshold / (1 - threshold))  # sigmoid >= threshold
        boxes, keypoints, scores = decode(
            raw_boxes[0][keep], raw_scores[0][keep], self._anchors[height, width][keep]
        )
        return lb.to_photo(boxes.reshape(-1, 2, 2)).reshape(-1, 4), lb.to_photo(keypoints), scores
