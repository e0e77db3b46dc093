"""`ferkit train`: fit on Training, select on PublicTest, report PrivateTest once.

Reads top to bottom: load data into one uint8 tensor, build the model, then per epoch
`train_one_epoch` (batched augmentation, SGD, EMA) and `scoring.evaluate` (EMA weights, flip
TTA on PublicTest), with an atomic checkpoint every epoch and the best one kept. Randomness per
epoch comes from (seed, epoch) alone, so `--resume` gives the same result as an
uninterrupted run. Under `torchrun`, each process takes its share of every batch (DDP).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ferkit.core.errors import FerkitError
from ferkit.data import load_cache, resize_faces
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.metadata import TTA_MODES
from ferkit.training import cpu
from ferkit.training.augment import augment, cutmix, mixup
from ferkit.training.config import TrainConfig
from ferkit.training.distill import batch_probs, clean_labels, teacher_targets, training_loss
from ferkit.training.networks import build_model, count_params, fit_whitening
from ferkit.training.optim import EMA, lr_at, param_groups, sam_gradients
from ferkit.training.procs import (
    catch_signals,
    init_distributed,
    local_rank,
    progress,
    rank_world,
    restore_signals,
    unwrap,
)
from ferkit.training.runs import (
    BEST,
    LAST,
    check_out,
    draw_curves,
    log_epoch,
    restore,
    run_lock,
    save_checkpoint,
    write_run_info,
)
from ferkit.training.scoring import UNSCORED, evaluate, final_report, scored
from ferkit.training.warmstart import rebuild_from_onnx, unfold_batchnorms

POSTFIX_EVERY = 25  # optimiser steps between progress-bar loss/accuracy refreshes
WHITEN_FIT = 2000  # Training images whose 3x3 patches fit a whitened first layer (4 M patches)
CURVES_EVERY_S = 30.0  # curves.png is redrawn at most this often (s), and after the last epoch


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during training; the last complete epoch's checkpoint is kept."""


