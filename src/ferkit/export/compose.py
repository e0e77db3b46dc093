"""One ONNX graph averaging exported ferkit models: ensembles from files, not only from runs.

`compose` joins exported models into one graph with one input `image` and one output
`probs`, the mean over every network inside (`ferkit export accurate runs/mine --tta views8
--out mine.onnx` exports the run first, then joins; `ferkit.export.pipeline`). A member that
is itself an ensemble of 4 counts 4 times, so adding a network to `accurate` gives exactly
the mean of 5 networks, as if all five runs had been exported together. Members keep their
own graphs: int8 ones stay int8, each keeps its own test-time views. Run folders get lost
with machines; exported files are what lasts, so ensembles are grown from those.

Needs the `onnx` package (`ferkit[train]`), not torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.export.macs import count_macs
from ferkit.modelfile.metadata import CONTRACT_KEYS, networks, read_metadata, set_metadata

_MEAN_PREFIX = re.compile(r"^mean of \d+ models' probabilities: ")


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
    for key in CONTRACT_KEYS:
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
    if all("parameters" in m for m in metas):
        meta["parameters"] = str(sum(int(m["parameters"]) for m in metas))
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
    meta = {**meta, "macs": str(count_macs(joined))}
    set_metadata(joined, meta)
    onnx.checker.check_model(joined)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(joined.SerializeToString())
    return meta
