"""Accuracy and per-class precision/recall/F1 of an ONNX model on a prepared cache.

Numbers for the model card come from this script, through the shared inference path
(`ferkit.infer.Classifier`, ONNX Runtime, no torch):

    python benchmarks/eval_model.py [MODEL.onnx] --data data/fer2013
"""

from __future__ import annotations

import argparse
import time

from ferkit.data import load_cache
from ferkit.emotions import LABELS
from ferkit.infer import Classifier
from ferkit.metrics import accuracy, confusion_matrix, per_class


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", help="ONNX model (default: the shipped one)")
    parser.add_argument("--data", default="data/fer2013")
    args = parser.parse_args()
    clf = Classifier(args.model)
    cache = load_cache(args.data)
    print(f"model {clf.info.path} sha256 {clf.info.sha256[:16]} tta {clf.info.tta}")
    for split in ("PublicTest", "PrivateTest"):
        x, y = cache.split(split)
        start = time.perf_counter()
        probs = clf.classify(x)
        seconds = time.perf_counter() - start
        cm = confusion_matrix(y, probs.argmax(1), len(LABELS))
        pc = per_class(cm)
        rate = len(y) / seconds
        print(f"\n{split}: accuracy {accuracy(cm):.4f} ({len(y)} faces, {rate:.0f} faces/s)")
        print("| emotion | precision | recall | F1 | support |\n|---|---|---|---|---|")
        for i, name in enumerate(LABELS):
            print(
                f"| {name} | {pc['precision'][i]:.3f} | {pc['recall'][i]:.3f} | "
                f"{pc['f1'][i]:.3f} | {pc['support'][i]} |"
            )
        print(
            f"| macro | {pc['precision'].mean():.3f} | {pc['recall'].mean():.3f} | "
            f"{pc['f1'].mean():.3f} | {len(y)} |"
        )


if __name__ == "__main__":
    main()
