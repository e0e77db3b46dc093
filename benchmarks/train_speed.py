"""Training throughput on this machine, per setting, and how close it runs to the CPU's peak.

Times the real `train_one_epoch` step (batched augmentation, forward, backward, SGD, EMA)
on random images, fp32 contiguous as the baseline measured in the same run. Rows: fp32 and
bf16 autocast, contiguous and channels_last (bf16 only where the CPU has it in hardware,
unless `--emulated`), then, with the fastest precision and layout (what `ferkit train
--bf16 --channels-last` runs here): SGD with foreach updates, a batch of 256, and with
`--compile` the model under `torch.compile`. `--teacher` and `--sam` time what online
distillation and SAM cost.

Each row gives images/s, the ratio to the baseline, seconds per FER-2013 epoch, and the
multiply-accumulates (MACs) it sustains, as a share of two peaks:
- the CPU's nominal peak: threads x clock ("cpu MHz" in /proc/cpuinfo, the nominal
  clock; boost can run above it) x MACs per cycle per core of the precision's FMA or dot
  product units (`PEAK_MACS_PER_CYCLE`);
- a large matrix product (2048 x 2048, the BLAS torch ships) in the same precision and
  threads, timed in the same run: what this machine reaches in practice.
MACs per image are those of the convolutions and linear layers in one training step
(forward, and backward to the inputs and weights), counted by `torch.utils.flop_counter`;
normalisation, activations and pooling are not MACs and are left out. Last, the seconds
that scoring PublicTest after every epoch adds, as a share of an epoch. `--size 32` times
the early epochs of progressive resizing (`--set small_size=32`); `--profile` splits the
fastest setting's step time between the convolutions, the network's other layers and the
rest of the loop.

    python benchmarks/train_speed.py [--model vgg-s] [--width 32] [--size 48] [--steps 30]
        [--compile] [--profile] [--emulated] [--teacher default accurate ens.onnx] [--sam 0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ferkit.modelfile.classifier import Classifier
from ferkit.training import cpu
from ferkit.training import loop as T
from ferkit.training.config import DistillConfig, OptimConfig, TrainConfig
from ferkit.training.networks import ModelConfig, build_model, count_params
from ferkit.training.optim import EMA, param_groups
from ferkit.training.scoring import evaluate

TRAIN_IMAGES = 28_709  # FER-2013 Training, for seconds per epoch
VAL_IMAGES = 3_589  # PublicTest, scored after every epoch

# MACs per cycle per core: (ISA, vendor) -> {precision: MACs}. Two 256-bit FMA pipes give
# 16 fp32 MACs (AVX2 on Zen 2/3 and Intel since Haswell; Zen 4 runs AVX-512 on the same
# 256-bit pipes), and VDPBF16PS two bf16 MACs per fp32 lane, so 32 on Zen 4. Intel server
# cores have two 512-bit FMA units (32 fp32, 64 bf16).
PEAK_MACS_PER_CYCLE = {
    ("AVX2", "AuthenticAMD"): {"fp32": 16},
    ("AVX2", "GenuineIntel"): {"fp32": 16},
    ("AVX512", "AuthenticAMD"): {"fp32": 16, "bf16": 32},
    ("AVX512", "GenuineIntel"): {"fp32": 32, "bf16": 64},
}


@dataclasses.dataclass(frozen=True)
class Setting:
    label: str
    cfg: TrainConfig
    foreach: bool = False  # SGD with torch's foreach (multi-tensor) updates
    compile: bool = False  # torch.compile the model (compile time not counted)


def cpu_facts() -> tuple[str, float]:
    """The CPU's vendor id and nominal clock (GHz) from /proc/cpuinfo; ("", 0) if unknown."""
    vendor, mhz = "", 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id":
                vendor = value.strip()
            elif key.strip() == "cpu MHz":
                mhz = max(mhz, float(value))
    except (OSError, ValueError):
        pass
    return vendor, mhz / 1000


