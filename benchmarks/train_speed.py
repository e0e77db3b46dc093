"""Training throughput (images/s) on this machine: fp32 vs bf16 autocast vs channels_last,
and what online distillation from each `--teacher` or SAM (`--sam RHO`) costs (channels_last,
bf16 where the CPU has it in hardware, as `ferkit train --bf16` would run).

Times the real `train_one_epoch` step (batched augmentation, forward, backward, SGD, EMA)
on random 48x48 images, fp32 contiguous as the baseline measured in the same run:

    python benchmarks/train_speed.py [--model vgg-s] [--width 32] [--steps 30]
        [--teacher default accurate ens.onnx] [--sam 0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from ferkit.modelfile.classifier import Classifier
from ferkit.training import cpu
from ferkit.training import loop as T
from ferkit.training.config import DistillConfig, OptimConfig, TrainConfig
from ferkit.training.networks import ModelConfig, build_model, count_params
from ferkit.training.optim import EMA, param_groups


def images_per_second(cfg: TrainConfig, steps: int) -> float:
    n = cfg.batch_size * steps
    data = T.Data(
        train_x=torch.randint(0, 256, (n, 1, 48, 48), dtype=torch.uint8),
        train_y=torch.randint(0, 7, (n,)),
        val_x=torch.zeros(0, 1, 48, 48, dtype=torch.uint8),
        val_y=torch.zeros(0, dtype=torch.long),
        teacher=Classifier(cfg.distill.teacher) if cfg.distill.online else None,
    )
    model = build_model(cfg.model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.optim.ema_decay)
    opt = torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9, nesterov=True)
    T.train_one_epoch(model, ema, opt, data, cfg, 0, 0, [False])  # warm-up: allocator, oneDNN
    return T.train_one_epoch(model, ema, opt, data, cfg, 1, 0, [False])["img_per_s"]


def report(label: str, rate: float, ref: float) -> None:
    print(f"{label:32s} {rate:7.0f} img/s  {rate / ref:4.2f}x   {28709 / rate:5.1f} s per epoch")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="vgg-s")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=30, help="batches of 128 per timing")
    p.add_argument("--teacher", nargs="*", default=[], help="ONNX teachers (or shipped names)")
    p.add_argument("--sam", type=float, default=0.0, help="also time SAM with this radius")
    args = p.parse_args()
    base = TrainConfig(model=ModelConfig(name=args.model, width=args.width), epochs=2)
    params = count_params(build_model(base.model)) / 1e6
    threads = torch.get_num_threads()
    print(f"{args.model} width {args.width} ({params:.2f} M params), {threads} threads")
    print(cpu.summary())
    fast = cpu.native_bf16(torch.device("cpu"))  # what `ferkit train --bf16` runs here
    ref = None
    for bf16, cl in ((False, False), (True, False), (False, True), (True, True)):
        cfg = dataclasses.replace(base, bf16=bf16, channels_last=cl)
        rate = images_per_second(cfg, args.steps)
        ref = ref or rate
        report(f"{'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'contiguous'}", rate, ref)
    for teacher in args.teacher:
        online = DistillConfig(teacher=teacher, online=True)
        cfg = dataclasses.replace(base, bf16=fast, channels_last=True, distill=online)
        report(f"online teacher {Path(teacher).name}", images_per_second(cfg, args.steps), ref)
    if args.sam > 0:
        sam = OptimConfig(sam_rho=args.sam)
        cfg = dataclasses.replace(base, bf16=fast, channels_last=True, optim=sam)
        label = f"{'bf16' if fast else 'fp32'} channels_last, SAM {args.sam}"
        report(label, images_per_second(cfg, args.steps), ref)


if __name__ == "__main__":
    main()
