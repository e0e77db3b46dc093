"""`ferkit export SOURCE... --out FILE`: run folders and model files to one shipped file.

Two stages, one after the other, neither calling back into the other:
1. run folders to ONNX files (`torch_export`, needs torch): all runs alone export as one
   torch graph; runs mixed with model files, or to be chosen among, export one file each;
2. ONNX files to one file (no torch): members chosen on PublicTest (`choose`), fp32 members
   quantised (`quantize`), joined into one graph (`compose`), accuracies measured and
   recorded (`modelfile.scoring`).
A model file alone is quantised (`--int8`) or exported again with new views (`--tta`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.core.extras import require_torch
from ferkit.evaluation.evaluate import needs_export
from ferkit.export.choose import check_split, choose_models
from ferkit.export.compose import compose
from ferkit.export.quantize import calibration_images, quantize
from ferkit.modelfile.metadata import networks, read_metadata
from ferkit.modelfile.scoring import record_accuracies
from ferkit.modelfile.shipped import is_model_file, resolve_model


@dataclass(frozen=True)
class ExportConfig:
    sources: tuple[str, ...]  # run folders, .onnx files and shipped models' names
    out: Path
    tta: str | None = None  # None: the run folders' own (config `tta`); files keep theirs
    choose_on: str | None = None  # a validation split to choose the members on
    int8: bool = False
    data: Path | None = None  # calibration and measurement; default: the first run's data
    calib_images: int = 1024  # Training images int8 calibrates on


def run_export(cfg: ExportConfig) -> list[str]:
    """Write `cfg.out` from `cfg.sources`; returns the report's lines."""
    files = [s for s in cfg.sources if is_model_file(s)]
    runs = [Path(s) for s in cfg.sources if not is_model_file(s)]
    if files and len(cfg.sources) == 1 and not cfg.tta:  # quantise it (onnx, not torch)
        if not cfg.int8:
            raise FerkitError(
                f"{files[0]}: one model file alone needs --int8 or --tta (or more members)"
            )
        if not cfg.data:
            raise FerkitError("--int8 on a model file needs --data DIR for calibration images")
        return quantize_file(resolve_model(files[0])[0], cfg.out, cfg.data, cfg.calib_images)
    alone = bool(files) and len(cfg.sources) == 1  # one network, new views: torch rebuilds it
    if runs or alone:
        require_torch()
    tta = cfg.tta or (runs_tta(runs) if runs else "hflip")
    data = cfg.data or (run_data(runs[0]) if runs else None)
    if files:  # an ensemble grown from exported models (and runs): stage 1, then stage 2
        if alone:
            return export_new_views(files[0], cfg, tta, data)
        if cfg.choose_on:
            check_split(cfg.choose_on)  # before any run is exported
        if (cfg.choose_on or cfg.int8) and data is None:
            raise FerkitError("--choose-on and --int8 with model files need --data DIR")
        with tempfile.TemporaryDirectory() as tmp:
            paths, names = to_onnx_files(cfg.sources, Path(tmp), tta)
            return join_files(paths, names, cfg, data, Path(tmp))
    return export_runs(runs, cfg, tta, data)


def run_data(run: Path) -> Path:
    """The prepared cache a run was trained on (its config.json)."""
    from ferkit.training.runs import read_run_config

    return Path(read_run_config(run).data)


def runs_tta(runs: list[Path]) -> str:
    """The test-time views the run folders' recipes export with (their config's `tta`);
    `--tta` decides where they differ."""
    from ferkit.training.runs import read_run_config

    ttas = sorted({read_run_config(run).tta for run in runs})
    if len(ttas) > 1:
        raise FerkitError(f"the runs name different views ({', '.join(ttas)}): choose with --tta")
    return ttas[0]


def to_onnx_files(sources: Sequence[str], tmp: Path, tta: str) -> tuple[list[Path], list[str]]:
    """Stage 1: (ONNX files, member names); model files as they are (each checked first, so
    a bad one fails in one line before any export), run folders exported into `tmp`."""
    from ferkit.export.torch_export import export

    models = {s: resolve_model(s)[0] for s in sources if is_model_file(s)}
    for path in models.values():
        read_metadata(path)
    files, names = [], []
    for i, source in enumerate(sources):
        if source in models:
            files.append(models[source])
            names.append(Path(source).stem)
        else:
            files.append(tmp / f"{i}.onnx")
            names.append(Path(source).name)
            export(Path(source), files[-1], tta=tta)
    return files, names


