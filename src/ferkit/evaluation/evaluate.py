"""`ferkit evaluate`: score ONNX models on a prepared split and write a report.

One model: metrics.json, confusion_matrix.png, per_class.png, reliability.png,
mistakes.png, report.html (self-contained) and report.md; a training run folder also gets
its curves. probabilities.npy keeps the model's [N, 7] answers in the split's order, which
is what `ferkit train --set distill.teacher=probabilities.npy` distils from (scored on
Training). With `corruptions`, FER-2013-C too (`ferkit.evaluation.robustness`):
corruptions.json and corruptions.png, and its tables in the report. Several models: the
same per model in sub-folders, plus a side-by-side table (with mCA when scored) and exact
McNemar tests between every pair (comparison.json, comparison.md).
Everything goes through `ferkit.modelfile.Classifier`, the path `predict` uses; no torch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.atomic import atomic_path, write_text
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.data import load_cache
from ferkit.evaluation import plots, robustness
from ferkit.evaluation.metrics import (
    accuracy,
    balanced_accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    mcnemar,
    negative_log_likelihood,
    per_class,
)
from ferkit.evaluation.report import comparison_markdown, write_report
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.shipped import SHIPPED_MODELS


@dataclass(frozen=True)
class EvalConfig:
    data: Path  # a cache written by `ferkit data prepare`
    split: str = "PrivateTest"
    out: Path | None = None
    batch: int = 256
    mistakes: int = 24  # faces in mistakes.png
    corruptions: bool = False  # also score FER-2013-C (27 corrupted copies of the split)
    corruption_seed: int = 0  # FER-2013-C's seed: the same seed, the same images


@dataclass
class Evaluation:
    name: str
    classifier: Classifier
    probs: np.ndarray  # [N, 7]
    seconds: float  # classification time of the whole split
    metrics: dict[str, Any]
    run_dir: Path | None = None


def compute_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Every number of the report, JSON-ready, from probabilities and true labels."""
    cm = confusion_matrix(y, probs.argmax(1), len(LABELS))
    pc = per_class(cm)
    ece, bins = expected_calibration_error(probs, y)
    return {
        "n": len(y),
        "accuracy": accuracy(cm),
        "balanced_accuracy": balanced_accuracy(cm),
        "macro_f1": macro_f1(cm),
        "ece": ece,
        "nll": negative_log_likelihood(probs, y),
        "per_class": {
            label: {k: float(pc[k][i]) if k != "support" else int(pc[k][i]) for k in pc}
            for i, label in enumerate(LABELS)
        },
        "labels": list(LABELS),
        "confusion_matrix": cm.tolist(),
        "calibration_bins": bins,
    }


def needs_export(spec: str | None) -> bool:
    """True for a run folder with best.pt but no model.onnx: it is evaluated only once
    exported (`ferkit.export.pipeline.export_run_folders`, torch)."""
    if spec is None or spec in SHIPPED_MODELS:
        return False
    path = Path(spec)
    return (path / "best.pt").is_file() and not (path / "model.onnx").is_file()


def resolve(
    spec: str | None, exported: Mapping[str, Path]
) -> tuple[str | Path | None, Path | None]:
    """(ONNX file, run folder or None) for a model argument: a shipped model's name (None:
    the default), an ONNX file or a run folder. A run folder is evaluated through its
    `model.onnx`, or the file `exported` has for it (`ferkit.export.pipeline`, torch)."""
    if spec is None or spec in SHIPPED_MODELS:
        return spec, None  # Classifier checks a shipped model's recorded SHA-256
    path = Path(spec)
    if not path.is_dir():
        return path, None
    if (path / "model.onnx").is_file():
        return path / "model.onnx", path
    if spec in exported:
        return exported[spec], path
    if not (path / "best.pt").is_file():
        raise FerkitError(f"{path}: neither an .onnx file nor a run folder with best.pt")
    raise FerkitError(
        f"{path}: a run folder needs torch to export it, or model.onnx inside "
        f"(ferkit export {path} --out {path / 'model.onnx'})"
    )


