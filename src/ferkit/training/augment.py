"""Batched augmentation on whole tensors: no per-image Python loop, no DataLoader workers.

A random affine (rotation, scale, shift, horizontal flip) per image through one
`affine_grid`/`grid_sample` call, then random erasing by masks; optionally mixup or CutMix
across the batch (their targets are mixed in `distill.training_loss`). All randomness comes
from the `torch.Generator` passed in, so a seeded epoch is reproducible and resumable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ferkit.core.errors import FerkitError
from ferkit.training import degrade
from ferkit.training.degrade import rand


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 15.0  # max rotation, degrees either way
    scale: float = 0.15  # zoom factor drawn from 1 +- scale
    shift: float = 0.10  # max translation, fraction of the image side
    hflip: bool = True  # mirror half of the images
    erase_p: float = 0.5  # probability of erasing one rectangle per image
    erase_area: tuple[float, float] = (0.02, 0.25)  # erased share of the image area
    erase_ratio: tuple[float, float] = (0.3, 3.3)  # height/width of the erased rectangle
    mixup: float = 0.0  # alpha of Beta(alpha, alpha) for mixup (one mix per batch); 0 = off
    cutmix: float = 0.0  # alpha of Beta(alpha, alpha) for CutMix's kept area; 0 = off
    # Real-world degradations (`ferkit.training.degrade`). Each family is off while its
    # share of images (`*_p`, 0..1) is 0, so the recipes before them reproduce. Stronger
    # crop jitter, the detector's box shifted and scaled, is `scale` and `shift` above.
    light_p: float = 0.0  # share relit: gamma, then contrast, then brightness
    brightness: float = 40.0  # max shift, pixel levels (0..255) either way
    contrast: float = 0.6  # contrast factor in [1 - contrast, 1 + contrast] about the mean
    gamma: float = 0.7  # gamma = exp(u), u in [-gamma, gamma]; above 1 darkens mid-tones
    blur_p: float = 0.0  # share blurred (half) or shrunk and enlarged back (half)
    blur_sigma: float = 1.5  # max Gaussian sigma, pixels of the input
    downscale_min: int = 16  # smallest side shrunk to, pixels (in steps of 8 px up)
    noise_p: float = 0.0  # share given Gaussian sensor noise
    noise_std: float = 20.0  # max noise std, pixel levels
    turn_p: float = 0.0  # share turned (yaw-like homography and horizontal squeeze)
    turn_yaw: float = 0.4  # max perspective coefficient k (0: none; 1: an edge at infinity)
    turn_squeeze: float = 0.3  # max share of the width the face loses
    occlude_p: float = 0.0  # share with an ellipse (hand, microphone) over mouth or chin
    occlude_size: tuple[float, float] = (0.15, 0.35)  # its radii, fractions of the side

    def __post_init__(self) -> None:
        """Refuse out-of-range values in one line (a `--set` typo fails here, before the
        data loads, not as a tensor error minutes into an epoch)."""
        for name, lo, hi in _RANGES:
            value = getattr(self, name)
            for v in value if isinstance(value, tuple) else (value,):
                if not lo <= v <= hi:
                    raise FerkitError(f"augment.{name}={value}: expected {lo}..{hi}")
            if isinstance(value, tuple) and value[0] > value[1]:
                raise FerkitError(f"augment.{name}={value}: expected (low, high), low <= high")


# Valid ranges per field, inclusive. Shares are 0..1; an image is 48 px, so a shift past half
# the side moves the face out, the zoom 1 - scale must stay above 0, the perspective k below 1.
_RANGES: tuple[tuple[str, float, float], ...] = (
    *(
        (f"{family}_p", 0.0, 1.0)
        for family in ("erase", "light", "blur", "noise", "turn", "occlude")
    ),
    ("rotate_deg", 0.0, 180.0),
    ("scale", 0.0, 0.9),
    ("shift", 0.0, 0.5),
    ("erase_area", 0.0, 1.0),
    ("erase_ratio", 0.01, 100.0),
    ("mixup", 0.0, 100.0),
    ("cutmix", 0.0, 100.0),
    ("brightness", 0.0, 255.0),
    ("contrast", 0.0, 1.0),
    ("gamma", 0.0, 3.0),
    ("blur_sigma", 0.0, 10.0),
    ("downscale_min", 1, 10_000),
    ("noise_std", 0.0, 255.0),
    ("turn_yaw", 0.0, 0.95),
    ("turn_squeeze", 0.0, 0.9),
    ("occlude_size", 0.01, 1.0),
)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * rand(n, gen)


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Rotate, scale, shift and mirror each image of `x` [N, C, H, W] independently."""
    n = x.shape[0]
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen) * (math.pi / 180)
    scale = _uniform(n, 1 - cfg.scale, 1 + cfg.scale, gen)
    # affine_grid coordinates span [-1, 1], so a shift of fraction f is 2f there.
    tx = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, gen)
    ty = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, gen)
    flip = torch.ones(n, device=x.device)
    if cfg.hflip:
        flip = torch.where(rand(n, gen) < 0.5, -1.0, 1.0)
    # theta maps output to input coordinates: dividing by the zoom enlarges the face.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Fill one random rectangle per chosen image with uniform noise in the pixel range."""
    n, _, h, w = x.shape
    area = _uniform(n, *cfg.erase_area, gen) * h * w
    log_r = _uniform(n, math.log(cfg.erase_ratio[0]), math.log(cfg.erase_ratio[1]), gen)
    ratio = torch.exp(log_r)
    eh = torch.sqrt(area * ratio).clamp(1, h)
    ew = torch.sqrt(area / ratio).clamp(1, w)
    y0 = rand(n, gen) * (h - eh)
    x0 = rand(n, gen) * (w - ew)
    on = rand(n, gen) < cfg.erase_p
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    mask = (
        (ys >= y0.view(n, 1, 1))
        & (ys < (y0 + eh).view(n, 1, 1))
        & (xs >= x0.view(n, 1, 1))
        & (xs < (x0 + ew).view(n, 1, 1))
        & on.view(n, 1, 1)
    ).unsqueeze(1)
    noise = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 255
    return torch.where(mask, noise, x)