def nominal_peak(precision: str, threads: int) -> float:
    """MACs/s at the nominal clock on `threads` cores; 0 where the table has no entry."""
    vendor, ghz = cpu_facts()
    per_cycle = PEAK_MACS_PER_CYCLE.get((torch.backends.cpu.get_cpu_capability(), vendor), {})
    return threads * ghz * 1e9 * per_cycle.get(precision, 0)


def gemm_rate(bf16: bool, n: int = 2048, reps: int = 6) -> float:
    """MACs/s of an n x n matrix product in fp32 or bf16, best of `reps`."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return n**3 / best


def macs_per_image(cfg: TrainConfig) -> tuple[float, float]:
    """MACs of one image's forward pass and of its whole training step."""
    model = build_model(cfg.model).train()
    x = torch.rand(8, 1, cfg.model.input_size, cfg.model.input_size) * 255
    with FlopCounterMode(display=False) as forward:
        loss = model(x).logsumexp(1).sum()
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    fwd, bwd = forward.get_total_flops() / 2 / 8, backward.get_total_flops() / 2 / 8
    return fwd, fwd + bwd


def images_per_second(s: Setting, steps: int) -> float:
    cfg, size = s.cfg, s.cfg.model.input_size
    n = cfg.batch_size * steps
    data = T.Data(
        train_x=torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8),
        train_y=torch.randint(0, 7, (n,)),
        val_x=torch.zeros(0, 1, size, size, dtype=torch.uint8),
        val_y=torch.zeros(0, dtype=torch.long),
        teacher=Classifier(cfg.distill.teacher) if cfg.distill.online else None,
    )
    model = build_model(cfg.model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.optim.ema_decay)
    lr = 0.1 * cfg.batch_size / 128
    groups = param_groups(model, 5e-4)
    opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, foreach=s.foreach)
    net = torch.compile(model) if s.compile else model
    T.train_one_epoch(net, ema, opt, data, cfg, 0, 0, [False])  # warm-up: oneDNN, compile
    return T.train_one_epoch(net, ema, opt, data, cfg, 1, 0, [False])["img_per_s"]


def scoring_seconds(cfg: TrainConfig) -> float:
    """Seconds to score PublicTest as the loop does after every epoch (flip TTA)."""
    size = cfg.model.input_size
    model = build_model(cfg.model).eval()
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (VAL_IMAGES, 1, size, size), dtype=torch.uint8)
    y = torch.randint(0, 7, (VAL_IMAGES,))
    evaluate(model, x[:512], y[:512], cfg.eval_batch)  # warm-up
    start = time.perf_counter()
    evaluate(model, x, y, cfg.eval_batch)
    return time.perf_counter() - start


