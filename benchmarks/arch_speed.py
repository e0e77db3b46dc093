"""What an architecture costs per face before anyone trains it (issue 47's front).

    python benchmarks/arch_speed.py [--data data/fer2013] [--fer-python FER_VENV/bin/python]
        [--arch vgg-s:32 vgg-s:16 mobile:16 mobile:20 mobile:24] [--rounds 5] [--seconds 1]

Speed does not depend on the weights, so a candidate's place on the speed axis is known
in a minute, not after an hour of training. Each `NAME:WIDTH` is built untrained, its
BatchNorm statistics fitted on 512 Training faces (so the int8 ranges are of a plausible
size), exported with no test-time views and quantised as `ferkit export --int8` does,
then timed with the shipped `fast` by `predict_speed.py`'s crops rows: faces/s per core
and on all cores, batched and one at a time, as ratios to `fer`'s TFLite with
`--fer-python`. `vgg-s:32` is `fast`'s own architecture: its row against `fast`'s shows
how close an untrained copy times to the trained file. Needs ferkit[train] (torch).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from fer_side import FerWorker, save_inputs
from predict_speed import THREADS, compare_models, load_crops, photo_640x480

from ferkit.export.quantize import quantize
from ferkit.export.torch_export import export_network
from ferkit.modelfile.classifier import Classifier
from ferkit.training.networks import ModelConfig, build_model

CALIBRATION = 1024  # faces, as `ferkit export --int8`
BATCHNORM_FACES = 512


def candidate(spec: str, faces: np.ndarray, tmp: Path) -> Path:
    """The int8 file of the untrained architecture `NAME:WIDTH`."""
    name, _, width = spec.partition(":")
    cfg = ModelConfig(name=name, width=int(width or ModelConfig.width))
    torch.manual_seed(0)
    net = build_model(cfg).train()
    with torch.no_grad():  # BatchNorm statistics of real faces, not of the init
        net(torch.from_numpy(faces[:BATCHNORM_FACES]).float()[:, None])
    fp32, int8 = tmp / f"{name}{width}-fp32.onnx", tmp / f"{name}{width}.onnx"
    export_network(net, cfg, fp32, training=f"untrained {spec}, for timing only")
    quantize(fp32, int8, faces[:CALIBRATION])
    return int8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/fer2013", help="prepared cache (faces to time)")
    ap.add_argument("--fer-python", help="python with the `fer` package, for the comparison")
    ap.add_argument("--arch", nargs="+", default=["vgg-s:32", "vgg-s:16", "mobile:16"],
                    help="NAME:WIDTH of ferkit.training.networks")  # fmt: skip
    ap.add_argument("--seconds", type=float, default=1.0, help="each timing window, s")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved windows per side")
    args = ap.parse_args()

    crops, _ = load_crops(Path(args.data))
    tmp = Path(tempfile.mkdtemp())
    models = {"fast": "fast"} | {spec: str(candidate(spec, crops, tmp)) for spec in args.arch}
    fers = {}
    if args.fer_python:
        save_inputs(tmp, crops, np.zeros(0, np.int64), photo_640x480())
        fers = {s: FerWorker(args.fer_python, tmp, t) for s, t in THREADS.items()}
    print(f"crops: {len(crops)} faces; untrained architectures, int8; MACs: `ferkit models`-"
          f"style count of each file")  # fmt: skip
    for spec, path in models.items():
        print(f"  {spec}: {int(Classifier(path).info.metadata['macs']) / 1e6:.1f} M MACs/face")
    compare_models(models, crops, np.zeros(0, np.int64), fers, args)
    for fer in fers.values():
        fer.close()


if __name__ == "__main__":
    main()
