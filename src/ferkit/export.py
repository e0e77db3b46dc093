"""`ferkit export RUN_DIR [RUN_DIR ...] --out model.onnx`: a self-describing ONNX model;
several runs make one graph that averages their probabilities (an ensemble).

The contract any runtime can use without ferkit:
- input `image`: float32 [N, 1, H, W], raw grayscale 0..255 (normalisation is in the graph);
- output `probs`: float32 [N, 7], softmax probabilities in FER-2013 label order;
- metadata_props: `labels` (JSON list), `input_size` (JSON [H, W]), `tta` ("hflip" or
  "none"), `ferkit_version`, `training` (one line), `architecture` (JSON model config),
  and the run's PublicTest/PrivateTest accuracy when known.
Export fails unless ONNX Runtime reproduces the torch model within 1e-4 on random inputs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferkit import __version__
from ferkit.atomic import atomic_path
from ferkit.emotions import LABELS
from ferkit.errors import FerkitError
from ferkit.models import build_model

PARITY_TOLERANCE = 1e-4  # max abs difference of probabilities, torch vs ONNX Runtime


class Probabilities(nn.Module):
    """Softmax of the model, optionally averaged with the horizontally mirrored image."""

    def __init__(self, model: nn.Module, tta: bool) -> None:
        super().__init__()
        self.model, self.tta = model, tta
        self.eval()  # the wrapper too: the exporter restores the wrapper's mode recursively

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        p = F.softmax(self.model(image), dim=1)
        if self.tta:
            p = 0.5 * (p + F.softmax(self.model(torch.flip(image, dims=[3])), dim=1))
        return p


def load_run_model(run: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The best-on-PublicTest EMA model of a run folder, and that checkpoint's state."""
    from ferkit.config import from_dict
    from ferkit.runs import BEST, load_checkpoint

    state = load_checkpoint(run / BEST)
    cfg = from_dict(state["config"])
    model = build_model(cfg.model)
    model.load_state_dict(state["ema"])
    return model.eval(), state


def _data_line(data_dir: str) -> str:
    """What the model was fitted on, from the cache manifest when it is still there."""
    from ferkit.data.cache import read_manifest

    manifest = read_manifest(Path(data_dir)) or {}
    counts, source = manifest.get("counts", {}).get("Training"), manifest.get("source")
    if not counts or not source:
        return f"Training split of {data_dir}"
    return f"Training split ({sum(counts.values()):,} images) of {Path(source).name}"


def training_line(state: dict[str, Any], final: dict[str, Any] | None) -> str:
    """One line saying what data, schedule and recipe produced the weights."""
    c = state["config"]
    m, o = c["model"], c["optim"]
    line = (
        f"{_data_line(c['data'])}, {m['name']} width {m['width']}, {c['epochs']} epochs "
        f"(best PublicTest epoch {state['best']['epoch']}), SGD nesterov lr {o['lr']}/128 img "
        f"batch {c['batch_size']}, wd {o['weight_decay']}, cosine, warm-up {o['warmup_epochs']}, "
        f"label smoothing {o['label_smoothing']}, EMA {o['ema_decay']}, seed {c['seed']}"
    )
    if final and "PrivateTest" in final:
        line += f"; PrivateTest acc {final['PrivateTest']['acc_tta']:.4f} (flip TTA)"
    return line


class Ensemble(nn.Module):
    """The mean of several models' probabilities: one graph, one input, one output."""

    def __init__(self, members: list[Probabilities]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(image) for m in self.members]).mean(0)


def _metadata(runs: list[Path], states: list[dict[str, Any]], size: int, tta: bool) -> dict:
    """The contract's metadata; for one run also its recorded PublicTest/PrivateTest
    accuracy, for an ensemble the member list (its accuracy is measured after export)."""
    finals = []
    for run in runs:
        path = run / "final.json"
        finals.append(json.loads(path.read_text()) if path.is_file() else None)
    lines = [training_line(s, f) for s, f in zip(states, finals, strict=True)]
    cfgs = [s["config"]["model"] for s in states]
    meta = {
        "labels": json.dumps(list(LABELS)),
        "input_size": json.dumps([size, size]),
        "tta": "hflip" if tta else "none",
        "ferkit_version": __version__,
    }
    if len(runs) == 1:
        meta["training"], meta["architecture"] = lines[0], json.dumps(cfgs[0])
        for split in ("PublicTest", "PrivateTest"):
            if finals[0] and split in finals[0]:
                key = "acc_tta" if tta else "acc"
                meta[f"accuracy_{split}"] = f"{finals[0][split][key]:.4f}"
    else:
        meta["training"] = f"mean of {len(runs)} models' probabilities: " + " || ".join(lines)
        meta["architecture"] = json.dumps(cfgs)
        meta["members"] = json.dumps([r.name for r in runs])
    return meta


def export(runs: Path | list[Path], out: Path, tta: bool = True, opset: int = 20) -> dict[str, Any]:
    """Export a run's best EMA model (or the mean of several runs' models) to `out`
    atomically; returns metadata and parity."""
    import onnx

    runs = [runs] if isinstance(runs, Path) else list(runs)
    loaded = [load_run_model(run) for run in runs]
    states = [state for _, state in loaded]
    sizes = {int(state["config"]["model"]["input_size"]) for state in states}
    if len(sizes) != 1:
        raise FerkitError(f"ensemble members need one input size, got {sorted(sizes)}")
    size = sizes.pop()
    members = [Probabilities(model, tta) for model, _ in loaded]
    wrapped = members[0] if len(members) == 1 else Ensemble(members)
    example = torch.rand(2, 1, size, size) * 255
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision not installed" noise
    program = torch.onnx.export(
        wrapped,
        (example,),
        input_names=["image"],
        output_names=["probs"],
        dynamic_shapes=({0: torch.export.Dim("N")},),
        opset_version=opset,
        dynamo=True,
        verbose=False,
    )
    proto = program.model_proto
    meta = _metadata(runs, states, size, tta)
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    max_diff = parity(wrapped, data, size)
    if not max_diff < PARITY_TOLERANCE:
        raise FerkitError(
            f"{out}: ONNX output differs from torch by {max_diff:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e}); not written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return {"metadata": meta, "max_abs_diff": max_diff, "bytes": len(data)}


def record_accuracies(model: Path, data_dir: Path) -> dict[str, float]:
    """Measure an exported model on the cache's PublicTest/PrivateTest and write the numbers
    into its metadata (atomically), as single-run exports carry theirs from final.json."""
    import onnx

    from ferkit.evaluate import split_accuracies

    accs = split_accuracies(model, data_dir)
    proto = onnx.load(str(model))
    meta = {p.key: p.value for p in proto.metadata_props}
    meta.update({f"accuracy_{k}": f"{v:.4f}" for k, v in accs.items()})
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, meta)
    with atomic_path(model) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return accs


def parity(wrapped: nn.Module, onnx_bytes: bytes, size: int, seed: int = 0) -> float:
    """Max abs difference between torch and ONNX Runtime on random batches of 1 and 16."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in (1, 16):
        x = torch.rand(n, 1, size, size, generator=gen) * 255
        with torch.no_grad():
            expected = wrapped.eval()(x).numpy()
        got = session.run(["probs"], {"image": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst
