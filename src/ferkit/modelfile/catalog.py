"""The shipped emotion models as one table (`ferkit models`), and what a face costs on them.

Everything in a row comes from the model file itself (its metadata, size and SHA-256), so
the table cannot disagree with what `--model NAME` loads; `faces_per_second` measures the
speed column on this machine, with the one inference path (`Classifier`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import SHIPPED_MODELS, shipped_model_path


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model, as its file describes itself."""

    name: str  # what --model takes
    file: str  # in ferkit/weights/
    architecture: str  # e.g. "vgg-s w64", or "3x vgg-s w32 + vgg-s w64" for an ensemble
    parameters: int | None  # learnt weights over all networks; None: not recorded
    macs: int | None  # multiply-accumulates per face, views and members included
    megabytes: float  # file size, MB (10^6 bytes)
    tta: str  # test-time views averaged inside the graph
    precision: str  # "int8" or "fp32"
    public_test: float | None  # recorded accuracy, %: where the model was chosen
    private_test: float | None  # recorded accuracy, %: reported once
    sha256: str


def _network(arch: dict) -> str:
    """`vgg-s w32`, with its photometric layer when it has one: `vgg-s w32 (equalize)`, and
    `whitened` after the width for a whitened first layer."""
    layer = arch.get("photometric", "none")  # absent: exported before the layer existed
    name = f"{arch['name']} w{arch['width']}" + (" whitened" if arch.get("whiten") else "")
    return name + ("" if layer == "none" else f" ({layer})")


def architecture_line(meta: dict[str, str]) -> str:
    """A model's networks in a few words, from its `architecture` metadata."""
    arch = json.loads(meta.get("architecture", "null"))
    nets = arch if isinstance(arch, list) else [arch]
    names = [_network(a) if isinstance(a, dict) else "?" for a in nets]
    counts = Counter(names)  # keeps the first-seen order
    return " + ".join(name if n == 1 else f"{n}x {name}" for name, n in counts.items())


def _percent(meta: dict[str, str], split: str) -> float | None:
    value = meta.get(f"accuracy_{split}")
    return round(100 * float(value), 2) if value else None


def describe(name: str) -> ShippedModel:
    """The row of one shipped model (checked against its recorded SHA-256 on loading)."""
    clf = Classifier(name)
    meta = clf.info.metadata
    return ShippedModel(
        name=name,
        file=SHIPPED_MODELS[name],
        architecture=architecture_line(meta),
        parameters=int(meta["parameters"]) if "parameters" in meta else None,
        macs=int(meta["macs"]) if "macs" in meta else None,
        megabytes=round(clf.info.path.stat().st_size / 1e6, 2),
        tta=clf.info.tta,
        precision="int8" if "quantization" in meta else "fp32",
        public_test=_percent(meta, "PublicTest"),
        private_test=_percent(meta, "PrivateTest"),
        sha256=clf.info.sha256,
    )


def shipped_models() -> list[ShippedModel]:
    """Every emotion model shipped in this installation, in `SHIPPED_MODELS` order."""
    names = [n for n, file in SHIPPED_MODELS.items() if shipped_model_path(file).is_file()]
    return [describe(n) for n in names]


def faces_per_second(clf: Classifier, batch: int, seconds: float = 2.0, seed: int = 0) -> float:
    """Faces classified per second at `batch` faces per call on 48x48 crops, timed for
    about `seconds` after one warm-up call (at least 2 calls): a slow ensemble is timed as
    long as a fast network, not over a fixed count. Content does not change the cost."""
    h, w = clf.info.input_size
    faces = np.random.default_rng(seed).integers(0, 256, (batch, h, w), dtype=np.uint8)
    clf.classify(faces, batch=batch)  # warm-up: ONNX Runtime allocates on the first call
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        clf.classify(faces, batch=batch)
        calls += 1
    return calls * batch / (time.perf_counter() - start)
