"""Per-image photometric normalisation, the first layer of every network (issue 48).

FER-2013's crops are contrast-normalised already (the figures: docs/benchmarks.md, "Dim
light"), so a face filmed in dim or flat light gives a crop the networks never saw, and they
drift to "sad". A layer at the head of the graph maps every crop to the same
photometric range before the convolutions, in training and in the exported file alike:
evaluate, predict, video, serve, the stream and the Ray engine get it from the model.

- "none": the crop as it comes (every model trained before issue 48);
- "standardize": each crop's own mean and std, mapped to the training set's: undoes any
  brightness and contrast change (a x + b), not a gamma;
- "equalize": histogram equalisation by mid-rank, each pixel replaced by the share of the
  crop's pixels darker than it (ties counted half), scaled to 0..255: undoes any change that
  keeps the order of grey levels (brightness, contrast, gamma), as FER+'s reference
  pipeline equalises its crops.

`python benchmarks/dim_light.py` measures each against dimmed crops.
"""

from __future__ import annotations

import torch

from ferkit.core.errors import FerkitError

PHOTOMETRIC = ("none", "standardize", "equalize")
LEVELS = 256  # grey levels of an 8-bit crop; equalize rounds its input to them
EPS_STD = 0.01  # grey levels: keeps a flat crop (std 0) finite under "standardize"


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] 0..255 -> each image with the given mean and std (grey levels)."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    s = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - m) / (s + EPS_STD) * std + mean


def equalize(x: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] 0..255 -> each image's grey levels replaced by their mid-rank, 0..255.

    Pixels are rounded to 256 levels, counted into a histogram per image, and each pixel
    takes (pixels below its level + half of those at it) / pixels x 255: a flat crop becomes
    mid-grey, and an order-keeping change of light leaves the result as it was, but for
    levels the change merges. Exported as Round, ScatterElements (add), CumSum and
    GatherElements: a few operations per pixel, cheap next to one 3x3 convolution."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    levels = flat.round().clamp(0, LEVELS - 1).to(torch.int64)
    hist = torch.zeros(n, LEVELS, dtype=flat.dtype, device=x.device)
    hist = hist.scatter_add(1, levels, torch.ones_like(flat))
    below = hist.cumsum(1) - hist * 0.5  # pixels darker than each level, ties half
    out = below.gather(1, levels) * (255.0 / flat.shape[1])
    return out.reshape(x.shape)


class Normalize(torch.nn.Module):
    """The photometric layer (`mode`, see PHOTOMETRIC), then (x - mean) / std with constants
    kept as buffers (they travel into ONNX)."""

    def __init__(self, mean: float, std: float, mode: str = "none") -> None:
        super().__init__()
        if mode not in PHOTOMETRIC:
            raise FerkitError(
                f"unknown photometric '{mode}'; choose one of {', '.join(PHOTOMETRIC)}"
            )
        self.mode = mode
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("inv_std", torch.tensor(1.0 / float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "standardize":
            x = standardize(x, self.mean, 1.0 / self.inv_std)
        elif self.mode == "equalize":
            x = equalize(x)
        return (x - self.mean) * self.inv_std
