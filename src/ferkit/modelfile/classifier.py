"""The one inference path (ONNX Runtime, no torch) shared by evaluate, predict, video, serve.

`Classifier` loads an ONNX model that follows ferkit's contract (`ferkit.modelfile.metadata`) and
reads its preprocessing from the model's metadata: labels and input size. Faces go in as
uint8 grayscale crops of any size; resizing to the model's input happens here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.core.errors import FerkitError
from ferkit.modelfile.shipped import resolve_model, sha256_file, verify_shipped


@dataclass(frozen=True)
class ModelInfo:
    """What the model file says about itself."""

    path: Path
    sha256: str
    labels: tuple[str, ...]
    input_size: tuple[int, int]  # (H, W) pixels
    tta: str
    metadata: dict[str, str]


class Classifier:
    """Emotion probabilities for face crops, from an ONNX model on ONNX Runtime."""

    def __init__(
        self,
        model: str | Path | None = None,
        threads: int = 0,
        spinning: str = "on",
        optimization: str = "all",
    ) -> None:
        """`model`: an ONNX file, or a shipped model's name (None: "default"); the session
        settings are `open_session`'s."""
        path, shipped = resolve_model(model)
        if not path.is_file():
            raise FerkitError(f"{path}: no such model file")
        digest = verify_shipped(path, shipped) if shipped else sha256_file(path)
        self.session = open_session(path, threads, spinning, optimization)
        self.info = _read_contract(self.session, path, digest)
        self._probe()

    def _probe(self) -> None:
        """Run two blank faces once: the graph must answer [2, len(labels)] finite numbers,
        or the file's metadata does not describe it (caught here, not mid-batch)."""
        h, w = self.info.input_size
        try:
            out = self.session.run(["probs"], {"image": np.zeros((2, 1, h, w), np.float32)})[0]
        except Exception as exc:  # onnxruntime's own errors: the graph rejects its metadata
            first = str(exc).splitlines()[0][:200]
            raise FerkitError(
                f"{self.info.path}: the graph refuses its own input_size ({first})"
            ) from None
        if out.shape != (2, len(self.labels)):
            raise FerkitError(
                f"{self.info.path}: answers {list(out.shape)} for 2 faces, not "
                f"[2, {len(self.labels)}] as its {len(self.labels)} labels say"
            )
        _finite(out, self.info.path)

    @cached_property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    def preprocess(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """uint8 grayscale crops (one array [N, H, W] or a list of any sizes) -> float32
        [N, 1, H, W] at the model's input size, 0..255 (the graph normalises)."""
        import cv2

        h, w = self.info.input_size
        if isinstance(faces, np.ndarray) and faces.ndim == 4 and faces.shape[1] == 1:
            faces = faces[:, 0]
        out = np.empty((len(faces), 1, h, w), np.float32)
        for i, face in enumerate(faces):
            if face.ndim == 3:  # BGR crop
                face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
            if face.shape != (h, w):
                face = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
            out[i, 0] = face
        return out

    def classify(self, faces: np.ndarray | list[np.ndarray], batch: int = 256) -> np.ndarray:
        """Probabilities [N, len(labels)] for already-cropped faces, in batches."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.classify_float(self.preprocess(faces), batch)

    def classify_float(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Probabilities for input already at the model's size: float32 [N, 1, H, W], 0..255
        (augmented training batches for online distillation, or `preprocess`'s output)."""
        parts = [
            self.session.run(["probs"], {"image": x[i : i + batch]})[0]
            for i in range(0, len(x), batch)
        ]
        return _finite(np.concatenate(parts), self.info.path)


def _finite(probs: np.ndarray, path: Path) -> np.ndarray:
    """Refuse NaN or infinite probabilities: never written to a row or a report."""
    if not np.isfinite(probs).all():
        raise FerkitError(f"{path}: the model answered NaN or infinite probabilities")
    return probs


# Graph optimisation levels by name (ONNX Runtime's enum, which needs the import to read).
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
# What idle intra-op threads do. "on": busy-wait for more work, inside a call and between
# calls (ONNX Runtime's default); "off": sleep; "run": busy-wait inside a call and stop
# when it returns, so the cores are free for the next stage of a pipeline (a detector on
# OpenCV's threads). Which path uses which: docs/benchmarks.md, "ONNX Runtime settings".
SPINNING = {"on": ("1", "0"), "off": ("0", "0"), "run": ("1", "1")}  # allow, force stop


def open_session(
    path: Path, threads: int = 0, spinning: str = "on", optimization: str = "all"
) -> Any:
    """An ONNX Runtime CPU session on `path` with `threads` intra-op threads (0: all
    cores), or a one-line error for a file ONNX Runtime cannot load. `spinning`: a key of
    SPINNING; `optimization`: one of OPTIMIZATION_LEVELS. The defaults are what
    `benchmarks/ort_settings.py` measured fastest for the classifier alone."""
    import onnxruntime as ort

    if spinning not in SPINNING:
        raise FerkitError(f"spinning '{spinning}': choose one of {', '.join(SPINNING)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    allow, stop = SPINNING[spinning]
    options.add_session_config_entry("session.intra_op.allow_spinning", allow)
    options.add_session_config_entry("session.force_spinning_stop", stop)
    if optimization not in OPTIMIZATION_LEVELS:
        raise FerkitError(
            f"optimization '{optimization}': choose one of {', '.join(OPTIMIZATION_LEVELS)}"
        )
    name = "ORT_DISABLE_ALL" if optimization == "disable" else f"ORT_ENABLE_{optimization.upper()}"
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, name)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise FerkitError(
            f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})"
        ) from None


def _read_contract(session: Any, path: Path, digest: str) -> ModelInfo:
    """Check the input/output contract and parse the metadata, or fail in one line."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != ["image"] or "probs" not in [o.name for o in outputs]:
        raise FerkitError(f"{path}: not a ferkit model (needs input 'image' and output 'probs')")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    try:
        labels = tuple(json.loads(meta["labels"]))
        h, w = json.loads(meta["input_size"])
    except (KeyError, ValueError, TypeError):
        raise FerkitError(f"{path}: metadata lacks valid 'labels' and 'input_size'") from None
    shape = inputs[0].shape
    if len(shape) != 4 or shape[1] != 1:
        raise FerkitError(f"{path}: input 'image' must be [N, 1, H, W], is {shape}")
    if isinstance(shape[0], int):  # ferkit batches faces: a fixed batch would refuse them
        raise FerkitError(f"{path}: input 'image' has a fixed batch of {shape[0]}; export it "
                          "with a dynamic batch dimension")  # fmt: skip
    if not all(isinstance(v, int) and 8 <= v <= 1024 for v in (h, w)):
        raise FerkitError(f"{path}: metadata input_size {[h, w]} is not two sizes of 8-1024 px")
    if all(isinstance(v, int) for v in shape[2:]) and tuple(shape[2:]) != (h, w):
        raise FerkitError(f"{path}: metadata input_size {[h, w]} but the graph takes {shape[2:]}")
    if not labels or len(set(labels)) != len(labels) or not all(isinstance(x, str) for x in labels):
        raise FerkitError(f"{path}: metadata labels must be distinct names, are {list(labels)}")
    return ModelInfo(
        path=path,
        sha256=digest,
        labels=labels,
        input_size=(int(h), int(w)),
        tta=meta.get("tta", "none"),
        metadata=meta,
    )