@dataclasses.dataclass
class Data:
    """The splits as tensors on the training device: uint8 images [N, 1, H, W], int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    train_t: torch.Tensor | None = None  # the teacher's probabilities, offline distillation
    teacher: Classifier | None = None  # online distillation: scores each batch


def load_data(cfg: TrainConfig, device: torch.device) -> Data:
    cache = load_cache(cfg.data)

    def tensors(split: str, size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = cache.split(split, size)
        return (
            torch.from_numpy(x.copy()).unsqueeze(1).to(device),
            torch.from_numpy(y.copy()).to(device),
        )

    tx, ty = tensors("Training")
    n_train, keep = len(ty), torch.arange(len(ty), device=device)  # before train_limit
    if cfg.train_limit:  # a seeded random subset: the cache is ordered by class
        keep = torch.randperm(len(ty), generator=torch.Generator().manual_seed(cfg.seed))
        keep = keep[: cfg.train_limit].sort().values.to(device)
        tx, ty = tx[keep], ty[keep]
    vx, vy = tensors("PublicTest", cfg.input_size)
    kd = cfg.distill
    cleans = kd.drop_below > 0 or kd.relabel_above > 0
    if not kd.teacher and (kd.online or cleans):
        key = "online" if kd.online else "drop_below" if kd.drop_below else "relabel_above"
        raise FerkitError(f"distill.{key} needs a teacher: --set distill.teacher=MODEL.onnx")
    side = cfg.input_size or tx.shape[-1]  # four 2x2 poolings leave 1 px of a 16 px face
    if cfg.small_epochs and not 16 <= cfg.small_size < side:  # before the teacher's scoring
        raise FerkitError(f"small_size={cfg.small_size}: expected 16 up to {side - 1} px")
    for key in ("drop_below", "relabel_above"):  # before the teacher's minutes of scoring
        if not 0 <= getattr(kd, key) <= 1:
            raise FerkitError(f"distill.{key}={getattr(kd, key)}: expected 0..1")
    if kd.online and kd.teacher.endswith(".npy"):
        raise FerkitError(f"distill.online scores each batch: {kd.teacher} is not a model")
    tt = None
    if kd.teacher and (not kd.online or cleans):
        images, kept = tx[:, 0].cpu().numpy(), keep.cpu().numpy()
        folders = (Path(cfg.data), Path(cfg.out))  # shared by the seeds, then this run's
        probs = teacher_targets(kd.teacher, images, n_train, kept, folders)
        tt = torch.from_numpy(probs).to(device)
    if cleans:
        tx, ty, tt = clean_labels(tx, ty, tt, kd, keep_at_least=cfg.batch_size)
    if cfg.input_size and tx.shape[-1] != cfg.input_size:  # after the teacher saw the faces
        tx = torch.from_numpy(resize_faces(tx[:, 0].cpu().numpy(), cfg.input_size))
        tx = tx.unsqueeze(1).to(device)
    if kd.online:
        return Data(tx, ty, vx, vy, teacher=Classifier(kd.teacher, threads=cfg.threads))
    return Data(tx, ty, vx, vy, tt if kd.weight > 0 else None)


def train_one_epoch(
    model: nn.Module,
    ema: EMA,
    opt: torch.optim.Optimizer,
    data: Data,
    cfg: TrainConfig,
    epoch: int,
    step: int,
    stop: list[bool],
) -> dict[str, float]:
    """One pass over Training in global batches of `cfg.batch_size`; returns loss, acc, speed."""
    rank, world = rank_world()
    device = data.train_x.device
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout; identical on every process
    order_gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed * 100_003 + epoch * 997 + rank)
    n = data.train_x.shape[0]
    perm = torch.randperm(n, generator=order_gen).to(device)
    steps = n // cfg.batch_size  # drop the last partial batch: equal steps on every process
    local = cfg.batch_size // world
    total_steps = cfg.epochs * steps
    warmup = round(cfg.optim.warmup_epochs * steps)
    base_lr = cfg.optim.lr * cfg.batch_size / 128
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    start = time.perf_counter()
    bar = progress(steps, f"epoch {epoch + 1}/{cfg.epochs}", rank)
    for i in range(steps):
        if stop[0]:
            raise Interrupted
        idx = perm[i * cfg.batch_size + rank * local : i * cfg.batch_size + (rank + 1) * local]
        x = augment(data.train_x[idx].float(), cfg.augment, aug_gen)
        if epoch < cfg.small_epochs:  # progressive resizing: cheaper early epochs
            x = F.interpolate(x, size=cfg.small_size, mode="bilinear", antialias=True)
        y = data.train_y[idx]
        targets = None if data.train_t is None else data.train_t[idx]
        if data.teacher is not None:  # before mixup/CutMix: mixed like the labels
            targets = batch_probs(data.teacher, x)
        mix = None
        if cfg.augment.mixup > 0:
            x, mix = mixup(x, cfg.augment.mixup, aug_gen)
        elif cfg.augment.cutmix > 0:
            x, mix = cutmix(x, cfg.augment.cutmix, aug_gen)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        lr = lr_at(step, total_steps, warmup, base_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = (x, y, targets, mix)
        logits, loss = _forward(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.sam_rho > 0:  # step with the gradient at the worst nearby weights
            sam_gradients(model, partial(_loss, model, batch, cfg), cfg.optim.sam_rho)
        opt.step()
        step += 1
        ema.update(unwrap(model), step)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if bar is not None and (i % POSTFIX_EVERY == 0 or i == steps - 1):
            # .item() waits for the device: on a GPU, every step would serialise the
            # Python loop with the kernels, so the figures are refreshed every few steps.
            rate = seen * world / (time.perf_counter() - start)
            bar.set_postfix(
                loss=f"{loss_sum.item() / seen:.3f}",
                acc=f"{correct.item() / seen:.3f}",
                img_s=f"{rate:.0f}",
                refresh=False,
            )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    return {
        "lr": lr,
        "train_loss": loss_sum.item() / max(1, seen),
        "train_acc": correct.item() / max(1, seen),
        "img_per_s": seen * world / seconds,
        "epoch_s": seconds,
        "step": step,
    }


def _forward(
    model: nn.Module, batch: tuple[Any, ...], cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and training loss of one augmented batch `(x, y, targets, mix)`."""
    x, y, targets, mix = batch
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        logits = model(x)
    return logits, training_loss(logits, y, cfg.optim.label_smoothing, targets, cfg.distill, mix)


def _loss(model: nn.Module, batch: tuple[Any, ...], cfg: TrainConfig) -> torch.Tensor:
    """The loss alone, bound with `partial` for SAM's second pass (a lambda in the loop
    would capture `batch` late)."""
    return _forward(model, batch, cfg)[1]


def train(cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) training into `cfg.out`; returns the final metrics of the best epoch.
    A folder that holds a run is refused unless `resume` or `overwrite`, and one that
    another `ferkit train` is writing is refused always (`run_lock`; torchrun's rank 0
    holds it for all its processes)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(cfg, resume, overwrite)
    with run_lock(Path(cfg.out)):
        return _train(cfg, resume, overwrite)