def time_shares(s: Setting, steps: int) -> dict[str, float]:
    """Share of a training step's CPU time (torch.profiler, self time per op) spent in
    convolutions, in the network's other layers, and in the rest (augmentation, loss,
    optimiser, EMA, and autograd's own fills and copies)."""
    from torch.profiler import ProfilerActivity, profile

    groups = {
        "convolutions": ("conv",),
        "normalisation, activation, pooling": (
            "batch_norm",
            "threshold",
            "relu",
            "clamp_min",
            "pool",
            "linear",
            "mm",  # the linear layer's backward (and addmm)
        ),
    }
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        images_per_second(s, steps)
    shares = dict.fromkeys([*groups, "rest"], 0.0)
    for event in prof.key_averages():
        if event.key.startswith(("ProfilerStep", "autograd::engine")):
            continue  # wrappers: their children are counted
        group = next((g for g, keys in groups.items() if any(k in event.key for k in keys)), None)
        shares[group or "rest"] += event.self_cpu_time_total
    total = sum(shares.values())
    return {g: t / total for g, t in shares.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="vgg-s")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--size", type=int, default=48, help="input pixels per side")
    p.add_argument("--steps", type=int, default=30, help="batches per timing")
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--profile", action="store_true", help="where the fastest setting's time goes")
    p.add_argument("--emulated", action="store_true", help="time bf16 where it is emulated")
    p.add_argument("--teacher", nargs="*", default=[], help="ONNX teachers (or shipped names)")
    p.add_argument("--sam", type=float, default=0.0, help="also time SAM with this radius")
    args = p.parse_args()
    model = ModelConfig(name=args.model, width=args.width, input_size=args.size)
    base = TrainConfig(model=model, epochs=2)
    threads = torch.get_num_threads()
    fwd, step = macs_per_image(base)
    params = count_params(build_model(model)) / 1e6
    print(f"{args.model} width {args.width} at {args.size} px: {params:.2f} M params, ", end="")
    print(f"{fwd / 1e6:.0f} M MACs forward, {step / 1e6:.0f} M per training image")
    print(f"{cpu.summary()}; {threads} threads, nominal clock {cpu_facts()[1]:.2f} GHz")
    native = cpu.native_bf16(torch.device("cpu"))  # what `ferkit train --bf16` runs here
    gemm = {bf16: gemm_rate(bf16) for bf16 in (False, True) if native or not bf16}
    for bf16, rate in gemm.items():
        name = "bf16" if bf16 else "fp32"
        peak = nominal_peak(name, threads)
        share = f" ({rate / peak:.0%} of the nominal peak)" if peak else ""
        print(f"{name} 2048 x 2048 matrix product: {rate / 1e9:.1f} G MACs/s{share}")
    fastest = dataclasses.replace(base, bf16=native, channels_last=True)
    settings = [
        Setting(f"{'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'contiguous'}", c)
        for bf16, cl in ((False, False), (False, True), (True, False), (True, True))
        for c in [dataclasses.replace(base, bf16=bf16, channels_last=cl)]
    ]
    name = f"{'bf16' if native else 'fp32'} channels_last"
    settings += [
        Setting(f"{name}, SGD foreach", fastest, foreach=True),
        Setting(f"{name}, batch 256", dataclasses.replace(fastest, batch_size=256)),
    ]
    if args.compile:
        settings.append(Setting(f"{name}, torch.compile", fastest, compile=True))
    for teacher in args.teacher:
        online = dataclasses.replace(fastest, distill=DistillConfig(teacher=teacher, online=True))
        settings.append(Setting(f"{name}, online teacher {Path(teacher).name}", online))
    if args.sam > 0:
        sam = dataclasses.replace(fastest, optim=OptimConfig(sam_rho=args.sam))
        settings.append(Setting(f"{name}, SAM {args.sam}", sam))
    print(f"{'setting':40s} {'img/s':>7s} {'ratio':>6s} {'s/epoch':>8s} {'G MACs/s':>9s}", end="")
    print(f" {'of peak':>8s} {'of GEMM':>8s}")
    ref, fastest_rate = 0.0, 0.0
    for s in settings:
        precision = "bf16" if s.cfg.bf16 else "fp32"
        if s.cfg.bf16 and not native and not args.emulated:
            print(f"{s.label:40s} skipped: bf16 is emulated on this CPU (--emulated times it)")
            continue
        rate = images_per_second(s, args.steps)
        ref = ref or rate
        if s.cfg == fastest and not (s.foreach or s.compile):
            fastest_rate = rate
        macs = rate * step
        peak = nominal_peak(precision, threads)
        of_peak = f"{macs / peak:8.0%}" if peak else f"{'?':>8s}"
        of_gemm = f"{macs / gemm[s.cfg.bf16]:8.0%}" if s.cfg.bf16 in gemm else f"{'-':>8s}"
        print(f"{s.label:40s} {rate:7.0f} {rate / ref:5.2f}x {TRAIN_IMAGES / rate:8.1f}", end="")
        print(f" {macs / 1e9:9.1f} {of_peak} {of_gemm}")
    if args.profile:
        shares = time_shares(Setting(name, fastest), args.steps)
        print(f"{name}: " + ", ".join(f"{g} {v:.0%}" for g, v in shares.items()))
    scoring, epoch = scoring_seconds(fastest), TRAIN_IMAGES / fastest_rate
    print(f"PublicTest scored after each epoch ({VAL_IMAGES:,} faces, flip TTA, fp32): ", end="")
    print(f"{scoring:.1f} s, {scoring / (epoch + scoring):.0%} of an epoch of {name}")


if __name__ == "__main__":
    main()
