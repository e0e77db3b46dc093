"""The models shipped in `ferkit/weights/`, their recorded SHA-256, and what `--model` names.

A shipped model is checked against `weights/SHA256SUMS` when it is loaded, so a damaged or
tampered install fails in one line instead of answering wrongly.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from ferkit.core.errors import FerkitError

DEFAULT_MODEL = "default.onnx"
# Models shipped in ferkit/weights/, by the name `--model` takes, on one speed/accuracy front:
# a width-32 network without TTA for throughput, the most accurate single network every
# command uses by default, and an ensemble that trades speed for accuracy.
SHIPPED_MODELS = {"fast": "fast.onnx", "default": DEFAULT_MODEL, "accurate": "accurate.onnx"}


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a model shipped in `ferkit/weights/`."""
    return Path(str(resources.files("ferkit") / "weights" / name))


def recorded_sha256(name: str = DEFAULT_MODEL) -> str | None:
    """The SHA-256 that `ferkit/weights/SHA256SUMS` records for a shipped model."""
    sums = shipped_model_path("SHA256SUMS")
    if not sums.is_file():
        return None
    for line in sums.read_text().splitlines():
        digest, _, file = line.partition("  ")
        if file.strip() == name:
            return digest.strip()
    return None


def resolve_model(model: str | Path | None) -> tuple[Path, str | None]:
    """(ONNX file, its name in ferkit/weights/ or None) for a `--model` argument.

    None or a shipped model's name ("fast", "default", "accurate") picks a model shipped
    with ferkit, which is then checked against its recorded SHA-256; anything else is a path
    to an ONNX file (write ./accurate for a file of that name)."""
    name = "default" if model is None else str(model)
    if isinstance(model, Path) or name not in SHIPPED_MODELS:
        return Path(name), None
    file = SHIPPED_MODELS[name]
    path = shipped_model_path(file)
    if not path.is_file():
        raise FerkitError(f"the '{name}' model is not shipped in this ferkit installation")
    return path, file


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_model_file(source: str) -> bool:
    """True for an exported model (an .onnx file or a shipped model's name), False for a
    run folder."""
    return source.endswith(".onnx") or (source in SHIPPED_MODELS and not Path(source).is_dir())


def verify_shipped(path: Path, name: str) -> str:
    """The SHA-256 of a file shipped in `ferkit/weights/` as `name`, after checking it
    against `SHA256SUMS`; a damaged or tampered file fails in one line."""
    digest = sha256_file(path)
    if (expected := recorded_sha256(name)) and digest != expected:
        raise FerkitError(
            f"{path}: SHA-256 {digest[:12]} does not match the recorded "
            f"{expected[:12]}; reinstall ferkit"
        )
    return digest
