"""Scoring during and after training: PublicTest every epoch, or the last `eval_last` (EMA
weights, plain and flip TTA), and the best epoch once on PublicTest and PrivateTest at the
end (`final.json`), also with the views the run exports (`TrainConfig.tta`).
PyTorch on the training device, not ONNX Runtime: the model is still a torch module here;
`ferkit export` measures the exported file through the shared inference path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.core.atomic import write_text
from ferkit.core.errors import FerkitError
from ferkit.data import load_cache
from ferkit.training.config import TrainConfig
from ferkit.training.networks import build_model
from ferkit.training.runs import BEST, load_checkpoint
from ferkit.training.views import Probabilities

UNSCORED = {"loss": math.nan, "acc": math.nan, "acc_tta": math.nan}  # never the best epoch
# final.json's key for the views `evaluate` scores anyway; other views get `acc_views` alone
EVALUATED = {"none": "acc", "hflip": "acc_tta"}


def scored(epoch: int, cfg: TrainConfig) -> bool:
    """Whether PublicTest scores `epoch` (0-based): every one, or only the last `eval_last`."""
    return not cfg.eval_last or epoch >= cfg.epochs - cfg.eval_last


@torch.no_grad()
def predict_probs(
    model: nn.Module, x: torch.Tensor, batch: int, flip: bool = False
) -> torch.Tensor:
    """Softmax probabilities for uint8 images [N, 1, H, W], or for their mirror images."""
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch].float()
        out.append(F.softmax(model(xb.flip(3) if flip else xb).float(), 1))
    return torch.cat(out)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> dict[str, float]:
    """Loss and accuracy, plain and with flip TTA (the mean of the image's and its mirror's):
    the scoring after an epoch, the final report's own pass over the face and its mirror."""
    scores = report_scores(model, x, y, "hflip", batch)
    return {key: scores[key] for key in ("loss", "acc", "acc_tta")}


@torch.no_grad()
def report_scores(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, tta: str, batch: int
) -> dict[str, float]:
    """The loss of the face alone, accuracy plain and with flip TTA, and `acc_views`: the
    accuracy of the softmax averaged over `tta`'s views, the graph `ferkit export` writes.
    One pass over the views (at least the face and its mirror, `batch` images at a time):
    plain and flip are read from its first view and its mirror, not scored again."""
    scored = "hflip" if tta == "none" else tta
    views = Probabilities(model, scored, x.shape[-1]).to(x.device)  # its rotation grids too
    count = len(views.views(x[:1].float()))  # views per face, the mirrored half last
    step = max(1, batch // count)
    probs = torch.cat([views.each_view(x[i : i + step].float()) for i in range(0, len(x), step)], 1)
    plain, mirror = probs[0], probs[count // 2]
    scores = {
        "loss": F.nll_loss(plain.clamp_min(1e-12).log(), y).item(),
        "acc": (plain.argmax(1) == y).float().mean().item(),
        "acc_tta": ((plain + mirror).argmax(1) == y).float().mean().item(),
    }
    key = EVALUATED.get(tta)
    scores["acc_views"] = (
        scores[key] if key else (probs.mean(0).argmax(1) == y).float().mean().item()
    )
    return scores


def final_report(run: Path, cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Evaluate the best-on-PublicTest EMA weights once on PublicTest and PrivateTest:
    plain, flip TTA (as the epochs were chosen) and the run's own views (`acc_views`)."""
    state = load_checkpoint(run / BEST)
    model = build_model(cfg.model).to(device)
    if cfg.channels_last:  # as the epochs scored it (the EMA copy of the training model)
        model = model.to(memory_format=torch.channels_last)
    model.load_state_dict(state["ema"])
    cache = load_cache(cfg.data)
    result: dict[str, Any] = {"best_epoch": state["epoch"], "epochs": cfg.epochs, "tta": cfg.tta}
    for split in ("PublicTest", "PrivateTest"):
        try:
            x, y = cache.split(split, cfg.model.input_size)
        except FerkitError:
            continue  # a source without PrivateTest (own data)
        xt = torch.from_numpy(x.copy()).unsqueeze(1).to(device)
        yt = torch.from_numpy(y.copy()).to(device)
        m = report_scores(model, xt, yt, cfg.tta, cfg.eval_batch)
        result[split] = {
            "acc": m["acc"],
            "acc_tta": m["acc_tta"],
            "acc_views": m["acc_views"],
            "loss": m["loss"],
            "n": len(y),
        }
    write_text(run / "final.json", json.dumps(result, indent=2) + "\n")
    return result