def evaluate_one(
    name: str,
    clf: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    cfg: EvalConfig,
    run_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Score `clf` on (x, y), and on FER-2013-C when cfg.corruptions (`progress(1)` after
    each corrupted copy)."""
    clf.classify(x[: cfg.batch], batch=cfg.batch)  # warm-up, so faces/s is the steady rate
    start = time.perf_counter()
    probs = clf.classify(x, batch=cfg.batch)
    seconds = time.perf_counter() - start
    metrics = compute_metrics(probs, y)
    metrics["faces_per_s"] = len(y) / seconds
    if cfg.corruptions:
        corrupted = robustness.corrupted_probs(
            lambda faces: clf.classify(faces, batch=cfg.batch), x, cfg.corruption_seed, progress
        )  # the clean probabilities are those above, not computed again
        metrics["corruptions"] = robustness.summarise(probs, corrupted, y, cfg.corruption_seed)
    metrics["model"] = {
        "name": name,
        "path": str(clf.info.path),
        "sha256": clf.info.sha256,
        "bytes": clf.info.path.stat().st_size,
        "metadata": clf.info.metadata,
    }
    return Evaluation(name, clf, probs, seconds, metrics, run_dir)


def compare(evals: list[Evaluation], y: np.ndarray) -> dict[str, Any]:
    """Side-by-side headline numbers and McNemar's test for every pair of models."""
    rows = [
        {
            "model": e.name,
            **{k: e.metrics[k] for k in ("accuracy", "macro_f1", "ece", "nll", "faces_per_s")},
            "megabytes": e.metrics["model"]["bytes"] / 1e6,
            **({"mca": e.metrics["corruptions"]["mca"]} if "corruptions" in e.metrics else {}),
        }
        for e in evals
    ]
    pairs = []
    for a, b in combinations(evals, 2):
        test = mcnemar(a.probs.argmax(1) == y, b.probs.argmax(1) == y)
        pairs.append({"a": a.name, "b": b.name, **test})
    return {"models": rows, "mcnemar": pairs}


def _names(specs: list[str | None]) -> list[str]:
    """Display names: file stem (or run folder name), made unique."""
    names = []
    for spec in specs:
        base = "shipped" if spec is None else Path(spec).stem or Path(spec).name
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def run_evaluation(
    specs: list[str | None],
    cfg: EvalConfig,
    exported: Mapping[str, Path] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Evaluation], dict | None]:
    """Evaluate each model on the split; write reports under cfg.out when given.
    `exported`: ONNX files for run folders that have none inside (see `resolve`);
    `progress(1)` after each FER-2013-C condition of each model."""
    cache = load_cache(cfg.data)
    x, y = cache.split(cfg.split)
    names = _names(specs)
    evals = []
    for name, spec in zip(names, specs, strict=True):
        model, run_dir = resolve(spec, exported or {})
        evals.append(evaluate_one(name, Classifier(model), x, y, cfg, run_dir, progress))
        evals[-1].metrics["split"] = cfg.split
        evals[-1].metrics["data"] = {
            "dir": str(cfg.data),
            "source_sha256": cache.manifest.get("source_sha256"),
        }
    comparison = compare(evals, y) if len(evals) > 1 else None
    if cfg.out:
        write_reports(evals, comparison, x, y, cfg)
    return evals, comparison


def write_reports(
    evals: list[Evaluation],
    comparison: dict | None,
    x: np.ndarray,
    y: np.ndarray,
    cfg: EvalConfig,
) -> None:
    """Per model: metrics.json, figures, report.html/.md (in a sub-folder when several);
    comparison.json/.md for several."""
    for e in evals:
        out = cfg.out if len(evals) == 1 else cfg.out / e.name
        out.mkdir(parents=True, exist_ok=True)
        m = e.metrics
        cm = np.array(m["confusion_matrix"])
        figures = {
            "confusion_matrix": plots.confusion_figure(
                cm, out / "confusion_matrix.png", f"{e.name} on {cfg.split} (n={m['n']:,})"
            ),
            "per_class": plots.per_class_figure(per_class(cm), out / "per_class.png"),
            "reliability": plots.reliability_figure(
                m["calibration_bins"], m["ece"], out / "reliability.png"
            ),
            "mistakes": plots.mistakes_grid(x, y, e.probs, out / "mistakes.png", cfg.mistakes),
        }
        if "corruptions" in m:
            figures["corruptions"] = plots.corruption_figure(
                m["corruptions"], out / "corruptions.png", f"{e.name} on {cfg.split}-C"
            )
            write_text(out / "corruptions.json", json.dumps(m["corruptions"], indent=2) + "\n")
        if e.run_dir is not None and (e.run_dir / "metrics.csv").is_file():
            figures["curves"] = plots.training_curves(e.run_dir / "metrics.csv", out / "curves.png")
        write_text(out / "metrics.json", json.dumps(m, indent=2) + "\n")
        with atomic_path(out / "probabilities.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, e.probs.astype(np.float32))
        write_report(out, m, figures)
    if comparison:
        write_text(cfg.out / "comparison.json", json.dumps(comparison, indent=2) + "\n")
        write_text(cfg.out / "comparison.md", comparison_markdown(comparison, cfg.split))
