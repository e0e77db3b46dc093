"""int8 static quantisation of a ferkit ONNX model with ONNX Runtime's tools.

Weights int8 per channel, activations uint8, QDQ format, ranges calibrated (min/max) on
Training images, so ONNX Runtime runs the convolutions as int8 kernels (VNNI where the CPU
has it). Weights use 7 of the 8 bits (-64..64): x86 CPUs without VNNI multiply uint8 by
int8 with VPMADDUBSW, which adds pairs of products into int16 and saturates where
255 * 127 * 2 exceeds 32,767; 255 * 64 * 2 = 32,640 does not, so the answers are the same
on every x86 CPU (on the shipped model: PublicTest 69.18% against 69.27% with 8-bit
weights; docs/benchmarks.md).

Needs the `onnx` package (`ferkit[train]`). The result keeps the model's metadata (labels,
input size, TTA) and says how it was made; its accuracy is measured on the cache's
PublicTest and PrivateTest when they exist and recorded in the metadata.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.data import load_cache
from ferkit.export.macs import count_macs
from ferkit.modelfile.classifier import Classifier
from ferkit.modelfile.metadata import set_metadata
from ferkit.modelfile.scoring import accuracy_metadata, split_accuracies


def calibration_images(data_dir: Path, count: int = 1024, seed: int = 0) -> np.ndarray:
    """`count` Training faces drawn without replacement, uint8 [N, H, W]."""
    images, _ = load_cache(data_dir).split("Training")
    if len(images) == 0:
        raise FerkitError(f"{data_dir}: no Training images to calibrate on")
    rng = np.random.default_rng(seed)
    return images[rng.choice(len(images), min(count, len(images)), replace=False)]


def quantize(
    fp32: Path, out: Path, images: np.ndarray, data_dir: Path | None = None, batch: int = 64
) -> dict[str, Any]:
    """Write the int8 version of `fp32` to `out` atomically; returns its metadata."""
    try:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise FerkitError(
            "int8 export needs the onnx package: pip install 'ferkit[train]'"
        ) from None
    clf = Classifier(fp32)
    if "quantization" in clf.info.metadata:
        raise FerkitError(
            f"--int8 {fp32.name}: already int8; quantise its fp32 export (or `ferkit export "
            f"{fp32.name} --tta hflip --out fp32.onnx`, its weights dequantised)"
        )
    x = clf.preprocess(images)  # at the network's input size
    batches = [x[i : i + batch] for i in range(0, len(x), batch)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"image": x}

    with tempfile.TemporaryDirectory() as tmp:
        pre, q = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(q),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,  # 7-bit weights: no int16 saturation without VNNI (see above)
            # the convolutions and the classifier hold the compute; softmax, the TTA views and
            # the averaging stay float so the output still sums to 1
            op_types_to_quantize=["Conv", "Relu", "MaxPool", "Gemm"],
        )
        model = onnx.load(str(q))
        meta = {p.key: p.value for p in model.metadata_props if not p.key.startswith("onnx.")}
        meta = {k: v for k, v in meta.items() if not k.startswith("accuracy_")}  # fp32's
        meta["macs"] = str(count_macs(model))  # the fp32's count, for files exported before it
        meta["quantization"] = (
            f"int8 static (QDQ, per-channel 7-bit weights, uint8 activations), min/max calibrated "
            f"on {len(images):,} Training images"
        )
        if data_dir is not None:
            meta.update(accuracy_metadata(split_accuracies(q, data_dir)))
        set_metadata(model, meta)
        onnx.save(model, str(q))
        Classifier(q)  # the contract still holds
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as dst:
            dst.write_bytes(q.read_bytes())
    return meta