def _train(cfg: TrainConfig, resume: bool, overwrite: bool) -> dict[str, Any]:
    check_out(Path(cfg.out), resume, overwrite)
    rank, world = init_distributed(cfg.device)
    device = torch.device(cfg.device if cfg.device == "cpu" else f"cuda:{local_rank()}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise FerkitError("--device cuda: no CUDA GPU is available to torch")
    if cfg.augment.mixup > 0 and cfg.augment.cutmix > 0:
        raise FerkitError("augment.mixup and augment.cutmix are exclusive: set one of them")
    if cfg.eval_last < 0:
        raise FerkitError(f"eval_last={cfg.eval_last}: expected 0 (every epoch) or more")
    if cfg.tta not in TTA_MODES:  # before training, not in the final report
        raise FerkitError(f"tta={cfg.tta!r}: expected one of {', '.join(TTA_MODES)}")
    if cfg.batch_size % world:
        raise FerkitError(f"batch size {cfg.batch_size} is not divisible by {world} processes")
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // world))
    if cfg.bf16 and not cpu.native_bf16(device):  # recorded as run: config.json says fp32
        print(f"warning: bf16 ignored, training in fp32: {cpu.summary()}", file=sys.stderr)
        cfg = dataclasses.replace(cfg, bf16=False)
    run = Path(cfg.out)
    init_net = None
    if not resume and cfg.init:  # the file's architecture, normalisation and weights
        # before teacher scoring; the photometric layer is the recipe's, not the file's
        model_cfg, init_net, folded = rebuild_from_onnx(cfg.init, cfg.model.photometric)
        # convolutions and global pooling: the network takes any size; the data is resized
        cfg = dataclasses.replace(cfg, input_size=cfg.input_size or model_cfg.input_size)
    data = load_data(cfg, device)
    if len(data.train_x) < cfg.batch_size:  # no full batch: an epoch of no steps
        raise FerkitError(
            f"--batch-size {cfg.batch_size}: the Training split has only {len(data.train_x)} "
            "images; give a batch size at most that"
        )
    if init_net is not None:
        if folded:
            unfold_batchnorms(init_net, folded, data.train_x)
        model_cfg = dataclasses.replace(model_cfg, input_size=data.train_x.shape[-1])
        cfg = dataclasses.replace(cfg, model=model_cfg)
    elif not resume:  # normalisation constants of this training set travel with the model
        pixels = data.train_x.float()
        model_cfg = dataclasses.replace(
            cfg.model,
            input_size=data.train_x.shape[-1],
            mean=round(pixels.mean().item(), 3),
            std=round(pixels.std().item(), 3),
        )
        cfg = dataclasses.replace(cfg, model=model_cfg)
    torch.manual_seed(cfg.seed)
    model = (build_model(cfg.model) if init_net is None else init_net).to(device)
    if init_net is None and not resume:  # a fresh whitened first layer, from the data
        fit_whitening(model, data.train_x[:WHITEN_FIT])
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.optim.ema_decay)
    opt = torch.optim.SGD(
        param_groups(model, cfg.optim.weight_decay),
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        nesterov=cfg.optim.nesterov,
    )
    start_epoch, step, best = 0, 0, {"val_acc_tta": -1.0, "epoch": 0}
    if resume:
        start_epoch, step, best = restore(run / LAST, model, ema.model, opt)
    if rank == 0:  # on resume too: an extended schedule (`--epochs`) is recorded
        run.mkdir(parents=True, exist_ok=True)
        write_run_info(run, cfg, fresh=not resume)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    if rank == 0:
        print(
            f"{cfg.model.name} width {cfg.model.width}: {count_params(ema.model) / 1e6:.2f} M "
            f"params, {data.train_x.shape[0]:,} training images, {world} process(es), "
            f"{torch.get_num_threads()} threads, device {device}",
            file=sys.stderr,
        )

    stop = [False]
    drawn, stale = -math.inf, False  # when curves.png was drawn (time.monotonic s); behind?
    handlers = catch_signals(stop)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            stats = train_one_epoch(model, ema, opt, data, cfg, epoch, step, stop)
            step = stats.pop("step")
            val, tick, scoring = UNSCORED, time.perf_counter(), scored(epoch, cfg)
            if scoring:
                val = evaluate(ema.model, data.val_x, data.val_y, cfg.eval_batch)
            row = {
                "epoch": epoch + 1,
                **stats,
                "val_loss": val["loss"],
                "val_acc": val["acc"],
                "val_acc_tta": val["acc_tta"],
                "eval_s": time.perf_counter() - tick,
            }
            if rank == 0:
                improved = row["val_acc_tta"] > best["val_acc_tta"]
                if improved:
                    best = {"val_acc_tta": row["val_acc_tta"], "epoch": epoch + 1}
                state = {
                    "model": unwrap(model).state_dict(),
                    "ema": ema.model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "best": best,
                    "config": dataclasses.asdict(cfg),
                }
                save_checkpoint(run / LAST, state)
                if improved:
                    save_checkpoint(run / BEST, state)
                stale = epoch + 1 < cfg.epochs and time.monotonic() - drawn < CURVES_EVERY_S
                log_epoch(run, row, redraw=not stale)
                drawn = drawn if stale else time.monotonic()
                public = (
                    f"PublicTest acc {val['acc']:.4f} (flip TTA {val['acc_tta']:.4f}), best "
                    f"{best['val_acc_tta']:.4f} @ {best['epoch']}"
                    if scoring
                    else f"PublicTest scored from epoch {cfg.epochs - cfg.eval_last + 1}"
                )
                print(
                    f"epoch {epoch + 1}: train acc {row['train_acc']:.4f}, {public}, "
                    f"{row['img_per_s']:.0f} img/s",
                    file=sys.stderr,
                )
    finally:
        restore_signals(handlers)
        if stale:  # stopped between redraws: the curves show every saved epoch
            draw_curves(run)
        if world > 1:
            dist.barrier()
    result = final_report(run, cfg, device) if rank == 0 else {}
    if world > 1:
        dist.destroy_process_group()
    return result