def _beta(alpha: float, gen: torch.Generator) -> float:
    """One draw from Beta(alpha, alpha), seeded from `gen` (torch has no seeded Beta)."""
    import numpy as np

    seed = int(torch.randint(2**31 - 1, (1,), generator=gen, device=gen.device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(
    x: torch.Tensor, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, tuple[torch.Tensor, float]]:
    """Blend the batch with a shuffled copy of itself: lam * x + (1 - lam) * x[perm], lam
    from Beta(alpha, alpha). Returns the images and (perm, lam) for mixing the targets."""
    lam = _beta(alpha, gen)
    perm = torch.randperm(x.shape[0], generator=gen, device=gen.device)
    return lam * x + (1 - lam) * x[perm], (perm, lam)


def cutmix(
    x: torch.Tensor, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, tuple[torch.Tensor, float]]:
    """CutMix: paste one rectangle of a shuffled copy of the batch into every image (one box
    per batch, as mixup draws one lam per batch). The box covers about 1 - Beta(alpha, alpha)
    of the area, centred anywhere and clipped at the border; the returned lam is the share
    each image keeps of itself, so `training_loss` mixes the targets by area."""
    n, _, h, w = x.shape
    cut = math.sqrt(1 - _beta(alpha, gen))  # side of the box, fraction of the image side
    cy, cx = (rand(2, gen) * torch.tensor([h, w], device=gen.device)).tolist()
    y0, y1 = int(max(0, cy - cut * h / 2)), int(min(h, cy + cut * h / 2))
    x0, x1 = int(max(0, cx - cut * w / 2)), int(min(w, cx + cut * w / 2))
    perm = torch.randperm(n, generator=gen, device=gen.device)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    return out, (perm, 1 - (y1 - y0) * (x1 - x0) / (h * w))


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """The training augmentation, `x` float 0..255: random affine; then, in the order a
    camera brings them, the degradations switched on (a turned head, an occluder, light,
    blur or low resolution, sensor noise); then random erasing."""
    x = random_affine(x, cfg, gen)
    if cfg.turn_p > 0:
        x = degrade.turn(x, cfg.turn_p, cfg.turn_yaw, cfg.turn_squeeze, gen)
    if cfg.occlude_p > 0:
        x = degrade.occlude(x, cfg.occlude_p, cfg.occlude_size, gen)
    if cfg.light_p > 0:
        x = degrade.relight(x, cfg.light_p, cfg.brightness, cfg.contrast, cfg.gamma, gen)
    if cfg.blur_p > 0:
        x = degrade.blur_or_downscale(x, cfg.blur_p, cfg.blur_sigma, cfg.downscale_min, gen)
    if cfg.noise_p > 0:
        x = degrade.sensor_noise(x, cfg.noise_p, cfg.noise_std, gen)
    if cfg.erase_p > 0:
        x = random_erase(x, cfg, gen)
    return x
