"""Batched real-world degradations for training: light, blur and low resolution, sensor
noise, turned heads and occluders, each on a random share of the batch.

Every function takes float images `x` [N, C, H, W] in pixel levels 0..255 and a
`torch.Generator`, works on the whole batch at once (no per-image Python loop) and leaves
the images it did not pick unchanged. They mirror the families of FER-2013-C
(`ferkit.evaluation.corruptions`), drawn from continuous ranges rather than its three fixed
severities, so the benchmark is not the training distribution. `augment.augment` calls
them when their `AugmentConfig` share is above 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rand(n: int, gen: torch.Generator) -> torch.Tensor:
    """n uniform draws in [0, 1) on the generator's device (`augment` draws with it too)."""
    return torch.rand(n, generator=gen, device=gen.device)


def _picked(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """A [N, 1, 1, 1] boolean mask choosing each image with probability p."""
    return (rand(n, gen) < p).view(n, 1, 1, 1)


def _centred(n: int, half: float, gen: torch.Generator) -> torch.Tensor:
    """n uniform draws in [-half, half], shaped [N, 1, 1, 1] to broadcast over images."""
    return ((2 * rand(n, gen) - 1) * half).view(n, 1, 1, 1)


def relight(
    x: torch.Tensor,
    p: float,
    brightness: float,
    contrast: float,
    gamma: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """Gamma exp(u), u in [-gamma, gamma] (above 1 darkens the mid-tones, as dim light and
    cheap sensors do), then contrast about the image mean by a factor in
    [1 - contrast, 1 + contrast], then a brightness shift in [-brightness, brightness] levels."""
    n = x.shape[0]
    g = torch.exp(_centred(n, gamma, gen))
    c = 1 + _centred(n, contrast, gen).clamp(min=-0.95)
    b = _centred(n, brightness, gen)
    y = 255 * (x.clamp(0, 255) / 255) ** g
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * c + mean + b).clamp(0, 255)
    return torch.where(_picked(n, p, gen), y, x)


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """[N, 2r+1] normalised 1-D Gaussians; sigma near 0 gives the identity (a delta)."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma.clamp(min=1e-3).view(-1, 1) ** 2))
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur image i of `x` by a Gaussian of sigma[i] pixels: one grouped, separable
    convolution over the batch (each image its own group), reflected at the border."""
    n, c, h, w = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    k = _gaussian_kernels(sigma, min(radius, h // 2 - 1, w // 2 - 1)).to(x.dtype)
    k = k.repeat_interleave(c, 0)  # one kernel per channel of each image
    r = k.shape[1] // 2
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(n * c, 1, -1, 1), groups=n * c)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(n * c, 1, 1, -1), groups=n * c)
    return y.view(n, c, h, w)


def blur_or_downscale(
    x: torch.Tensor, p: float, max_sigma: float, min_side: int, gen: torch.Generator
) -> torch.Tensor:
    """On a share p of the images: half get a Gaussian blur of sigma in (0, max_sigma]
    pixels; the other half are shrunk to a side in [min_side, H) pixels (area average) and
    enlarged back (bilinear), as a small face in a photo is. Sides come in steps of 8 px,
    so the loop runs over at most a few sizes, never over images."""
    n, _, h, w = x.shape
    picked = _picked(n, p, gen)
    blur = rand(n, gen).view(n, 1, 1, 1) < 0.5
    out = torch.where(picked & blur, gaussian_blur(x, rand(n, gen) * max_sigma), x)
    sides = list(range(min_side, h, 8))
    if not sides:
        return out
    level = (rand(n, gen) * len(sides)).long().clamp(max=len(sides) - 1)
    for i, side in enumerate(sides):
        chosen = (picked & ~blur).view(n) & (level == i)
        if chosen.any():
            small = F.interpolate(x[chosen], size=(side, side * w // h), mode="area")
            out[chosen] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def sensor_noise(x: torch.Tensor, p: float, max_std: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise of a std drawn in [0, max_std] pixel levels per picked image."""
    n = x.shape[0]
    std = (rand(n, gen) * max_std).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype) * std
    return torch.where(_picked(n, p, gen), (x + noise).clamp(0, 255), x)


def turn(
    x: torch.Tensor, p: float, yaw: float, squeeze: float, gen: torch.Generator
) -> torch.Tensor:
    """A head turned about its vertical axis, as a homography: the face narrows by a share in
    [0, squeeze] and one side grows while the other recedes, with perspective coefficient k
    in [-yaw, yaw] (input x = u / (1 + k u), y = v / (1 + k u), u = output x / width share)."""
    n, _, h, w = x.shape
    k = _centred(n, yaw, gen).view(n, 1, 1)
    width = (1 - rand(n, gen) * squeeze).view(n, 1, 1)
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, h, device=x.device),
        torch.linspace(-1, 1, w, device=x.device),
        indexing="ij",
    )
    u = xs.unsqueeze(0) / width
    d = 1 + k * u
    grid = torch.stack([u / d, ys.unsqueeze(0) / d], dim=-1).to(x.dtype)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return torch.where(_picked(n, p, gen), y, x)


def occlude(
    x: torch.Tensor, p: float, size: tuple[float, float], gen: torch.Generator
) -> torch.Tensor:
    """An ellipse over the mouth or chin, as a hand or a microphone held there: centre in
    the lower third, radii in `size` (fractions of the side), a flat level in 20..230 with a
    vertical shading of up to +-25 levels so it reads as an object, not as a hole."""
    n, _, h, w = x.shape
    cy = (0.65 + 0.3 * rand(n, gen)).view(n, 1, 1) * h
    cx = (0.25 + 0.5 * rand(n, gen)).view(n, 1, 1) * w
    lo, hi = size
    ry = (lo + (hi - lo) * rand(n, gen)).view(n, 1, 1) * h
    rx = (lo + (hi - lo) * rand(n, gen)).view(n, 1, 1) * w
    level = (20 + 210 * rand(n, gen)).view(n, 1, 1)
    shade = _centred(n, 25, gen).view(n, 1, 1)
    ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
    fill = (level + shade * (ys - cy) / ry).clamp(0, 255)
    mask = inside.unsqueeze(1) & _picked(n, p, gen)
    return torch.where(mask, fill.unsqueeze(1).to(x.dtype), x)
