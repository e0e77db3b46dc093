"""Knowledge distillation: the loss by hand, teachers as ONNX files or saved scores, and the
cleaning of the Training labels a teacher doubts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.training import loop
from tests.tiny_runs import (
    read_metrics,
    train_cfg,
)


def test_distillation_loss_by_hand():
    from ferkit.training.config import DistillConfig
    from ferkit.training.distill import training_loss

    logits = torch.tensor([[2.0, 0.0, -1.0, 0, 0, 0, 0], [0.0, 1.0, 0.0, 0, 0, 0, 0]])
    y = torch.tensor([0, 1])
    plain = training_loss(logits, y, 0.0)
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    # weight 1 with one-hot teacher targets at T = 1 is plain cross-entropy again
    onehot = torch.nn.functional.one_hot(y, 7).float()
    full = DistillConfig(teacher="t.onnx", weight=1.0)
    assert training_loss(logits, y, 0.0, onehot, full) == pytest.approx(plain.item(), abs=1e-5)
    # half and half with a uniform teacher: the mean of CE(labels) and CE(uniform)
    uniform = torch.full((2, 7), 1 / 7)
    half = DistillConfig(teacher="t.onnx", weight=0.5)
    soft = -(uniform * torch.log_softmax(logits, 1)).sum(1).mean()
    expect = 0.5 * plain + 0.5 * soft
    assert training_loss(logits, y, 0.0, uniform, half) == pytest.approx(expect.item(), abs=1e-5)
    # temperature T scales the soft term by T^2 on softened distributions
    hot = DistillConfig(teacher="t.onnx", weight=1.0, temperature=2.0)
    t = torch.softmax(torch.log(onehot.clamp_min(1e-8)) / 2, 1)
    expect = -(t * torch.log_softmax(logits / 2, 1)).sum(1).mean() * 4
    assert training_loss(logits, y, 0.0, onehot, hot) == pytest.approx(expect.item(), abs=1e-5)


def test_distilled_run_uses_and_records_its_teacher(
    small_cache, tmp_path, monkeypatch, plain_run, teacher_onnx
):
    from ferkit.core.errors import FerkitError
    from ferkit.modelfile.classifier import Classifier
    from ferkit.modelfile.shipped import sha256_file

    cfg = train_cfg(
        small_cache, tmp_path / "student", epochs=1, **{"distill.teacher": teacher_onnx}
    )
    data = loop.load_data(cfg, torch.device("cpu"))
    assert data.train_t.shape == (len(data.train_y), 7)
    assert torch.allclose(data.train_t.sum(1), torch.ones(len(data.train_y)), atol=1e-4)
    result = loop.train(cfg)
    assert 0 <= result["PublicTest"]["acc_tta"] <= 1
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["config"]["distill"] == {
        "teacher": teacher_onnx,
        "weight": 0.7,
        "temperature": 1.0,
        "online": False,
        "drop_below": 0.0,
        "relabel_above": 0.0,
    }
    assert saved["sha256"] == {"distill.teacher": sha256_file(Path(teacher_onnx))}
    assert json.loads((plain_run / "config.json").read_text())["sha256"] == {}
    # the same seed without a teacher trains differently
    first = {"student": read_metrics(tmp_path / "student")[0]["train_loss"]}
    first["plain"] = read_metrics(plain_run)[0]["train_loss"]
    assert first["student"] != first["plain"]

    # online: the teacher scores every augmented batch the student sees, once per step
    seen: list[torch.Tensor] = []
    batch_probs = loop.batch_probs

    def spy(clf, x):
        seen.append(x.clone())
        return batch_probs(clf, x)

    monkeypatch.setattr(loop, "batch_probs", spy)
    kw = {"distill.teacher": teacher_onnx, "distill.online": "true"}
    online = train_cfg(small_cache, tmp_path / "online", epochs=1, **kw)
    data = loop.load_data(online, torch.device("cpu"))
    assert data.train_t is None and data.teacher is not None  # nothing scored up front
    alone = train_cfg(small_cache, tmp_path / "x", epochs=1, **{"distill.online": "true"})
    with pytest.raises(FerkitError, match=r"distill\.online needs a teacher"):
        loop.load_data(alone, torch.device("cpu"))
    loop.train(online)
    assert len(seen) == len(data.train_y) // online.batch_size
    assert all(x.shape == (online.batch_size, 1, 48, 48) for x in seen)
    assert any((x != x.round()).any() for x in seen)  # resampled by the augmentation
    first["online"] = read_metrics(tmp_path / "online")[0]["train_loss"]
    assert first["online"] != first["student"]
    # the float batch scores like the same pixels through the shared uint8 path
    pixels = seen[0].round().clamp(0, 255)
    want = Classifier(teacher_onnx).classify(pixels[:, 0].numpy().astype(np.uint8))
    np.testing.assert_allclose(batch_probs(data.teacher, pixels).numpy(), want, atol=1e-6)


def test_teacher_scores_are_kept_with_the_data_and_read_back(
    small_cache, tmp_path, monkeypatch, teacher_onnx
):
    import shutil

    from ferkit.training import distill

    scored: list[int] = []
    classify = distill.Classifier.classify

    def spy(self, images, **kw):
        scored.append(len(images))
        return classify(self, images, **kw)

    monkeypatch.setattr(distill.Classifier, "classify", spy)
    data = tmp_path / "data"  # a copy without the scores that other tests kept
    shutil.copytree(small_cache, data, ignore=shutil.ignore_patterns("teacher-*"))
    cfg = train_cfg(data, tmp_path / "run", epochs=1, **{"distill.teacher": teacher_onnx})
    first = loop.load_data(cfg, torch.device("cpu"))
    again = loop.load_data(cfg, torch.device("cpu"))  # what --resume does
    seed = dataclasses.replace(cfg, out=str(tmp_path / "seed1"), seed=1)
    other_seed = loop.load_data(seed, torch.device("cpu"))  # a recipe's next seed
    assert len(scored) == 1 and torch.equal(first.train_t, again.train_t)
    assert torch.equal(first.train_t, other_seed.train_t)
    kept = list(data.glob("teacher-*.npy"))
    assert len(kept) == 1 and np.array_equal(np.load(kept[0]), first.train_t.numpy())
    assert not list((tmp_path / "run").glob("teacher-*.npy"))  # the data folder had room
    # other images or another teacher are scored afresh, never served the saved scores
    images = first.train_x[:, 0].numpy()
    fewer = distill.teacher_probs(teacher_onnx, images[:-1], keep_in=[data])
    other = distill.teacher_probs("default", images, keep_in=[data])
    assert scored == [len(images), len(images) - 1, len(images)]
    assert len(fewer) == len(images) - 1 and not np.allclose(other, first.train_t.numpy())
    assert len(list(data.glob("teacher-*.npy"))) == 3
    distill.teacher_probs(teacher_onnx, images)  # no folder: nothing kept
    assert len(scored) == 4 and len(list(data.glob("teacher-*.npy"))) == 3
    # a data folder that cannot be written: kept in the run folder instead
    blocked, run = tmp_path / "blocked", tmp_path / "run2"
    blocked.write_text("a file where a folder should be")
    distill.teacher_probs(teacher_onnx, images[:-2], keep_in=[blocked, run])
    assert len(scored) == 5 and len(list(run.glob("teacher-*.npy"))) == 1


def test_saved_teacher_scores_distil_like_the_teacher(small_cache, tmp_path, teacher_onnx):
    from ferkit.cli import main
    from ferkit.core.errors import FerkitError
    from ferkit.modelfile.classifier import Classifier

    # `ferkit evaluate TEACHER --split Training` writes the scores a run can distil from
    ev = tmp_path / "ev"
    args = [teacher_onnx, "--data", str(small_cache), "--split", "Training", "--out", str(ev)]
    assert main(["evaluate", *args]) == 0
    saved = ev / "probabilities.npy"
    cpu = torch.device("cpu")
    by_model = loop.load_data(
        train_cfg(small_cache, tmp_path / "a", **{"distill.teacher": teacher_onnx}), cpu
    )
    by_file = loop.load_data(
        train_cfg(small_cache, tmp_path / "b", **{"distill.teacher": str(saved)}), cpu
    )
    assert by_file.train_t.shape == (140, 7)
    torch.testing.assert_close(by_file.train_t, by_model.train_t, atol=1e-5, rtol=0)
    assert not list((tmp_path / "b").glob("teacher-*.npy"))  # nothing scored
    np.save(tmp_path / "half.npy", np.load(saved).astype(np.float16))  # half the bytes to carry
    half = loop.load_data(
        train_cfg(small_cache, tmp_path / "h", **{"distill.teacher": str(tmp_path / "half.npy")}),
        cpu,
    )
    torch.testing.assert_close(half.train_t.sum(1), torch.ones(140))
    torch.testing.assert_close(half.train_t, by_model.train_t, atol=1e-3, rtol=0)
    # a subset of Training takes its own images' rows, cleaning included
    p_label = by_model.train_t[torch.arange(140), by_model.train_y]
    below = float(p_label.median())  # drops about half: the one-epoch teacher is near chance
    kw = {"distill.teacher": str(saved), "train_limit": 100, "distill.drop_below": below}
    sub = loop.load_data(train_cfg(small_cache, tmp_path / "c", **kw), cpu)
    want = Classifier(teacher_onnx).classify(sub.train_x[:, 0].numpy())
    np.testing.assert_allclose(sub.train_t.numpy(), want, atol=1e-5)
    assert 32 <= len(sub.train_t) < 100
    assert (want[np.arange(len(want)), sub.train_y.numpy()] >= below).all()
    # fixed scores cannot follow augmented batches; other splits or files are refused
    np.save(tmp_path / "short.npy", np.load(saved)[:-1])
    np.save(tmp_path / "logits.npy", np.load(saved) * 2)
    for kw, match in (
        ({"distill.teacher": str(saved), "distill.online": "true"}, "is not a model"),
        ({"distill.teacher": str(tmp_path / "short.npy")}, r"shape \(139, 7\), expected \(140"),
        ({"distill.teacher": str(tmp_path / "logits.npy")}, "not probabilities"),
        ({"distill.teacher": str(tmp_path / "none.npy")}, "cannot read"),
    ):
        with pytest.raises(FerkitError, match=match):
            loop.load_data(train_cfg(small_cache, tmp_path / "d", **kw), cpu)


def test_drop_below_removes_the_images_the_teacher_doubts(
    small_cache, tmp_path, capsys, teacher_onnx
):
    from ferkit.core.errors import FerkitError
    from ferkit.data import load_cache
    from ferkit.modelfile.classifier import Classifier
    from ferkit.training.distill import drop_noisy

    x = torch.arange(6).view(6, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    probs = torch.full((6, 7), 0.1)
    probs[torch.arange(6), y] = torch.tensor([0.5, 0.05, 0.3, 0.01, 0.2, 0.6])
    kx, ky, kp = drop_noisy(x, y, probs, 0.1, keep_at_least=2)
    assert kx.flatten().tolist() == [0, 2, 4, 5] and ky.tolist() == [0, 2, 1, 2]
    assert torch.equal(kp, probs[[0, 2, 4, 5]])
    assert "dropped 2 of 6 Training images (per class [1, 1, 0, 0, 0, 0, 0])" in (
        capsys.readouterr().err
    )
    with pytest.raises(FerkitError, match=r"keeps 1 of 6 .* fewer than one batch"):
        drop_noisy(x, y, probs, 0.55, keep_at_least=2)

    # through load_data with a real teacher: exactly the images it doubts are gone
    images, labels = load_cache(small_cache).split("Training")
    p_label = Classifier(teacher_onnx).classify(images)[np.arange(len(labels)), labels]
    below = float(np.median(p_label))
    kw = {"distill.teacher": teacher_onnx, "distill.drop_below": below, "distill.weight": 0.0}
    cfg = train_cfg(small_cache, tmp_path / "clean", epochs=1, **kw)
    data = loop.load_data(cfg, torch.device("cpu"))
    kept = p_label >= below
    assert 0 < kept.sum() < len(labels)
    assert torch.equal(data.train_y, torch.from_numpy(labels[kept]))
    assert torch.equal(data.train_x[:, 0], torch.from_numpy(images[kept]))
    assert data.train_t is None  # weight 0: the teacher only cleans, the loss is plain CE
    loop.train(cfg)
    saved = json.loads((tmp_path / "clean" / "config.json").read_text())
    assert saved["config"]["distill"]["drop_below"] == below
    alone = train_cfg(small_cache, tmp_path / "x", **{"distill.drop_below": 0.1})
    with pytest.raises(FerkitError, match=r"distill\.drop_below needs a teacher"):
        loop.load_data(alone, torch.device("cpu"))


def test_relabel_above_gives_a_confident_teacher_its_class(
    small_cache, tmp_path, capsys, teacher_onnx
):
    from ferkit.core.errors import FerkitError
    from ferkit.data import load_cache
    from ferkit.modelfile.classifier import Classifier
    from ferkit.training.config import DistillConfig
    from ferkit.training.distill import clean_labels

    x = torch.arange(4).view(4, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 3])
    probs = torch.full((4, 7), 0.05)
    probs[0, 0], probs[1, 4], probs[2, 5], probs[3, 6] = 0.9, 0.7, 0.5, 0.6
    kd = DistillConfig(teacher="t.onnx", relabel_above=0.6)
    _, ky, _ = clean_labels(x, y, probs, kd, keep_at_least=1)
    assert ky.tolist() == [0, 4, 2, 6]  # where the teacher disagrees with >= 0.6 (image 3: =)
    assert "relabelled 2 of 4 Training images (per original class [0, 1, 0, 1, 0, 0, 0])" in (
        capsys.readouterr().err
    )
    # relabelling comes first: images 1 and 3 keep their new labels instead of being dropped
    both = dataclasses.replace(kd, drop_below=0.3)
    kx, ky, _ = clean_labels(x, y, probs, both, keep_at_least=1)
    assert kx.flatten().tolist() == [0, 1, 3] and ky.tolist() == [0, 4, 6]
    kx, _, _ = clean_labels(x, y, probs, dataclasses.replace(both, relabel_above=0.0), 1)
    assert kx.flatten().tolist() == [0]

    # through load_data with a real teacher: exactly the confident disagreements move
    images, labels = load_cache(small_cache).split("Training")
    p = Classifier(teacher_onnx).classify(images)
    top, p_top = p.argmax(1), p.max(1)
    above = float(np.median(p_top[top != labels]))
    want = np.where((top != labels) & (p_top >= above), top, labels)
    assert 0 < (want != labels).sum() < (top != labels).sum()
    kw = {"distill.teacher": teacher_onnx, "distill.relabel_above": above, "distill.weight": 0}
    data = loop.load_data(train_cfg(small_cache, tmp_path / "r", **kw), torch.device("cpu"))
    assert torch.equal(data.train_y, torch.from_numpy(want))
    assert len(data.train_x) == len(labels) and data.train_t is None
    for bad, match in (
        ({"distill.relabel_above": 0.5}, r"distill\.relabel_above needs a teacher"),
        ({**kw, "distill.relabel_above": 1.5}, r"relabel_above=1\.5: expected 0\.\.1"),
    ):
        with pytest.raises(FerkitError, match=match):
            loop.load_data(train_cfg(small_cache, tmp_path / "bad", **bad), torch.device("cpu"))
