"""One ONNX graph averaging exported ferkit models: ensembles from files, not only from runs.

`ferkit export accurate runs/mine --tta views8 --out mine.onnx` joins exported models (files
or shipped names) and runs (exported here first) into one graph with one input `image` and
one output `probs`, the mean over every network inside: a member that is itself an ensemble
of 4 counts 4 times, so adding a network to `accurate` gives exactly the mean of 5 networks,
as if all five runs had been exported together. Members keep their own graphs: int8 ones
stay int8, each keeps its own test-time views. Run folders get lost with machines; exported
files are what lasts, so ensembles are grown from those.

Needs the `onnx` package (`ferkit[train]`), not torch (unless a member is a run folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.atomic import atomic_path
from ferkit.errors import FerkitError

_MEAN_PREFIX = re.compile(r"^mean of \d+ models' probabilities: ")
# metadata each member must agree on: the contract the joined graph keeps
_SHARED_KEYS = ("labels", "input_size")


def read_metadata(path: Path) -> dict[str, str]:
    """A model file's metadata, or a one-line error for what is not a ferkit model."""
    import onnx

    if not path.is_file():
        raise FerkitError(f"{path}: no such model file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends for non-ONNX bytes
        raise FerkitError(f"{path}: not an ONNX model ({str(exc).splitlines()[0]})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if any(key not in meta for key in _SHARED_KEYS):
        raise FerkitError(f"{path}: not a ferkit model (metadata lacks labels or input_size)")
    return meta


def networks(meta: dict[str, str]) -> int:
    """How many networks a model file averages (1 for a single network)."""
    return len(json.loads(meta["members"])) if "members" in meta else 1


def _parts(meta: dict[str, str], name: str) -> tuple[list[str], list[str], list[Any]]:
    """(member names, training lines, architectures) of one file, ensembles flattened."""
    lines = _MEAN_PREFIX.sub("", meta.get("training", "")).split(" || ")
    archs = json.loads(meta.get("architecture", "null"))
    if "members" in meta:
        names = json.loads(meta["members"])
        archs = archs if isinstance(archs, list) else [archs] * len(names)
    else:
        names, archs = [name], [archs]
    if len(lines) != len(names):
        lines = [meta.get("training", "")] * len(names)
    return names, lines, archs


def _metadata(metas: list[dict[str, str]], names: list[str]) -> dict[str, str]:
    """The joined graph's metadata: the shared contract, members and their lines flattened."""
    for key in _SHARED_KEYS:
        values = {m[key] for m in metas}
        if len(values) > 1:
            raise FerkitError(f"members disagree on {key}: {' vs '.join(sorted(values))}")
    flat: list[tuple[list[str], list[str], list[Any]]] = [
        _parts(m, n) for m, n in zip(metas, names, strict=True)
    ]
    member_names = [x for part in flat for x in part[0]]
    ttas = dict.fromkeys(m.get("tta", "none") for m in metas)  # ordered, unique
    meta = {
        "labels": metas[0]["labels"],
        "input_size": metas[0]["input_size"],
        "tta": "+".join(ttas),
        "ferkit_version": metas[0].get("ferkit_version", ""),
        "training": f"mean of {len(member_names)} models' probabilities: "
        + " || ".join(x for part in flat for x in part[1]),
        "architecture": json.dumps([x for part in flat for x in part[2]]),
        "members": json.dumps(member_names),
    }
    quantized = [
        f"{n}: {m['quantization']}"
        for m, n in zip(metas, names, strict=True)
        if "quantization" in m
    ]
    if quantized:
        meta["quantization"] = "; ".join(quantized)
    return meta


def compose(models: list[Path], out: Path, names: list[str] | None = None) -> dict[str, str]:
    """Write one graph averaging `models` (weighted by the networks each holds) to `out`
    atomically; returns its metadata. `names` label the members (default: file stems)."""
    import onnx
    from onnx import TensorProto, helper

    names = names or [p.stem for p in models]
    metas = [read_metadata(p) for p in models]
    meta = _metadata(metas, names)
    protos = [onnx.load(str(p)) for p in models]
    opsets: dict[str, int] = {}
    for proto in protos:
        for o in proto.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    main = opsets.get("", 0)
    counts = [networks(m) for m in metas]
    nodes, inits, infos = [], [], []
    for i, proto in enumerate(protos):
        if proto.functions:
            raise FerkitError(f"{models[i]}: graphs with local functions cannot be joined")
        own = {o.domain: o.version for o in proto.opset_import}.get("", main)
        if own != main:
            proto = onnx.version_converter.convert_version(proto, main)
        graph = onnx.compose.add_prefix(proto, f"m{i}_").graph
        nodes.append(helper.make_node("Identity", ["image"], [f"m{i}_image"]))
        nodes.extend(graph.node)
        inits.extend(graph.initializer)
        infos.extend(graph.value_info)
        weight = np.float32(counts[i] / sum(counts))  # a share of the networks, not of files
        inits.append(helper.make_tensor(f"m{i}_share", TensorProto.FLOAT, [], [weight]))
        nodes.append(helper.make_node("Mul", [f"m{i}_probs", f"m{i}_share"], [f"m{i}_part"]))
    nodes.append(helper.make_node("Sum", [f"m{i}_part" for i in range(len(protos))], ["probs"]))
    first = protos[0].graph
    image = next(v for v in first.input if v.name == "image")
    probs = next(v for v in first.output if v.name == "probs")
    graph = helper.make_graph(nodes, "ferkit_mean", [image], [probs], inits, value_info=infos)
    joined = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        ir_version=max(p.ir_version for p in protos),
        producer_name="ferkit",
    )
    onnx.helper.set_model_props(joined, meta)
    onnx.checker.check_model(joined)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(joined.SerializeToString())
    return meta


def is_model_file(source: str) -> bool:
    """True for an exported model (an .onnx file or a shipped model's name), False for a
    run folder."""
    from ferkit.infer import SHIPPED_MODELS

    return source.endswith(".onnx") or (source in SHIPPED_MODELS and not Path(source).is_dir())


def gather(
    sources: list[str], tmp: Path, tta: str
) -> tuple[list[Path], list[str], list[dict[str, str]]]:
    """(ONNX files, member names, their metadata): model files and shipped models as they
    are, run folders exported into `tmp` with `tta` views."""
    from ferkit.infer import resolve_model

    files, names, metas = [], [], []
    for i, source in enumerate(sources):
        if is_model_file(source):
            path, name = resolve_model(source)[0], Path(source).stem
        else:
            from ferkit.export import export

            path, name = tmp / f"{i}.onnx", Path(source).name
            export(Path(source), path, tta=tta)
        metas.append(read_metadata(path))  # a bad file fails in one line before later exports
        files.append(path)
        names.append(name)
    return files, names, metas


def join(
    sources: list[str],
    out: Path,
    tta: str,
    choose_on: str | None,
    data: Path | None,
    int8: bool,
    calib_images: int = 1024,
) -> list[str]:
    """`ferkit export` with model files among the sources: gather, optionally choose the
    members on a validation split, quantise the fp32 members (`int8`), join; returns the
    report's lines."""
    import tempfile

    from ferkit.choose import check_split, choose_models

    if choose_on:
        check_split(choose_on)  # before any run is exported
    if (choose_on or int8) and data is None:
        raise FerkitError("--choose-on and --int8 with model files need --data DIR")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        files, names, metas = gather(sources, tmp, tta)
        if choose_on and data is not None:
            weights = [networks(m) for m in metas]
            subset, lines = choose_models(files, names, data, choose_on, weights)
            files, names = [files[i] for i in subset], [names[i] for i in subset]
            metas = [metas[i] for i in subset]
        if int8 and data is not None:
            from ferkit.quantize import calibration_images, quantize

            images = calibration_images(data, calib_images)
            for i, meta in enumerate(metas):
                if "quantization" not in meta:  # int8 members stay as they were calibrated
                    quantized = tmp / f"int8-{i}.onnx"
                    metas[i] = quantize(files[i], quantized, images)
                    files[i] = quantized
        if len(files) == 1:  # nothing to average: the chosen file itself
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out) as dst:
                dst.write_bytes(files[0].read_bytes())
            meta = metas[0]
        else:
            meta = compose(files, out, names)
    mb = out.stat().st_size / 1e6
    lines.append(f"wrote {out} ({mb:.2f} MB, {networks(meta)} network(s), tta {meta['tta']})")
    if data is not None and (data / "cache.npz").is_file():
        from ferkit.evaluate import record_accuracies

        accs = record_accuracies(out, data)
        lines.append(
            "measured accuracy: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in accs.items())
        )
    return lines
