"""Test-time views: the softmax of a network averaged over transformed copies of each face.

One module for both places that score with views, so they cannot drift apart: `ferkit
export` traces `Probabilities` into the ONNX graph, and training's final report
(`scoring.final_report`) scores the run's best epoch with the views its recipe exports
(`TrainConfig.tta`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.core.errors import FerkitError
from ferkit.modelfile.metadata import TTA_MODES

TTA_ZOOM_PX = 2  # "views8" zoom: crop this many pixels off each side, resize back (48 px: 9%)
TTA_ROTATE_DEG = 8.0  # "views8" rotations: +-8 degrees, well inside training's +-15


def _rotation_grid(size: int, degrees: float) -> torch.Tensor:
    """Sampling grid [1, size, size, 2] that rotates an image about its centre."""
    t = torch.tensor(degrees * torch.pi / 180)
    theta = torch.stack(
        [torch.stack([t.cos(), -t.sin(), t * 0]), torch.stack([t.sin(), t.cos(), t * 0])]
    )
    return F.affine_grid(theta[None], [1, 1, size, size], align_corners=False)


class Probabilities(nn.Module):
    """Softmax of the model, averaged over test-time views of the image (`tta`): "none";
    "hflip": the image and its mirror; "views8": the image, a 9% zoom and +-8 degree
    rotations, each also mirrored (4x the cost of "hflip"; about +1 point on PublicTest
    for the width-32 VGG, measured in benchmarks/RECIPES.md)."""

    def __init__(self, model: nn.Module, tta: str, size: int = 48) -> None:
        super().__init__()
        if tta not in TTA_MODES:
            raise FerkitError(f"unknown TTA '{tta}'; expected one of {', '.join(TTA_MODES)}")
        self.model, self.tta, self.size = model, tta, size
        grids = [_rotation_grid(size, d) for d in (-TTA_ROTATE_DEG, TTA_ROTATE_DEG)]
        self.register_buffer("grids", torch.cat(grids), persistent=False)
        self.eval()  # the wrapper too: the exporter restores the wrapper's mode recursively

    def views(self, image: torch.Tensor) -> list[torch.Tensor]:
        views = [image]
        if self.tta == "views8":
            z, s = TTA_ZOOM_PX, self.size
            crop = image[:, :, z : s - z, z : s - z]
            views.append(F.interpolate(crop, size=(s, s), mode="bilinear", align_corners=False))
            for grid in self.grids:
                g = grid[None].expand(image.shape[0], -1, -1, -1)
                views.append(F.grid_sample(image, g, padding_mode="border", align_corners=False))
        if self.tta != "none":
            views += [torch.flip(v, dims=[3]) for v in views]
        return views

    def each_view(self, image: torch.Tensor) -> torch.Tensor:
        """Softmax of every view, [views, N, classes]: the image first and, unless "none",
        its mirror at index views // 2 (training's final report reads plain and flip TTA
        from them, so it scores no face twice)."""
        views = self.views(image)
        p = F.softmax(self.model(torch.cat(views)), dim=1)  # one batch of all views
        return p.reshape(len(views), image.shape[0], -1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.each_view(image).mean(0)
