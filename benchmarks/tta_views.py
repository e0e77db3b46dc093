"""Which test-time views are worth their cost: PublicTest accuracy of one run's best EMA
weights averaged over sets of views (the table in benchmarks/RECIPES.md).

The zoom and rotations are the ones `ferkit export --tta views8` puts in the graph
(`ferkit.training.views.Probabilities`); 2-pixel shifts are measured here only. PublicTest
only: views are chosen there, never on PrivateTest.

    python benchmarks/tta_views.py runs/vgg32-e100 [--data data/fer2013]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferkit.data import load_cache
from ferkit.export.torch_export import load_run_model
from ferkit.training.views import Probabilities

SHIFT_PX = 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder (its best.pt)")
    ap.add_argument("--data", default="data/fer2013", help="prepared cache")
    args = ap.parse_args()
    model, _ = load_run_model(args.run)
    x, y = load_cache(args.data).split("PublicTest")
    x = torch.from_numpy(x).float()[:, None]

    # views8's first half: image, zoom, rotation -8, rotation +8 (the second half mirrors them)
    first = Probabilities(model, "views8").views(x)[:4]
    views = dict(zip(("id", "zoom", "r-", "r+"), first, strict=True))
    pad = F.pad(x, (SHIFT_PX,) * 4, mode="replicate")
    for dy in (0, 2 * SHIFT_PX):
        for dx in (0, 2 * SHIFT_PX):
            views[f"s{dy}{dx}"] = pad[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    views |= {f"{k}f": v.flip(3) for k, v in list(views.items())}

    with torch.no_grad():
        probs = {
            k: torch.cat([F.softmax(model(v[i : i + 512]), 1) for i in range(0, len(v), 512)])
            for k, v in views.items()
        }

    def acc(keys: list[str]) -> float:
        mean = torch.stack([probs[k] for k in keys]).mean(0).numpy()
        return 100 * float(np.mean(mean.argmax(1) == y))

    mirror = ["id", "idf"]
    shifts = [k for k in views if k.startswith("s")]
    zoom, rot = ["zoom", "zoomf"], ["r-", "r-f", "r+", "r+f"]
    rows = {
        "image only": ["id"],
        "+ mirror (hflip)": mirror,
        f"{SHIFT_PX}-pixel shifts x 4, each mirrored (10 views)": mirror + shifts,
        "9% zoom, mirrored (4 views)": mirror + zoom,
        "±8° rotations, mirrored (6 views)": mirror + rot,
        "zoom and rotations, mirrored (8 views, views8)": mirror + zoom + rot,
        "zoom and shifts (12 views)": mirror + shifts + zoom,
        "all of the above (16 views)": list(views),
    }
    print(f"{args.run.name} on PublicTest ({len(y):,} faces)")
    for name, keys in rows.items():
        print(f"  {name:50s} {acc(keys):6.2f}%")


if __name__ == "__main__":
    main()
