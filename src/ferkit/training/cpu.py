"""What the training CPU can do fast, so a recipe's flags do not silently cost 10x."""

from __future__ import annotations

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast runs in hardware on `device`: a CUDA GPU, or a CPU with AVX-512
    BF16 or AMX. Other CPUs emulate it in software: on a 2-core AVX2 CPU a VGG-32 trained at
    8 images/s in bf16 against 86 in fp32 (`python benchmarks/train_speed.py`)."""
    if device.type != "cpu":
        return True
    # torch's own feature probes (private API); a torch without them: trust the flag.
    probes = [
        getattr(torch.cpu, name, None)
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    found = [probe for probe in probes if probe is not None]
    return not found or any(probe() for probe in found)


def summary() -> str:
    """One line for logs and benchmarks: torch's CPU kernel level and what bf16 costs."""
    level = torch.backends.cpu.get_cpu_capability()
    if native_bf16(torch.device("cpu")):
        return f"CPU kernels {level}, bf16 in hardware"
    return f"CPU kernels {level}, no AVX-512 BF16 or AMX: bf16 is emulated, about 10x slower"
