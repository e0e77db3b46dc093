"""The ferkit model-file contract, and reading and writing a file's metadata.

Any runtime can use a ferkit ONNX file without ferkit:
- input `image`: float32 [N, 1, H, W], raw grayscale 0..255 (normalisation is in the graph);
- output `probs`: float32 [N, 7], softmax probabilities in FER-2013 label order;
- metadata_props: `labels` (JSON list), `input_size` (JSON [H, W]), `tta` (the test-time
  views averaged inside the graph, `TTA_MODES`, joined by "+" in an ensemble of mixed
  views), `ferkit_version`, `training` (one line per network, " || " between them),
  `architecture` (JSON model config, a list for an ensemble), `members` (JSON list, only in
  an ensemble), `quantization` (only in int8 files), `parameters` (learnt weights over
  all networks, as a decimal string), `macs` (multiply-accumulates per face, test-time
  views and members included: `ferkit.export.macs`), and `accuracy_PublicTest` /
  `accuracy_PrivateTest` when measured.

Reading and writing needs the `onnx` package (`ferkit[train]`); `Classifier` reads the same
metadata through ONNX Runtime alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError

# Test-time views a model averages inside its graph (metadata `tta`; ferkit.export.torch_export)
TTA_MODES = ("none", "hflip", "views8")
# metadata every ferkit model carries, and every member of an ensemble must agree on
CONTRACT_KEYS = ("labels", "input_size")


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
    if any(key not in meta for key in CONTRACT_KEYS):
        raise FerkitError(f"{path}: not a ferkit model (metadata lacks labels or input_size)")
    return meta


def networks(meta: dict[str, str]) -> int:
    """How many networks a model file averages (1 for a single network)."""
    return len(json.loads(meta["members"])) if "members" in meta else 1


def set_metadata(proto: Any, meta: dict[str, str]) -> None:
    """Replace an in-memory ONNX model's metadata_props with `meta`."""
    import onnx

    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, meta)


def update_metadata(path: Path, changes: dict[str, str]) -> dict[str, str]:
    """Merge `changes` into a model file's metadata, rewriting the file atomically; returns
    the new metadata."""
    import onnx

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    meta.update(changes)
    set_metadata(proto, meta)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return meta
