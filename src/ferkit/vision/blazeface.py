"""ferkit's default face detector: MediaPipe's two BlazeFace networks, for every face size
from a small face in a group photo to one that fills the frame.

One network cannot do it. Full range (`blazenet.FULL_RANGE`) at its 192x192 input finds faces
up to about a third of the photo and misses larger ones: 81% of the close-up portraits in
`benchmarks/wild.py` had no face. Short range (`blazenet.SHORT_RANGE`) is made for close
faces. A 192 px look at a 1920x1080 photo makes a 90 px face 9 px, too small to find. So a
photo gets up to four passes, merged by one weighted NMS, and close-up looks when they find
nothing:

1. full range at 192x192 over the photo, as MediaPipe runs it;
2. full range at larger inputs when the photo is large: the first sized so that a
   `min_face` face spans `FACE_PX` input pixels (sides multiples of 32, the long side at most
   `MAX_INPUT`), each next one `PYRAMID_STEP` times smaller while it is still `MIN_GAIN`
   times pass 1's: whole-photo passes, with none of the repeated work of overlapping tiles;
3. short range at 128x128 over the photo;
4. short range over the photo zoomed out `ZOOM_OUT` times, for faces that fill the frame or
   overflow it (tight crops: their chin or brow is cut);
5. only when 1-4 find no face: the close-up looks, full and short range over the photo
   zoomed out further, for a photo that is one face cut tighter than the face (film stills,
   FER-2013-like crops), kept where the two networks agree (`CLOSEUP_ZOOM`). They run last
   because they cost two more passes and, on a photo with a face already found, would only
   add the risk of false faces.

Weighted NMS (MediaPipe's): take the best box, merge every box overlapping it by more than
`overlap` IoU into the score-weighted mean of their boxes and keypoints, keeping the best
score; repeat. It steadies boxes between video frames and joins one face seen by two passes.

Each face also gets a `frame`: the square that crops it as FER-2013 crops faces, placed by
its eyes and mouth rather than by the box, so a turned head keeps its mouth and chin
(`frame`'s docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ferkit.vision.blazenet import FULL_RANGE, SHORT_RANGE, BlazeNet, fitted
from ferkit.vision.detection import DEFAULT_MIN_FACE, Detection, box_iou

# px: BlazeFace costs the same at any face size (unlike the scanning detectors); FER-2013
# crops are 48 px, so smaller faces would be classified from upscaled pixels
BLAZEFACE_MIN_FACE = 40
# Input px that a `min_face` face spans in pass 2's first look. On 150 photos of 1920x1080
# with faces 40 px to the short side (benchmarks/heads.py and detectors.py --faces all
# --sizes 1920x1080 --detectors blazeface@face_px=24,blazeface@face_px=28,blazeface): whole
# heads found 78.5% / 83.8% / 86.1% for 24 / 28 / 32, FER-2013 faces 39.4 / 43.8 / 45.1%,
# false faces on face-free photos 11 for each and for one pass alone; 47 / 48 / 67 ms a photo
FACE_PX = 32
MAX_INPUT = 1280  # px, the long side of pass 2's input: 3x3 tiles' worth, ~100 ms on one core
# Pass 2 runs only when it sees the photo at least this much larger than pass 1 does. At
# 640x480 its 256x192 look finds more of the 80-192 px FER-2013 faces (45.6% against 30.4%)
# but doubles the detection time (17.5 against 8.5 ms; benchmarks/detectors.py --images 150
# --detectors blazeface,blazeface@min_gain=1), past the 1.5x a photo may cost; a smaller
# --min-face asks for it
MIN_GAIN = 1.5
# Pass 2's looks shrink by this factor, one full-range pass each: full range finds faces
# over about a 3x range of sizes, so a 12 MP photo needs a middle look between its search
# scale and the 192 px one. Without it (heads.py --images 150 --faces all --sizes 4000x3000
# --detectors blazeface,blazeface@pyramid_step=99) heads of 320-639 px were found 74.4% of
# the time against 89.7%, all heads 86.1% against 89.3%, for 195 against 220 ms a photo
PYRAMID_STEP = 3
ZOOM_OUT = 1.5  # pass 4: a face overflowing the frame by up to a quarter on each side fits
FULL_THRESHOLD = 0.5  # MediaPipe's own cut-off, for both of its networks
# Pass 2's looks: MediaPipe's too. 0.65 would drop their false faces on 12 MP face-free
# photos (the benchmark's backgrounds enlarged 6x: 26 of 150 photos at 0.5) but lose 9
# points of recall on heads at 1920x1080 (docs/benchmarks.md, faces at every size)
LARGE_THRESHOLD = 0.5
# Short range scores textures and dim noise higher than full range does. Its best score on
# any face-free photo: 0.648 on 300 of 640x480, 0.628 on 300 of 350x350 (full range: 0.459,
# 0.508; benchmarks/detectors.py --empty-scores --sizes 640x480,350x350). In dim light it
# made false faces at 0.66-0.68: 9 in 300 photos at a cut-off of 0.65, 1 at 0.7, 0 at 0.75
# (heads.py --dim --detectors blazeface@short_threshold=0.65,blazeface,
# blazeface@short_threshold=0.75), where recall fell by 0.9 and 1.6 points. 0.7: over every
# face-free score seen, with room
SHORT_THRESHOLD = 0.7
# The close-up looks (pass 5): full range on the photo zoomed out `CLOSEUP_ZOOM[0]` times
# (a face cut tighter than the face then spans a third of its input, the size it finds
# best) and short range zoomed out `CLOSEUP_ZOOM[1]` times. A face is kept where both see it
# (boxes overlapping by `CLOSEUP_IOU`, each scoring `CLOSEUP_THRESHOLD`, each at least
# `CLOSEUP_SHARE` of the photo's short side: a close-up's face is no smaller), or where short
# range alone scores its `SHORT_THRESHOLD`. Chosen off wild-dev, on FER-2013 PublicTest
# crops as whole photos and 1,500 face-free patches of every scikit-image and scikit-learn
# sample photo (python benchmarks/closeups.py --scores): of the 187 of 1,200 crops passes
# 1-4 miss, either network alone at a cut-off with no false face finds 5% (full range, 0.7)
# or 23% (short range, 0.7); full range at 0.6 finds 25% but fires on 3 face-free patches.
# The two agreeing at 0.5 find 39% with no false face, and 45% with short range alone at
# 0.7; agreeing at 0.45 found 48%, but a false face in another draw (--seed 1)
CLOSEUP_ZOOM = (3.0, 2.5)
CLOSEUP_THRESHOLD = 0.5
CLOSEUP_IOU = 0.5
CLOSEUP_SHARE = 0.5
# How far down FER-2013's crops BlazeFace puts the eye midpoint and the mouth, in fractions
# of the crop side (medians over PublicTest: python benchmarks/framing.py); both sit within
# 0.01 of the crop's vertical midline (730 of 1,000 crops found)
FRAME_EYES = 0.393
FRAME_MOUTH = 0.747
# Keep each frame inside the photo (`frame`'s `inside`): past the photo's edge a crop
# repeats the edge, streaks no FER-2013 crop has. On 1,200 PublicTest crops as whole photos
# with their outer 0 / 15 / 30% cut away (python benchmarks/closeups.py --framing), the
# default model read the faces found 72.0 / 71.5 / 66.9% right at the frame (balanced
# 0.669 / 0.648 / 0.609) and 72.4 / 71.8 / 63.8% kept inside (0.685 / 0.676 / 0.573): kept
# inside wins where a photo cuts off up to 15% of FER-2013's framing, as film stills do,
# and loses where only brow to mouth is left
FRAME_INSIDE = True


def weighted_nms(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    overlap: float = 0.3,
    weighted: bool = True,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression (the module docstring), best first.
    `weighted=False` is plain NMS (the best box of each cluster), which
    benchmarks/box_jitter.py compares."""
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


