"""Knowledge distillation from a teacher ONNX model (typically an ensemble exported by
`ferkit export RUN_A RUN_B ... --out teacher.onnx`).

Offline (the default), the teacher scores every Training image once, un-augmented, through
the shared inference path (ONNX Runtime, its in-graph TTA included); online
(`distill.online`), it scores each augmented batch the student sees, so the targets follow
the crop, rotation and erasing (at the cost of the teacher's forward pass every step). The
student learns from
    (1 - weight) * CE(labels, smoothed) + weight * T^2 * CE(teacher^(1/T), student / T).
Static targets ignore what augmentation did to the image: from a 3-member ensemble they did
not beat flip TTA on PublicTest (benchmarks/RECIPES.md). The same offline scores can also
clean the data: `distill.drop_below` drops the Training images whose label the teacher doubts
(`drop_noisy`), and `distill.relabel_above` gives an image the teacher's class when the
teacher is confident the label is wrong (`relabel_confident`). The teacher may also be a
`.npy` of its Training probabilities (`saved_probs`: what `ferkit evaluate TEACHER --split
Training --out DIR` writes as DIR/probabilities.npy, or a kept teacher-HASH.npy), so a
machine without the teacher's file, or without the minutes to score with it, can still
distil offline.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferkit.core.atomic import atomic_path
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.modelfile.classifier import Classifier
from ferkit.training.config import DistillConfig


def teacher_probs(
    teacher: str, images: np.ndarray, batch: int = 512, keep_in: Sequence[Path] = ()
) -> np.ndarray:
    """The teacher's probabilities [N, 7] for uint8 images [N, H, W] (or [N, 1, H, W]).

    With `keep_in` (folders: the data folder, then the run folder) they are saved in the
    first that can be written, named by the SHA-256 of the teacher's file and of the images,
    and read back from any of them when both match: the seeds of a recipe share one scoring
    and a `--resume` does not score again (the shipped `accurate`, 117 faces/s on a 2-core
    VNNI CPU and 18 on an AVX2 one, takes 4 and 27 minutes over Training)."""
    clf = Classifier(teacher)
    digest = hashlib.sha256(clf.info.sha256.encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    name = f"teacher-{digest.hexdigest()[:16]}.npy"
    for folder in keep_in:
        if (folder / name).is_file():
            return np.load(folder / name)
    probs = clf.classify(images, batch=batch).astype(np.float32)
    for folder in keep_in:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
                np.save(f, probs)
            break
        except OSError:  # a read-only data folder: the next one
            continue
    return probs


def saved_probs(path: str, n: int) -> np.ndarray:
    """A teacher's saved probabilities [n, 7] for the n Training images, in the cache's
    order; refused with a one-line error when they cannot be that (no .npy, wrong shape, rows
    that are not probabilities). config.json records the file's SHA-256 like a teacher's."""
    try:
        probs = np.load(path).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise FerkitError(f"distill.teacher={path}: cannot read a .npy ({exc})") from None
    if probs.shape != (n, len(LABELS)):
        raise FerkitError(
            f"distill.teacher={path}: shape {probs.shape}, expected ({n}, {len(LABELS)}): the "
            "probabilities of every Training image (`ferkit evaluate TEACHER --split Training`)"
        )
    total = probs.sum(1, keepdims=True)  # float16 copies (half the bytes) sum to 1 +- 0.004
    if not (np.isfinite(probs).all() and (probs >= 0).all() and np.allclose(total, 1, atol=0.01)):
        raise FerkitError(f"distill.teacher={path}: rows are not probabilities summing to 1")
    return probs / total


def teacher_targets(
    teacher: str, images: np.ndarray, n: int, keep: np.ndarray, keep_in: Sequence[Path]
) -> np.ndarray:
    """Offline targets for `images`, the Training images at `keep` of all `n`: read from a
    saved `.npy`, or scored by the teacher model (and kept in a folder of `keep_in`)."""
    if teacher.endswith(".npy"):
        return saved_probs(teacher, n)[keep]
    return teacher_probs(teacher, images, keep_in=keep_in)


def batch_probs(teacher: Classifier, x: torch.Tensor) -> torch.Tensor:
    """The teacher's probabilities for an augmented float batch [N, 1, H, W] (0..255, the
    graph normalises), on `x`'s device: no uint8 round trip."""
    probs = teacher.classify_float(x.detach().float().cpu().numpy(), batch=len(x))
    return torch.from_numpy(probs).to(x.device)


def drop_noisy(
    x: torch.Tensor, y: torch.Tensor, probs: torch.Tensor, below: float, keep_at_least: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the images whose label the teacher gives probability >= `below`; report the
    dropped count per class, since noise is not spread evenly (disgust has 436 images)."""
    keep = probs[torch.arange(len(y), device=y.device), y] >= below
    if int(keep.sum()) < keep_at_least:
        raise FerkitError(
            f"distill.drop_below={below} keeps {int(keep.sum())} of {len(y)} Training images, "
            f"fewer than one batch ({keep_at_least})"
        )
    dropped = torch.bincount(y[~keep], minlength=probs.shape[1]).tolist()
    print(
        f"distill.drop_below={below}: dropped {int((~keep).sum())} of {len(y)} Training "
        f"images (per class {dropped})",
        file=sys.stderr,
    )
    return x[keep], y[keep], probs[keep]


def relabel_confident(y: torch.Tensor, probs: torch.Tensor, above: float) -> torch.Tensor:
    """The labels, with the teacher's top class wherever it disagrees with the label and gives
    that class at least `above`; reports how many moved from each class."""
    p, top = probs.max(1)
    move = (top != y) & (p >= above)
    moved = torch.bincount(y[move], minlength=probs.shape[1]).tolist()
    print(
        f"distill.relabel_above={above}: relabelled {int(move.sum())} of {len(y)} Training "
        f"images (per original class {moved})",
        file=sys.stderr,
    )
    return torch.where(move, top, y)


def clean_labels(
    x: torch.Tensor, y: torch.Tensor, probs: torch.Tensor, cfg: DistillConfig, keep_at_least: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training images, labels and teacher probabilities after `cfg.relabel_above` (first)
    and `cfg.drop_below`; a relabelled image keeps its new label through the drop."""
    if cfg.relabel_above > 0:
        y = relabel_confident(y, probs, cfg.relabel_above)
    if cfg.drop_below > 0:
        x, y, probs = drop_noisy(x, y, probs, cfg.drop_below, keep_at_least)
    return x, y, probs


def training_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    label_smoothing: float,
    targets: torch.Tensor | None = None,
    cfg: DistillConfig | None = None,
    mix: tuple[torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """Cross-entropy on the labels, mixed with the teacher's soft targets when given; with
    `mix = (perm, lam)` from `augment.mixup` or `augment.cutmix`, both targets are mixed the
    way the images were."""
    logits = logits.float()
    hard = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if mix is not None:
        perm, lam = mix
        other = F.cross_entropy(logits, y[perm], label_smoothing=label_smoothing)
        hard = lam * hard + (1 - lam) * other
        if targets is not None:
            targets = lam * targets + (1 - lam) * targets[perm]
    if targets is None or cfg is None or not cfg.teacher:
        return hard
    t = cfg.temperature
    soft_t = targets.clamp_min(1e-8) ** (1 / t)
    soft_t = soft_t / soft_t.sum(1, keepdim=True)
    soft = -(soft_t * F.log_softmax(logits / t, dim=1)).sum(1).mean() * t * t
    return (1 - cfg.weight) * hard + cfg.weight * soft
