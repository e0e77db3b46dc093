"""What the training loop needs around it: a progress bar on the first process, the
torchrun process group (DDP: gloo on CPU, nccl on GPU), and Ctrl-C/SIGTERM turned into a flag
checked between steps, so an interrupted epoch leaves the last complete checkpoint."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def progress(total: int, desc: str, rank: int):
    if rank != 0:
        return None
    from tqdm import tqdm

    # a bar only on a terminal: in a log file its carriage returns are noise, and each
    # epoch's line says what it would
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr,
                disable=not sys.stderr.isatty())  # fmt: skip


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> tuple[int, int]:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(local_rank())
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return rank_world()


def catch_signals(stop: list[bool]) -> dict[int, Any]:
    def handler(signum: int, frame: Any) -> None:
        stop[0] = True

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handler)
    return old


def restore_signals(old: dict[int, Any]) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)