@dataclass(frozen=True)
class BlazeFaceSettings:
    """What the passes use; the defaults are the measured values above. The benchmarks try
    others with `--detectors blazeface@FIELD=VALUE` (benchmarks/detectors.py)."""

    face_px: float = FACE_PX
    pyramid_step: float = PYRAMID_STEP
    min_gain: float = MIN_GAIN
    large_threshold: float = LARGE_THRESHOLD
    full_threshold: float = FULL_THRESHOLD
    short_threshold: float = SHORT_THRESHOLD
    closeup_threshold: float = CLOSEUP_THRESHOLD
    frame_inside: bool = FRAME_INSIDE


def search_sizes(
    width: int,
    height: int,
    min_face: int,
    face_px: float = FACE_PX,
    step: float = PYRAMID_STEP,
    min_gain: float = MIN_GAIN,
) -> list[tuple[int, int]]:
    """Pass 2's inputs (height, width), largest first: the photo scaled so a `min_face` face
    spans `face_px` px (the long side at most `MAX_INPUT`), then `step` times smaller each,
    down to `min_gain` times the 192x192 pass's look; sides rounded up to multiples of 32.
    Empty for a photo whose 192 px look already shows such a face that large."""
    long = max(width, height)
    scale = min(face_px / min_face, MAX_INPUT / long)
    sizes = []
    while long * scale >= min_gain * FULL_RANGE.side:
        sizes.append((32 * math.ceil(height * scale / 32), 32 * math.ceil(width * scale / 32)))
        scale /= step
    return sizes