def join_files(
    files: list[Path], names: list[str], cfg: ExportConfig, data: Path | None, tmp: Path
) -> list[str]:
    """Stage 2 (no torch): choose members on a validation split, quantise the fp32 members
    (`int8`), join them into `cfg.out`, measure it; returns the report's lines."""
    metas = [read_metadata(f) for f in files]
    lines: list[str] = []
    if cfg.choose_on and data is not None:
        weights = [networks(m) for m in metas]
        subset, lines = choose_models(files, names, data, cfg.choose_on, weights)
        files, names = [files[i] for i in subset], [names[i] for i in subset]
        metas = [metas[i] for i in subset]
    if cfg.int8 and data is not None:
        images = calibration_images(data, cfg.calib_images)
        for i, meta in enumerate(metas):
            if "quantization" not in meta:  # int8 members stay as they were calibrated
                quantized = tmp / f"int8-{i}.onnx"
                metas[i] = quantize(files[i], quantized, images)
                files[i] = quantized
    if len(files) == 1:  # nothing to average: the chosen file itself
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cfg.out) as dst:
            dst.write_bytes(files[0].read_bytes())
        meta = metas[0]
    else:
        meta = compose(files, cfg.out, names)
    mb = cfg.out.stat().st_size / 1e6
    lines.append(f"wrote {cfg.out} ({mb:.2f} MB, {networks(meta)} network(s), tta {meta['tta']})")
    if data is not None and (data / "cache.npz").is_file():
        lines.append(measured_line(record_accuracies(cfg.out, data)))
    return lines


def export_runs(runs: list[Path], cfg: ExportConfig, tta: str, data: Path | None) -> list[str]:
    """Run folders only: optionally the subset chosen on a validation split (each run
    exported alone to score it), then one torch graph of them, optionally int8."""
    from ferkit.export.torch_export import export

    lines: list[str] = []
    if cfg.choose_on:
        check_split(cfg.choose_on)
        with tempfile.TemporaryDirectory() as tmp:
            files, names = to_onnx_files([str(r) for r in runs], Path(tmp), tta)
            subset, lines = choose_models(files, names, data, cfg.choose_on)
        runs = [runs[i] for i in subset]
    target = cfg.out.with_name(f".{cfg.out.stem}.fp32.onnx") if cfg.int8 else cfg.out
    result = export(runs, target, tta=tta)
    return lines + finish(result, target, cfg, data, members=len(runs))


def export_new_views(model: str, cfg: ExportConfig, tta: str, data: Path | None) -> list[str]:
    """One exported network (a file or a shipped name) exported again with `tta` views."""
    from ferkit.export.torch_export import export_views

    if cfg.choose_on or (cfg.int8 and not data):
        why = "--choose-on needs two or more members" if cfg.choose_on else "--int8 needs --data"
        raise FerkitError(f"{model} --tta {tta}: {why}")
    target = cfg.out.with_name(f".{cfg.out.stem}.fp32.onnx") if cfg.int8 else cfg.out
    return finish(export_views(model, target, tta), target, cfg, data, members=1)


def finish(
    result: dict, target: Path, cfg: ExportConfig, data: Path | None, members: int
) -> list[str]:
    """After a torch export to `target`: the report, then int8 (`target` was a temporary
    fp32 file) or the accuracies training did not record."""
    meta = result["metadata"]
    several = f", {members} members" if members > 1 else ""
    lines = [
        f"wrote {target} ({result['bytes'] / 1e6:.2f} MB{several}), max |torch - onnx| = "
        f"{result['max_abs_diff']:.1e}, tta {meta['tta']}",
        f"training: {meta['training']}",
    ]
    if cfg.int8:
        try:
            return lines + quantize_file(target, cfg.out, data, cfg.calib_images)
        finally:
            target.unlink(missing_ok=True)
    has_data = data is not None and (data / "cache.npz").is_file()
    if (members > 1 or "accuracy_PublicTest" not in meta) and has_data:
        lines.append(measured_line(record_accuracies(cfg.out, data)))
    return lines


def quantize_file(fp32: Path, out: Path, data: Path, count: int) -> list[str]:
    """int8 of one fp32 file, calibrated on `count` Training images, measured on the cache."""
    meta = quantize(fp32, out, calibration_images(data, count), data_dir=data)
    lines = [f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {meta['quantization']}"]
    accs = ", ".join(
        f"{k.removeprefix('accuracy_')} {100 * float(v):.2f}%"
        for k, v in meta.items()
        if k.startswith("accuracy_")
    )
    if accs:
        lines.append(f"int8 accuracy: {accs}")
    return lines


def measured_line(accs: dict[str, float]) -> str:
    return "measured accuracy: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in accs.items())


def export_run_folders(specs: Sequence[str | None], tmp: Path) -> dict[str, Path]:
    """For `ferkit evaluate`: each run folder that has best.pt but no model.onnx
    (`needs_export`), exported into `tmp`; {spec: ONNX file}."""
    from ferkit.export.torch_export import export

    exported = {}
    for spec in filter(needs_export, specs):
        exported[spec] = tmp / f"{Path(spec).name}.onnx"
        export(Path(spec), exported[spec])
    return exported
