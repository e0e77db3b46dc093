"""Faces followed across the frames of a video or a live stream.

Faces are matched to tracks by box overlap (greedy IoU matching), and each track's
probabilities are smoothed with an exponential moving average so labels do not flicker.
`ferkit video` and the server's `/v1/stream` both use it: one tracker per video or per
connection, so one stream's faces never continue another's tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ferkit.core.labels import LABELS
from ferkit.vision.detection import iou
from ferkit.vision.recognize import Face


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray  # smoothed, LABELS order
    missed: int = 0


@dataclass
class Tracker:
    """Greedy IoU tracker with per-track EMA smoothing of the probabilities."""

    # the defaults of `ferkit video`, `/v1/stream` and the Ray engine's videos
    smoothing: float = 0.5  # EMA weight of the newest frame (1 = no smoothing)
    iou_match: float = 0.3  # a face continues a track if their boxes overlap this much
    max_missed: int = 10  # frames a track survives without a matching face
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 0

    def update(self, faces: list[Face]) -> list[tuple[int, Face]]:
        """(track id, face with smoothed probs and label) for each face of this frame."""
        pairs = sorted(
            ((iou(t.box, f.box), ti, fi) for ti, t in enumerate(self.tracks) for fi, f in
             enumerate(faces)),
            reverse=True,
        )  # fmt: skip
        assigned: dict[int, int] = {}  # face index -> track index
        used: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < self.iou_match:
                break
            if ti not in used and fi not in assigned:
                assigned[fi] = ti
                used.add(ti)
        out = []
        for fi, face in enumerate(faces):
            p = np.array([face.probs[k] for k in LABELS])
            if fi in assigned:
                track = self.tracks[assigned[fi]]
                track.probs = self.smoothing * p + (1 - self.smoothing) * track.probs
                track.box, track.missed = face.box, 0
            else:
                track = Track(self.next_id, face.box, p)
                self.tracks.append(track)
                self.next_id += 1
                used.add(len(self.tracks) - 1)
            top = int(np.argmax(track.probs))
            smoothed = dict(zip(LABELS, map(float, track.probs), strict=True))
            out.append(
                (track.id, replace(face, probs=smoothed, label=LABELS[top],
                                   confidence=float(track.probs[top])))
            )  # fmt: skip
        for ti, track in enumerate(self.tracks):
            if ti not in used:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out