# a look that found nothing: (boxes [0, 4], keypoints [0, 6, 2], scores [0])
NO_FACES = (np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32))


def min_side(boxes: np.ndarray) -> np.ndarray:
    """Each (x0, y0, x1, y1) box's shorter side."""
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def agreed(boxes: np.ndarray, others: np.ndarray, overlap: float = CLOSEUP_IOU) -> np.ndarray:
    """Which of `boxes` [N, 4] overlap any of `others` [M, 4] by at least `overlap` IoU."""
    return np.array([bool((box_iou(b, others) >= overlap).any()) for b in boxes], bool)


def to_photo(
    seen: np.ndarray, run: tuple[np.ndarray, np.ndarray, np.ndarray], w: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pass's (boxes, keypoints, scores) from the pixels of the image it saw (`seen`, the
    photo shrunk) to those of the w x h photo."""
    boxes, kps, scores = run
    scale = np.array([seen.shape[1] / w, seen.shape[0] / h], np.float32)
    return boxes / np.tile(scale, 2), kps / scale, scores


def merge(
    runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], overlap: float, weighted: bool
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Passes' faces merged by one weighted NMS (`weighted_nms`); none without passes."""
    if not runs:
        return []
    boxes, kps, scores = (np.concatenate(p) for p in zip(*runs, strict=True))
    return weighted_nms(boxes, kps, scores, overlap, weighted)


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The image shrunk (INTER_AREA) to fit a height x width input, as `letterbox` would fit
    it, so that the letterbox then only pads; unchanged when it already fits. Halving first
    while it is over twice too large: INTER_AREA by exactly 2 is fast, by other factors slow
    (640x480 to 192x144: 0.41 ms against 1.0, grey levels 0.9 apart on average)."""
    import cv2

    h, w = image.shape[:2]
    size = fitted(w, h, height, width)
    if size[0] >= w:
        return image
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        half = (image.shape[1] // 2, image.shape[0] // 2)
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
    if image.shape[1::-1] == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def frame(
    keypoints: np.ndarray, box: np.ndarray, inside: tuple[int, int] | None = None
) -> tuple[int, int, int, int]:
    """The square (x, y, side, side) that frames a face as FER-2013's crops do, from its eye
    midpoint and mouth: the eye-to-mouth distance sets the side (it shrinks little as a head
    turns, where the box narrows to the visible half and its crop loses the mouth and chin),
    and the centre lies on the line from the eyes through the mouth, where FER-2013's crops
    put it (`FRAME_EYES`, `FRAME_MOUTH`). When the keypoints disagree with the box (a side
    under half or over twice the box's), the box's own square is used. `inside` (width,
    height): the square is moved into a photo of that size, and shrunk to its short side if
    larger, so a face cut tighter than the face is not cropped with made-up border pixels
    (`FRAME_INSIDE`)."""
    eyes, mouth = keypoints[:2].mean(0), keypoints[3]
    down = mouth - eyes
    length = float(np.hypot(*down))
    side = length / (FRAME_MOUTH - FRAME_EYES)
    box_side = float(max(box[2] - box[0], box[3] - box[1]))
    if 0.5 * box_side <= side <= 2 * box_side:
        cx, cy = eyes + down / length * (0.5 - FRAME_EYES) * side
    else:
        cx, cy, side = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box_side
    x0, y0 = float(cx) - side / 2, float(cy) - side / 2
    if inside is not None:
        w, h = inside
        side = min(side, w, h)
        x0 = min(max(float(cx) - side / 2, 0.0), w - side)
        y0 = min(max(float(cy) - side / 2, 0.0), h - side)
    s = round(side)
    return round(x0), round(y0), s, s


class BlazeFaceDetector:
    """BlazeFace full and short range (the module docstring): faces from `min_face` px to the
    whole photo, frontal to semi-profile, with eye positions and a FER-2013 framing. The score
    is the network's probability, 0..1."""

    name = "blazeface"
    # Its eye keypoints are coarse for levelling: on whole heads tilted up to 25 degrees
    # (benchmarks/heads.py --tilt 25) the eye line is 2.7-4.7 degrees off (median) on
    # frontal faces and 5.8 on the semi-profile one (dlib: 0.3-0.6), and on FER-2013 crops
    # aligning by the one-pass detector's cost 1.4 points upright and 2.5 tilted
    # (docs/benchmarks.md, face detectors)
    align = False
    margin = 0.0  # unused: every face has a `frame`, and a --margin given crops at the box

    def __init__(
        self,
        min_face: int | None = None,
        overlap: float = 0.3,
        threads: int = 1,
        settings: BlazeFaceSettings = BlazeFaceSettings(),
    ) -> None:
        self.full, self.short = BlazeNet(FULL_RANGE, threads), BlazeNet(SHORT_RANGE, threads)
        # None: search for 80 px faces, keep every face from 40 px...; a number: search for
        # faces that size and keep none smaller
        self.search_face = DEFAULT_MIN_FACE if min_face is None else min_face
        self.min_face = BLAZEFACE_MIN_FACE if min_face is None else min_face
        # ...except a face filling half the photo's short side: in a small photo it is the
        # subject (a 60x60 crop of one face), not a passer-by
        self.subject = 0.5 if min_face is None else 1.0
        self.settings = settings
        self.overlap = overlap
        self.weighted = True  # MediaPipe's weighted NMS; False: plain (benchmarks/box_jitter.py)

    def passes(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each pass's (boxes, keypoints, scores) in photo pixels, before the merge. Each
        smaller look is shrunk from the one before, so a large photo is shrunk once."""
        h, w = image.shape[:2]
        cfg = self.settings
        full, short = cfg.full_threshold, cfg.short_threshold
        looks = []  # (the image a pass saw, its run)
        source = image
        looked = search_sizes(w, h, self.search_face, cfg.face_px, cfg.pyramid_step, cfg.min_gain)
        for size in looked:
            source = fit(source, *size)
            looks.append((source, self.full.run(source, cfg.large_threshold, size)))
        small = fit(source, FULL_RANGE.side, FULL_RANGE.side)
        looks += [
            (small, self.full.run(small, full)),
            (small, self.short.run(small, short)),
            (small, self.short.run(small, short, zoom_out=ZOOM_OUT)),
        ]
        return [to_photo(seen, run, w, h) for seen, run in looks]

    def closeups(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The close-up looks' (boxes, keypoints, scores) in photo pixels (pass 5,
        `CLOSEUP_ZOOM`): faces both networks see, and those short range alone is sure of.
        Short range looks first: with no large face of its own, full range has nothing to
        agree with, and its costlier look is skipped (a face-free photo pays for one look)."""
        h, w = image.shape[:2]
        small = fit(image, FULL_RANGE.side, FULL_RANGE.side)
        cfg = self.settings
        cut = min(cfg.closeup_threshold, cfg.short_threshold)
        least = CLOSEUP_SHARE * min(small.shape[:2])  # px, the smallest face that agrees
        short = self.short.run(small, cut, zoom_out=CLOSEUP_ZOOM[1])
        short_ok = (short[2] >= cfg.closeup_threshold) & (min_side(short[0]) >= least)
        full = self.full.run(small, cut, zoom_out=CLOSEUP_ZOOM[0]) if short_ok.any() else NO_FACES
        full_ok = (full[2] >= cfg.closeup_threshold) & (min_side(full[0]) >= least)
        keep_full = full_ok & agreed(full[0], short[0][short_ok])
        sure = short[2] >= cfg.short_threshold
        keep_short = (short_ok & agreed(short[0], full[0][full_ok])) | sure
        return [
            to_photo(small, (boxes[k], kps[k], scores[k]), w, h)
            for (boxes, kps, scores), k in ((full, keep_full), (short, keep_short))
        ]

    def merged(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Passes 1-4's faces merged by one weighted NMS: (box as x0, y0, x1, y1, the six
        keypoints [6, 2], score), photo pixels, best first, before any size cut."""
        return merge(self.passes(image), self.overlap, self.weighted)

    def detect(self, image: np.ndarray) -> list[Detection]:
        found = self.kept(self.merged(image), image)
        if not found:  # pass 5: perhaps one face cut tighter than the face
            found = self.kept(merge(self.closeups(image), self.overlap, self.weighted), image)
        return found

    def kept(
        self, faces: list[tuple[np.ndarray, np.ndarray, float]], image: np.ndarray
    ) -> list[Detection]:
        """The merged faces inside the photo that are large enough, as `Detection`s."""
        h, w = image.shape[:2]
        found = []
        for box, kps, score in faces:
            x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
            x1, y1 = min(float(w), float(box[2])), min(float(h), float(box[3]))
            if min(x1 - x0, y1 - y0) < min(self.min_face, self.subject * min(h, w)):
                continue
            eyes = sorted(map(tuple, kps[:2].tolist()))  # image-left eye first
            found.append(
                Detection(
                    (round(x0), round(y0), round(x1 - x0), round(y1 - y0)),
                    score,
                    (tuple(eyes[0]), tuple(eyes[1])),
                    frame(kps, box, (w, h) if self.settings.frame_inside else None),
                )
            )
        return found
