"""Run folders to ONNX files (torch): a run's best EMA model as a self-describing file;
several runs as one graph that averages their probabilities (an ensemble).

The file follows ferkit's model-file contract (`ferkit.modelfile.metadata`): input `image`
raw 0..255, output `probs`, labels, input size, test-time views (`Probabilities`) and the
training line in its metadata. Export fails unless ONNX Runtime reproduces the torch model
within 1e-4 on random inputs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.core.version import __version__
from ferkit.export.macs import count_macs
from ferkit.training.networks import ModelConfig, build_model
from ferkit.training.scoring import EVALUATED
from ferkit.training.views import Probabilities

PARITY_TOLERANCE = 1e-4  # max abs difference of probabilities, torch vs ONNX Runtime


def load_run_model(run: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The best-on-PublicTest EMA model of a run folder, and that checkpoint's state."""
    from ferkit.training.config import from_dict
    from ferkit.training.runs import BEST, load_checkpoint

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
    if c.get("init"):  # runs from before --init have no such key
        line += f", started from {Path(c['init']).name}"
    kd = c.get("distill") or {}
    teacher = Path(kd.get("teacher") or ".").name
    if teacher and kd.get("weight", 0) > 0:
        line += f", distilled from {teacher} (weight {kd['weight']}, T {kd['temperature']})"
    if teacher and kd.get("drop_below", 0) > 0:
        line += f", without the images {teacher} gives their label < {kd['drop_below']}"
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


def _contract(size: int, tta: str) -> dict[str, str]:
    """The metadata every export writes: labels, input size, views, ferkit's version."""
    return {
        "labels": json.dumps(list(LABELS)),
        "input_size": json.dumps([size, size]),
        "tta": tta,
        "ferkit_version": __version__,
    }


def recorded_accuracy(final: dict[str, Any], split: str, tta: str) -> float | None:
    """What training's final report (`final.json`) measured on `split` with `tta`'s views;
    None where it did not (the CLI measures the exported file when it has the data)."""
    scores = final.get(split)
    if not scores:
        return None
    if final.get("tta") == tta and "acc_views" in scores:  # the run's own views
        return scores["acc_views"]
    key = EVALUATED.get(tta)  # scored by every final report, before `acc_views` existed too
    return scores[key] if key else None


def _metadata(runs: list[Path], states: list[dict[str, Any]], size: int, tta: str) -> dict:
    """The contract's metadata; for one run, where training scored these views, also the
    PublicTest and PrivateTest accuracy it recorded, for an ensemble the member list (accuracies
    training did not measure are measured after export, `modelfile.scoring.record_accuracies`)."""
    finals = []
    for run in runs:
        path = run / "final.json"
        finals.append(json.loads(path.read_text()) if path.is_file() else None)
    lines = [training_line(s, f) for s, f in zip(states, finals, strict=True)]
    cfgs = [s["config"]["model"] for s in states]
    meta = _contract(size, tta)
    if len(runs) == 1:
        meta["training"], meta["architecture"] = lines[0], json.dumps(cfgs[0])
        for split in ("PublicTest", "PrivateTest"):
            acc = recorded_accuracy(finals[0] or {}, split, tta)
            if acc is not None:
                meta[f"accuracy_{split}"] = f"{acc:.4f}"
    else:
        meta["training"] = f"mean of {len(runs)} models' probabilities: " + " || ".join(lines)
        meta["architecture"] = json.dumps(cfgs)
        meta["members"] = json.dumps([r.name for r in runs])
    return meta


def export(
    runs: Path | list[Path], out: Path, tta: str = "hflip", opset: int = 20
) -> dict[str, Any]:
    """Export a run's best EMA model (or the mean of several runs' models) to `out`
    atomically; returns metadata and parity."""
    runs = [runs] if isinstance(runs, Path) else list(runs)
    loaded = [load_run_model(run) for run in runs]
    states = [state for _, state in loaded]
    sizes = {int(state["config"]["model"]["input_size"]) for state in states}
    if len(sizes) != 1:
        raise FerkitError(f"ensemble members need one input size, got {sorted(sizes)}")
    size = sizes.pop()
    members = [Probabilities(model, tta, size) for model, _ in loaded]
    wrapped = members[0] if len(members) == 1 else Ensemble(members)
    return _write_graph(wrapped, size, _metadata(runs, states, size, tta), out, opset)


def export_views(model: str, out: Path, tta: str, opset: int = 20) -> dict[str, Any]:
    """An exported single network (a file or a shipped model's name) exported again
    with other test-time views (`tta`), without its run folder: weights and architecture
    rebuilt from the file (`warmstart.rebuild_from_onnx`), its training line kept. The old
    accuracies were measured with the old views, so they are dropped (the CLI measures
    the new ones when it has data). An int8 file comes out fp32, its weights dequantised
    (`--int8` quantises the result again)."""
    from ferkit.modelfile.metadata import networks, read_metadata
    from ferkit.modelfile.shipped import resolve_model
    from ferkit.training.warmstart import rebuild_from_onnx

    path = resolve_model(model)[0]
    meta = read_metadata(path)
    if networks(meta) > 1:
        raise FerkitError(
            f"--tta {tta} {model}: an ensemble of {networks(meta)} networks; new views need "
            f"one network (export the members' run folders with --tta)"
        )
    cfg, net, _ = rebuild_from_onnx(model, flag=f"--tta {tta}")  # eval mode: as the file
    keep = ("labels", "input_size", "training", "architecture")
    meta = {**{k: meta[k] for k in keep if k in meta}, "tta": tta, "ferkit_version": __version__}
    wrapped = Probabilities(net.eval(), tta, cfg.input_size)
    return _write_graph(wrapped, cfg.input_size, meta, out, opset)


def export_network(
    net: nn.Module, cfg: ModelConfig, out: Path, training: str, tta: str = "none"
) -> dict[str, Any]:
    """One network without a run folder, with the contract's metadata and `training` as
    its line: `benchmarks/arch_speed.py` times architectures before anyone trains them."""
    meta = _contract(cfg.input_size, tta)
    meta |= {"training": training, "architecture": json.dumps(dataclasses.asdict(cfg))}
    wrapped = Probabilities(net.eval(), tta, cfg.input_size)
    return _write_graph(wrapped, cfg.input_size, meta, out, opset=20)


def _write_graph(
    wrapped: nn.Module, size: int, meta: dict[str, str], out: Path, opset: int
) -> dict[str, Any]:
    """Trace `wrapped` to ONNX with the contract's names and `meta`, check it against torch
    (`parity`) and write it to `out` atomically."""
    import onnx

    example = torch.rand(2, 1, size, size) * 255
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision not installed" noise
    with warnings.catch_warnings():  # torch's exporter calling its own deprecated pytree API
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
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
    meta = {**meta, "parameters": str(sum(p.numel() for p in wrapped.parameters()))}
    meta["macs"] = str(count_macs(proto))
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
