"""FER-2013-C: the test splits under what real photos and video do to a face, after ImageNet-C.

Nine corruptions, each at severities 1..3 (0 is the identity), applied to uint8 face crops
[N, H, W] as `ferkit data prepare` stores them:

- dim: less light and a darker gamma, as an underexposed frame;
- low_contrast: pixel values pulled towards the image mean (haze, flat stage light);
- low_resolution: shrunk to 32, 24 or 16 px and enlarged back, as a small face is;
- blur: Gaussian, out of focus or in motion;
- noise: Gaussian sensor noise;
- jpeg: JPEG at quality 30, 15 and 8;
- turn: a head turned about its vertical axis, a homography that narrows the face and
  enlarges one side while the other recedes (the side is random per image);
- occlusion: a hand (a light, shaded ellipse) or a microphone (a dark head on a handle)
  over the mouth or chin;
- crop_jitter: the detector's box shifted and scaled as real detectors err. The crop has no
  context around it, so the uncovered border repeats the edge pixels.

Everything random is drawn from `numpy.random.default_rng((seed, corruption, severity))`,
so one condition is the same whatever else is generated, and in any order.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

SEVERITIES = (1, 2, 3)

# One row per corruption: its parameter at severities 0 (identity), 1, 2, 3.
DIM = ((1.0, 1.0), (0.7, 1.3), (0.5, 1.6), (0.35, 2.0))  # (gain, gamma)
CONTRAST = (1.0, 0.6, 0.4, 0.25)  # factor about the image mean
RESOLUTION = (0, 32, 24, 16)  # side shrunk to, px (0: untouched)
BLUR = (0.0, 1.0, 1.5, 2.5)  # Gaussian sigma, px of a 48 px crop
NOISE = (0.0, 6.0, 12.0, 20.0)  # std, pixel levels
JPEG = (0, 30, 15, 8)  # quality (0: untouched)
TURN = ((0.0, 0.0), (0.15, 0.2), (0.25, 0.35), (0.35, 0.5))  # (width lost, perspective k)
OCCLUSION = (0.0, 0.15, 0.22, 0.3)  # occluder radius, fraction of the side
JITTER = (0.0, 0.08, 0.16, 0.24)  # box shift (fraction of the side) and scale error


def _float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def _uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def dim(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    gain, gamma = DIM[severity]
    return _uint8(255 * gain * (_float(x) / 255) ** gamma)


def low_contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    f = _float(x)
    mean = f.mean(axis=(1, 2), keepdims=True)
    return _uint8(mean + (f - mean) * CONTRAST[severity])


def low_resolution(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    side = RESOLUTION[severity]
    if not side:
        return x.copy()
    h, w = x.shape[1:]
    small = [cv2.resize(im, (side * w // h, side), interpolation=cv2.INTER_AREA) for im in x]
    return np.stack([cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR) for s in small])


def blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma = BLUR[severity]
    if not sigma:
        return x.copy()
    return np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in x])


def noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    return _uint8(_float(x) + rng.normal(0, NOISE[severity], x.shape))


def jpeg(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    quality = JPEG[severity]
    if not quality:
        return x.copy()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    return np.stack(
        [cv2.imdecode(cv2.imencode(".jpg", im, params)[1], cv2.IMREAD_GRAYSCALE) for im in x]
    )


def _turn_maps(h: int, w: int, squeeze: float, k: float) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps of the turn homography: input x = u / (1 + k u), y = v / (1 + k u) in
    [-1, 1] coordinates, u = output x / (1 - squeeze)."""
    v, u = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    u = u / (1 - squeeze)
    d = 1 + k * u
    map_x = ((u / d + 1) * (w - 1) / 2).astype(np.float32)
    map_y = ((v / d + 1) * (h - 1) / 2).astype(np.float32)
    return map_x, map_y


def turn(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    squeeze, k = TURN[severity]
    if not k:
        return x.copy()
    h, w = x.shape[1:]
    maps = {s: _turn_maps(h, w, squeeze, s * k) for s in (-1, 1)}
    sides = rng.choice((-1, 1), len(x))
    return np.stack(
        [
            cv2.remap(im, *maps[s], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for im, s in zip(x, sides, strict=True)
        ]
    )


def occlusion(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius = OCCLUSION[severity]
    out = x.copy()
    if not radius:
        return out
    h, w = x.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for im in out:
        cy, cx = rng.uniform(0.72, 0.9) * h, rng.uniform(0.35, 0.65) * w
        if rng.random() < 0.5:  # a hand: light, wider than high, shaded top to bottom
            ry, rx = radius * h, 1.4 * radius * w
            inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
            level = rng.uniform(110, 210) + 25 * (ys - cy) / ry
        else:  # a microphone: a dark round head with a handle down to the bottom edge
            r = radius * h
            head = (ys - cy) ** 2 + (xs - cx) ** 2 <= r**2
            handle = (ys >= cy) & (np.abs(xs - cx) <= 0.35 * r)
            inside = head | handle
            level = np.full_like(ys, rng.uniform(15, 60))
        im[inside] = np.clip(level[inside], 0, 255).astype(np.uint8)
    return out


def crop_jitter(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    err = JITTER[severity]
    if not err:
        return x.copy()
    h, w = x.shape[1:]
    out = np.empty_like(x)
    for i, im in enumerate(x):
        angle = rng.uniform(0, 2 * np.pi)  # the shift's direction; its length is `err`
        zoom = 1 + err * rng.choice((-1, 1))  # the box too small (>1) or too large (<1)
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0, zoom)
        m[:, 2] += (err * w * np.cos(angle), err * h * np.sin(angle))
        out[i] = cv2.warpAffine(
            im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return out


Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

CORRUPTIONS: dict[str, Corruption] = {
    "dim": dim,
    "low_contrast": low_contrast,
    "low_resolution": low_resolution,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
    "turn": turn,
    "occlusion": occlusion,
    "crop_jitter": crop_jitter,
}

N_CONDITIONS = len(CORRUPTIONS) * len(SEVERITIES)  # 27 corrupted copies of a split


def corrupt(x: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """`x` (uint8 [N, H, W]) under corruption `name` at `severity` (0..3); same shape and
    dtype, deterministic for (seed, name, severity)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption '{name}'; known: {', '.join(CORRUPTIONS)}")
    if severity not in (0, *SEVERITIES):
        raise ValueError(f"severity {severity}: must be 0..{SEVERITIES[-1]}")
    if severity == 0:
        return x.copy()
    rng = np.random.default_rng((seed, list(CORRUPTIONS).index(name), severity))
    return CORRUPTIONS[name](x, severity, rng)


# Issue 48's dim cameras: the same crops as a dim 8-bit camera writes them, to count how many
# faces keep their label (`benchmarks/dim_light.py`; the shipped models' test).
UNDEREXPOSED = (0.3, 8.0)  # (gain, black level in grey levels): a third of the light
CRUSHED_GAMMA = 2.2  # on 0..1: shadows crushed toward black, highlights kept


def underexposed(x: np.ndarray) -> np.ndarray:
    gain, black = UNDEREXPOSED
    return _uint8(gain * _float(x) + black)


def crushed(x: np.ndarray) -> np.ndarray:
    return _uint8(255 * (_float(x) / 255) ** CRUSHED_GAMMA)


DIM_LIGHTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "0.3x+8": underexposed,
    "gamma 2.2": crushed,
    "both": lambda x: underexposed(crushed(x)),
}
