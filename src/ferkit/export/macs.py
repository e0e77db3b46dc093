"""Multiply-accumulates per face, counted from an ONNX graph (metadata `macs`).

What a model costs whatever runs it: `ferkit models` shows it beside the faces/s this CPU
measures, so a slow model can be told from a slow machine (docs/benchmarks.md, "By
model"). Counted on the graph as exported, with one face in: the test-time views and the
members of an ensemble are inside it, so they count. Convolutions and matrix products
only (their multiply-adds are >99% of the work); int8 files count the same as the fp32
graph they were quantised from.
"""

from __future__ import annotations

import math
from typing import Any

from ferkit.core.errors import FerkitError

# ferkit's graphs, fp32 or int8 (QDQ keeps float Conv and Gemm nodes between its
# DequantizeLinear and QuantizeLinear pairs)
COUNTED = ("Conv", "Gemm", "MatMul")


def count_macs(proto: Any) -> int:
    """Multiply-accumulates of one face through `proto` (an onnx ModelProto)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_value = 1  # one face: every shape in the graph becomes a number
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {t.name: list(t.dims) for t in inferred.graph.initializer}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shape = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in shape]
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in COUNTED:
            continue
        weight, out = shapes.get(node.input[1]), shapes.get(node.output[0])
        if not weight or not out or None in weight or None in out:
            raise FerkitError(f"macs: the shapes of {node.op_type} '{node.name}' are unknown")
        if node.op_type == "Conv":  # weight [C_out, C_in / groups, kH, kW]
            total += math.prod(out) * math.prod(weight[1:])
        else:  # [M, K] x [K, N] -> [M, N]: K per output
            trans = any(a.name == "transB" and a.i for a in node.attribute)
            total += math.prod(out) * (weight[-1] if trans else weight[-2])
    return total
