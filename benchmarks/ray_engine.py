"""`ferkit predict --engine ray` against `--engine local` on the same images, in one run.

    python benchmarks/ray_engine.py [--images 1000] [--actors 1,2] [--model default]
    python benchmarks/ray_engine.py --memory

`--memory` prints memory instead: the peak RSS of two fresh processes, the two halves of
an actor (one that builds the default recogniser and predicts one photo, and one that
imports `ray.data`), then the memory test's run measured (300 small crops through one
actor on a local cluster: the actor's peak, the driver's growth, the cluster's total).

Writes N JPEGs (the bundled astronaut, 256x256, shifted a little each time so no two are
the same bytes), then times, on this machine:
- local: `predict_files` in this process (the baseline of the ratios);
- Ray's start-up: `ray.init` of a local cluster on loopback (2 s to 12 s here);
- ray: `predict_on_ray` with each --actors count (actor CPUs split so reading keeps some),
  from reading the files to the Parquet written, with the cluster already up (the actors'
  start, each loading its model, is in it).
Images/s for each, and the ratio to local. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ferkit.apps.predict import PredictConfig, predict_files
from ferkit.scale.config import RayConfig
from ferkit.scale.ray_engine import import_ray, predict_on_ray, start
from ferkit.vision.recognize import EmotionRecognizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.ray_cluster: the memory test's run and sampler


def make_images(folder: Path, n: int) -> list[Path]:
    face = cv2.resize(cv2.imread(str(ROOT / "examples" / "astronaut.jpg")), (256, 256))
    paths = []
    for i in range(n):
        shifted = np.roll(face, (i % 7) - 3, axis=1)
        paths.append(folder / f"{i:05d}.jpg")
        cv2.imwrite(str(paths[-1]), shifted)
    return paths


MEMORY_PROBES = {
    "a recogniser after one photo": "import cv2; from ferkit.vision.recognize import "
    "EmotionRecognizer as R; R().predict_image(cv2.imread('examples/astronaut.jpg'))",
    "Python with ray.data imported": "import ray.data",
}


def peak_rss_mb(code: str) -> float:
    """Peak RSS, MB, of a fresh Python running `code` (from the repository root)."""
    import subprocess

    probe = f"{code}\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return int(out.split()[-1]) / 1024  # Linux reports KiB


def memory_of_a_run(cpus: int) -> None:
    """The memory test's run, measured: 300 small crops through one actor, after a
    warm-up run of 10, on a local cluster."""
    from tests.ray_cluster import memory_of, small_crops

    import_ray(None)
    start(None, num_cpus=cpus)
    with tempfile.TemporaryDirectory() as tmp:
        paths = tuple(small_crops(Path(tmp), 300))
        warm = RayConfig(inputs=paths[:10], out=f"{tmp}/warm", detect=False)
        predict_on_ray(warm)
        cfg = RayConfig(inputs=paths, out=f"{tmp}/out", detect=False)
        _, memory = memory_of(lambda: predict_on_ray(cfg))
    print(f"an actor on 300 small crops: {max(memory.peaks.values())} MB peak RSS "
          "(the largest Ray process)")  # fmt: skip
    print(f"the driver: {memory.driver_growth} MB more during that run")
    print(f"the local cluster's {len(memory.peaks)} processes: "
          f"{sum(memory.peaks.values())} MB (the sum of their peaks)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--actors", default="1,2", help="comma-separated actor counts")
    parser.add_argument("--model", default=None, help="a shipped name or ONNX file")
    parser.add_argument("--memory", action="store_true", help="peak RSS of an actor's parts")
    args = parser.parse_args()
    cpus = os.cpu_count() or 2
    if args.memory:
        for what, code in MEMORY_PROBES.items():
            print(f"{what}: {peak_rss_mb(code):.0f} MB peak RSS")
        memory_of_a_run(cpus)
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in").mkdir()
        paths = make_images(Path(tmp) / "in", args.images)
        rec = EmotionRecognizer(model=args.model)
        rec.predict_image(cv2.imread(str(paths[0])))  # warm, as an actor's first batch is not
        begin = time.perf_counter()
        summary = predict_files(PredictConfig(inputs=tuple(paths)), rec, io.StringIO())
        local = len(paths) / (time.perf_counter() - begin)
        print(f"local: {local:.1f} images/s ({summary.line()})")
        import_ray(None)  # loopback only, as `ferkit predict --engine ray`
        begin = time.perf_counter()
        start(None, num_cpus=cpus)
        print(f"ray start-up (local cluster, {cpus} CPUs): {time.perf_counter() - begin:.1f} s")
        for actors in map(int, args.actors.split(",")):
            out = Path(tmp) / f"out-{actors}"
            # one CPU stays for the read tasks (each asks for a whole one), or nothing is read
            per_actor = round((cpus - 1) / actors, 2)
            cfg = RayConfig(inputs=tuple(map(str, paths)), out=str(out), actors=actors,
                            actor_cpus=per_actor, recognizer={"model": args.model})  # fmt: skip
            s = predict_on_ray(cfg)
            rate = len(paths) / s.seconds
            print(f"ray, {actors} actor(s) x {per_actor} CPU: {rate:.1f} images/s, "
                  f"{rate / local:.2f}x local ({s.line()})")  # fmt: skip
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
