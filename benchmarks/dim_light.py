"""Do a model's answers survive dim light? Share of FER-2013 faces that keep their label
when the same crops are taken as a dim camera would give them (issue 48).

    python benchmarks/dim_light.py [MODEL ...] [--data data/fer2013] [--split PublicTest]
        [--photometric standardize equalize] [--corruptions]

Each light is an 8-bit camera's answer to less light (`ferkit.evaluation.corruptions.
DIM_LIGHTS`): `0.3x+8` (a third of the exposure over a black level of 8), `gamma 2.2`
(shadows crushed, highlights kept) and both at once.
A face keeps its label when the model gives the dimmed crop the label it gives the crop as
FER-2013 has it; accuracy is on the crops as they are. "sad" columns are the share of the
split each light reads as sad, the drift users complain of.

`--photometric` also tries each photometric layer (`ferkit.training.photometric`) in front
of a model trained without one, at test time only: what the layer buys before any training.
`--corruptions` adds FER-2013-C's mCA (`ferkit evaluate --corruptions`, seed 0), through the
same layer. Through ONNX Runtime (`Classifier`), the path predict uses; choose on
PublicTest, report PrivateTest once.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np

from ferkit.core.labels import LABELS
from ferkit.data import load_cache
from ferkit.evaluation.corruptions import DIM_LIGHTS
from ferkit.evaluation.report import md_table
from ferkit.evaluation.robustness import conditions
from ferkit.modelfile.classifier import Classifier

SAD = LABELS.index("sad")


def as_is(x: np.ndarray) -> np.ndarray:
    """uint8 crops [N, H, W] -> float32 [N, 1, H, W], as `Classifier.preprocess` gives them."""
    return x[:, None].astype(np.float32)


def layer(mode: str, mean: float, std: float) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 crops [N, H, W] -> float32 [N, 1, H, W] 0..255 through photometric `mode`."""
    import torch

    from ferkit.training.photometric import equalize, standardize

    def apply(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).float()[:, None]
        if mode == "standardize":
            t = standardize(t, torch.tensor(mean), torch.tensor(std))
        elif mode == "equalize":
            t = equalize(t)
        return t.numpy()

    return apply


def row(
    name: str, clf: Classifier, prep: Callable, x: np.ndarray, y: np.ndarray, mca: bool
) -> list[str]:
    """[name, accuracy, (mCA,) kept per light..., sad share clean and per light...] in %."""
    clean = clf.classify_float(prep(x)).argmax(1)
    dimmed = [clf.classify_float(prep(fn(x))).argmax(1) for fn in DIM_LIGHTS.values()]
    kept = [f"{100 * np.mean(d == clean):.1f}" for d in dimmed]
    sad = [f"{100 * np.mean(p == SAD):.1f}" for p in (clean, *dimmed)]
    corrupted = []
    if mca:  # FER-2013-C as `ferkit evaluate --corruptions` makes it (seed 0)
        accs = [np.mean(clf.classify_float(prep(c)).argmax(1) == y) for *_, c in conditions(x)]
        corrupted = [f"{100 * np.mean(accs):.2f}"]
    return [name, f"{100 * np.mean(clean == y):.2f}", *corrupted, *kept, *sad]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["fast", "default"], help="names or files")
    ap.add_argument("--data", default="data/fer2013", help="prepared cache")
    ap.add_argument("--split", default="PublicTest", help="PublicTest or PrivateTest")
    ap.add_argument("--corruptions", action="store_true", help="also FER-2013-C mCA")
    ap.add_argument(
        "--photometric", nargs="*", default=[], help="layers to try at test time (none: as is)"
    )
    args = ap.parse_args()
    x, y = load_cache(args.data).split(args.split)
    rows = []
    for model in args.models:
        clf = Classifier(model)
        rows.append(row(model, clf, as_is, x, y, args.corruptions))
        for mode in args.photometric:
            arch = json.loads(clf.info.metadata["architecture"])  # its training set's
            mean, std = arch["mean"], arch["std"]
            prep = layer(mode, mean, std)
            rows.append(row(f"{model} + {mode}", clf, prep, x, y, args.corruptions))
    lights = list(DIM_LIGHTS)
    header = ["model", f"{args.split} %", *(["mCA %"] if args.corruptions else [])]
    header += [f"kept {k} %" for k in lights]
    header += ["sad clean %", *[f"sad {k} %" for k in lights]]
    print(md_table(header, rows))


if __name__ == "__main__":
    main()
