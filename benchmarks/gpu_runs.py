"""Train several `ferkit train` runs side by side on one GPU inside a fixed time budget.

This is how the GPU rows of `benchmarks/RECIPES.md` were made, on a lent machine with a hard
time limit. Every run starts with its epoch cap; after its second epoch (the end of the
2-epoch warm-up, where the cosine schedule has not moved yet) its epoch time is measured and,
if the cap does not fit the budget, the run is stopped and resumed with the epochs that do
(`ferkit train --resume RUN --epochs E`). The lr at every step is then exactly what `--epochs
E` from the start gives, so each run's recipe is the plain `ferkit train` command RECIPES
lists. What comes back: slim checkpoints (EMA weights, config, best epoch: what `ferkit
export` reads) in a tar split into 15 MiB parts, the runs' metrics, configs, final.json and
logs in a small tar.

    python benchmarks/gpu_runs.py --data data/fer2013 --runs /tmp/runs --out OUT \\
        --budget 445 --scores DIR [--only NAME ...]
    # rehearse on a CPU: --device cpu --smoke (width 8, 512 Training images)

`--scores DIR`: the teachers' probabilities for Training, `acc6-training.npy` and
`acc7-training.npy` (`ferkit evaluate TEACHER --data data/fer2013 --split Training --out E`
writes E/probabilities.npy; float16 copies carry in half the bytes), which the runs distil
from (`--set distill.teacher=DIR/acc6-training.npy`), so no run spends minutes scoring
Training with a teacher the lent machine does not even need to hold. Each is checked
against the labels before any run starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

T0 = time.time()
VGG64 = ["--model", "vgg-s", "--width", "64"]
VGG32 = ["--model", "vgg-s", "--width", "32"]


def kd(teacher: str, weight: float = 0.7) -> list[str]:
    """Distil from `teacher`'s saved Training scores and drop the images it gives their
    label less than 0.3 (the default's recipe); `{scores}` becomes `--scores`. acc6: the
    `accurate` shipped since 2026-11-25; acc7: RECIPES' acc7 row (acc6 + v64-kdclean +
    r18w32-kdclean, views8)."""
    path = f"{{scores}}/{teacher}-training.npy"
    weight_ = f"distill.weight={weight}"
    return ["--set", f"distill.teacher={path}", "--set", "distill.drop_below=0.3", "--set", weight_]


RUNS: dict[str, tuple[int, list[str]]] = {  # name: (epoch cap, `ferkit train` arguments)
    # 2026-11-30 leases (then with distill.teacher=accurate.onnx and its scores copied in)
    "v64-kdclean": (150, [*VGG64, "--seed", "0", *kd("acc6")]),
    "v64-clean": (150, [*VGG64, "--seed", "1", *kd("acc6", 0.0)]),
    "r18w32-kdclean": (120, ["--model", "resnet18", "--width", "32", "--seed", "2", *kd("acc6")]),
    "v32-kdclean": (150, [*VGG32, "--seed", "0", *kd("acc6")]),
    "v32-kdclean-sam": (150, [*VGG32, "--seed", "0", *kd("acc6"), "--set", "optim.sam_rho=0.05"]),
    "v64-kdclean-s1": (200, [*VGG64, "--seed", "1", *kd("acc6")]),
    "v32-kdclean-s1": (200, [*VGG32, "--seed", "1", *kd("acc6")]),
    # next: the default's recipe from the stronger teacher, seeds, temperature, more epochs
    "v64-kd7clean": (150, [*VGG64, "--seed", "0", *kd("acc7")]),
    "v64-kd7clean-s1": (150, [*VGG64, "--seed", "1", *kd("acc7")]),
    "v64-kd7clean-t2": (
        150,
        [*VGG64, "--seed", "2", *kd("acc7"), "--set", "distill.temperature=2"],
    ),
    "v64-kdclean-s2": (150, [*VGG64, "--seed", "2", *kd("acc6")]),
    # twice the images per step (lr scaled with it): about half the steps' overhead per epoch,
    # so more epochs in the same lease; compared with v64-kd7clean at the same wall time
    "v64-kd7clean-b256": (200, [*VGG64, "--seed", "0", "--batch-size", "256", *kd("acc7")]),
}
NEXT = ["v64-kd7clean", "v64-kd7clean-s1", "v64-kd7clean-t2", "v64-kd7clean-b256", "v64-kdclean-s2"]
RESTART_S = 25.0  # a resumed process: start, data load, final report
SLACK = 1.08  # epochs slow down a little as the runs beside them change


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def epochs_done(run: Path) -> int:
    f = run / "metrics.csv"
    return max(0, len(f.read_text().splitlines()) - 1) if f.exists() else 0


def check_scores(data: Path, scores: Path, names: list[str]) -> None:
    """Refuse, before any run starts, missing teacher scores or scores that do not belong to
    these images."""
    import numpy as np

    from ferkit.data import load_cache

    _, y = load_cache(str(data)).split("Training")
    users: dict[str, list[str]] = {}  # scores file -> the runs that distil from it
    for n in names:
        for arg in RUNS[n][1]:
            if "{scores}/" in arg:
                users.setdefault(arg.split("/")[-1], []).append(n)
    for name, runs in sorted(users.items()):
        f = scores / name
        if not f.is_file():
            sys.exit(f"{f}: missing ({', '.join(runs)} distil from it)")
        agree = float((np.load(f).argmax(1) == y).mean())
        if agree < 0.85:  # the teachers get about 90% of Training right: less is misaligned
            sys.exit(f"{f}: the teacher's class matches only {agree:.1%} of the labels")
        log(f"{f.name}: matches {agree:.1%} of the Training labels")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="directory written by `ferkit data prepare`")
    ap.add_argument("--runs", required=True, help="folder for the run folders")
    ap.add_argument("--out", required=True, help="folder for what comes back")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget", type=float, required=True, help="seconds of training from now")
    ap.add_argument("--scores", required=True, help="folder of TEACHER-training.npy files")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU rehearsal: width 8, 512 images")
    ap.add_argument("--only", nargs="*", choices=list(RUNS), help="runs to start (default: NEXT)")
    a = ap.parse_args()
    end = time.time() + a.budget
    runs_dir, out = Path(a.runs), Path(a.out)
    names = a.only or NEXT
    check_scores(Path(a.data), Path(a.scores), names)
    runs_dir.mkdir(parents=True, exist_ok=True)
    common = ["--data", a.data, "--device", a.device, "--channels-last", "--threads", "2"]
    common += ["--bf16"] if a.device == "cuda" else []
    if a.smoke:
        common += ["--set", "train_limit=512", "--set", "model.width=8"]
    procs: dict[str, subprocess.Popen] = {}
    seen: dict[str, dict[int, float]] = {name: {} for name in names}  # epoch -> time seen
    fitted: set[str] = set()

    def launch(name: str, epochs: int | None = None) -> None:
        run = runs_dir / name
        cap, args = RUNS[name]
        if epochs is None:
            args = [arg.replace("{scores}", str(Path(a.scores).resolve())) for arg in args]
            cmd = ["train", *args, *common, "--out", str(run), "--epochs", str(cap)]
        else:
            cmd = ["train", "--resume", str(run), "--epochs", str(epochs), *common]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
        with open(runs_dir / f"{name}.log", "ab") as logf:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "ferkit", *cmd],
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=env,
            )
        log(f"{name}: {'resumed' if epochs else 'started'} for {epochs or cap} epochs")

    for name in names:
        launch(name)
    past_budget = False
    while any(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
        now = time.time()
        for name in names:
            n = epochs_done(runs_dir / name)
            if n and n not in seen[name]:
                seen[name][n] = now
            if name in fitted or not {1, 2} <= seen[name].keys():
                continue
            fitted.add(name)
            per_epoch = seen[name][2] - seen[name][1]
            fit = 2 + int((end - now - RESTART_S) / (per_epoch * SLACK))
            log(f"{name}: {per_epoch:.1f} s/epoch; {fit} epochs fit, cap {RUNS[name][0]}")
            if fit < RUNS[name][0]:
                procs[name].send_signal(signal.SIGTERM)  # stops at a clean point
                procs[name].wait()
                launch(name, max(3, fit))
        if not past_budget and now > end + 20:
            past_budget = True
            for name, p in procs.items():
                if p.poll() is None:
                    log(f"{name}: past the budget, stopped (its best.pt stays)")
                    p.send_signal(signal.SIGTERM)
    pack(runs_dir, out, names)
    return 0


def pack(runs_dir: Path, out: Path, names: list[str]) -> None:
    """Slim best checkpoints into weights.tar.NN (15 MiB parts), the rest into meta.tar.gz."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    weights = out / "weights.tar"
    with tarfile.open(weights, "w") as big, tarfile.open(out / "meta.tar.gz", "w:gz") as small:
        for name in names:
            run = runs_dir / name
            files = [run / f for f in ("config.json", "metrics.csv", "final.json", "curves.png")]
            for f in [*files, runs_dir / f"{name}.log"]:
                if f.exists():
                    small.add(f, arcname=f"{name}/{f.name}")
            if (run / "best.pt").exists():
                state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
                slim = {k: state[k] for k in ("ema", "config", "best", "epoch", "step")}
                torch.save(slim, run / "best-slim.pt")
                big.add(run / "best-slim.pt", arcname=f"{name}/best.pt")
                log(f"{name}: best {state['best']} of {state['epoch']} epochs")
    part, size = 15 * 2**20, weights.stat().st_size
    with open(weights, "rb") as f:
        for i in range(0, size, part):
            (out / f"weights.tar.{i // part:02d}").write_bytes(f.read(part))
    weights.unlink()
    finals = {n: runs_dir / n / "final.json" for n in names}
    summary = {n: json.loads(f.read_text()) for n, f in finals.items() if f.exists()}
    log(f"packed {size / 2**20:.1f} MiB of weights")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
