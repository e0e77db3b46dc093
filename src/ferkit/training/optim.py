"""Optimisation pieces of the training loop: the EMA of the weights, the learning-rate
schedule, weight-decay groups and sharpness-aware minimisation (SAM).

SAM (Foret et al., 2021) takes each step with the gradient at the worst weights within an
L2 ball of radius rho around the current ones, w + rho * g / ||g||, which steers towards flat
minima (reported to help most under label noise) for a second forward and backward pass
per step: about twice the epoch time.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class EMA:
    """Exponential moving average of a model's weights (buffers copied as they are)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # Warm-up: early on, average over roughly the steps seen so far.
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.model.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up for `warmup` steps, then cosine from `base` to 0 at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only (not BatchNorm weights or biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise with batch statistics but leave their running ones alone
    (momentum 0), so SAM's second pass does not count each batch twice."""
    saved = [(m, m.momentum) for m in model.modules() if isinstance(m, _BatchNorm)]
    for m, _ in saved:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


def sam_gradients(model: nn.Module, loss_fn: Callable[[], torch.Tensor], rho: float) -> None:
    """Replace the gradients in `.grad` (of the loss at w, from a finished backward pass) by
    those at w + rho * g / ||g||, computed with `loss_fn()` (a fresh forward pass), and put
    the weights back at w, ready for the optimiser's step."""
    params = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        moves = [p.grad * (rho / (norm + 1e-12)) for p in params]
        for p, e in zip(params, moves, strict=True):
            p.add_(e)
    for p in params:
        p.grad = None
    with frozen_bn_stats(model):
        loss_fn().backward()
    with torch.no_grad():
        for p, e in zip(params, moves, strict=True):
            p.sub_(e)
