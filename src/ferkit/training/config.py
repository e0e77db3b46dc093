"""Training configuration: frozen dataclasses with units, a TOML file, CLI overrides.

Overrides are dotted keys (`model.width=64`, `optim.lr=0.05`, `epochs=90`); values are
parsed to the type of the field they replace, so a typo fails loudly instead of silently.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferkit.core.errors import FerkitError
from ferkit.training.augment import AugmentConfig
from ferkit.training.networks import ModelConfig
from ferkit.training.recipes import RECIPES, recipe_names


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 0.1  # SGD learning rate per batch of 128 images; scaled linearly with batch
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # L2 on conv/linear weights only, not BatchNorm or biases
    warmup_epochs: float = 2.0  # linear warm-up from 0, then cosine to 0 at the last step
    label_smoothing: float = 0.1
    ema_decay: float = 0.999  # per optimiser step; the EMA weights are evaluated and exported
    sam_rho: float = 0.0  # SAM's radius (L2, in weight space); 0 = plain SGD, >0 costs 2x


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation from an ONNX teacher (`ferkit.training.distill`)."""

    # ONNX model following ferkit's contract, or a .npy of its Training probabilities (offline
    # only: `ferkit evaluate TEACHER --split Training` writes one); "" = no distillation
    teacher: str = ""
    weight: float = 0.7  # share of the loss taken by the teacher's soft targets
    temperature: float = 1.0  # >1 softens both distributions (T^2 keeps gradient scale)
    online: bool = False  # score every augmented batch (teacher forward per step), not once
    # Drop Training images whose label gets a teacher probability below this (0..1): the
    # likeliest label noise. 0 keeps every image; weight 0 uses the teacher for this alone.
    drop_below: float = 0.0
    # Give an image the teacher's top class instead of its label when the teacher gives that
    # class at least this (0..1), before drop_below. 0 keeps every label.
    relabel_above: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    data: str = "data/fer2013"  # directory written by `ferkit data prepare`
    out: str = "runs/default"  # run folder: config, metrics, curves, checkpoints
    epochs: int = 30
    batch_size: int = 128  # images per optimiser step, summed over DDP processes
    seed: int = 0
    device: str = "cpu"  # "cpu" or "cuda"
    threads: int = 0  # torch intra-op threads per process; 0 = cores / processes
    bf16: bool = False  # bf16 autocast for the forward pass
    channels_last: bool = False  # NHWC memory layout
    eval_batch: int = 512  # images per evaluation batch
    # Score PublicTest (the EMA weights, plain and flip TTA) only in the last N epochs, where
    # a decaying schedule puts the best one; 0 = every epoch. Each score costs two passes
    # over PublicTest's 3,589 faces (docs/training.md, "Less scoring").
    eval_last: int = 0
    # Test-time views (`ferkit.modelfile.metadata.TTA_MODES`) that `ferkit export` puts in
    # this run's file and that the final report scores the best epoch with (`acc_views`).
    # The epochs are chosen with flip TTA whatever this says: other views cost more passes.
    tta: str = "hflip"
    train_limit: int = 0  # a seeded random N of the Training images (0 = all), for smoke runs
    # Pixels a side the network sees: the faces are resized to it on loading (area
    # interpolation, as inference resizes a crop). 0: --init's size, else the data's.
    input_size: int = 0
    # Progressive resizing: the first `small_epochs` epochs train on the augmented batches
    # resized to `small_size` px a side (bilinear, antialiased), at (small / input)^2 of the
    # MACs per image; the later epochs and every evaluation see the full size.
    small_epochs: int = 0  # 0 = off
    small_size: int = 32
    # An exported single-network ONNX (file or shipped name, e.g. "default") to start from:
    # its architecture and normalisation replace `model`, its weights the random init.
    init: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)


def _parse(value: Any, like: Any, key: str) -> Any:
    """Convert `value` (a CLI string or a TOML value) to the type of the default `like`."""
    if not isinstance(value, str):
        if isinstance(like, tuple):
            value = tuple(value)
        if isinstance(like, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(like):
            raise FerkitError(f"config {key}: expected {type(like).__name__}, got {value!r}")
        return value
    try:
        if isinstance(like, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if isinstance(like, tuple):
            return tuple(type(like[0])(v) for v in value.split(","))
        return type(like)(value)
    except ValueError:
        raise FerkitError(f"config {key}: '{value}' is not a {type(like).__name__}") from None


def apply_overrides(cfg: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """Return `cfg` with dotted-key `overrides` applied to nested frozen dataclasses."""
    nested: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise FerkitError(
                f"unknown config key '{prefix}{key}'; known: {', '.join(sorted(names))}"
            )
        current = getattr(cfg, head)
        if rest:
            nested.setdefault(head, {})[rest] = value
        elif dataclasses.is_dataclass(current):
            nested.setdefault(head, {}).update(_flatten(value))
        else:
            direct[head] = _parse(value, current, prefix + key)
    for head, sub in nested.items():
        direct[head] = apply_overrides(getattr(cfg, head), sub, f"{prefix}{head}.")
    return dataclasses.replace(cfg, **direct)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Dotted-key overrides from a TOML file (tables [model], [optim], [augment]), or from
    a shipped recipe when `path` is one's name and no such file exists."""
    if not Path(path).exists() and str(path) in recipe_names():
        path = RECIPES / f"{path}.toml"
    try:
        with open(path, "rb") as f:
            return _flatten(tomllib.load(f))
    except FileNotFoundError:
        known = ", ".join(recipe_names())
        raise FerkitError(f"{path}: no such config file or shipped recipe ({known})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FerkitError(f"{path}: invalid TOML ({exc})") from None


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from `dataclasses.asdict` output (a run folder's config.json);
    a run from before the photometric layer existed trained without one."""
    flat = _flatten(data)
    if any(k.startswith("model.") for k in flat):
        flat.setdefault("model.photometric", "none")
    return apply_overrides(TrainConfig(), flat)
