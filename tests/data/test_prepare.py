"""`ferkit data prepare` on every source format: counts, labels, splits, pixels, no-op reruns."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from ferkit.core.labels import LABELS, SPLITS
from ferkit.data import load_cache
from ferkit.data.prepare import PrepareConfig, carve_validation, prepare
from ferkit.data.synthetic import draw_face


def _expected_counts(labels, splits) -> dict[str, list[int]]:
    return {s: np.bincount(labels[splits == i], minlength=7).tolist() for i, s in enumerate(SPLITS)}


@pytest.mark.parametrize("fixture", ["kaggle_zip", "kaggle_tree", "csv_file", "icml_csv"])
def test_prepare_formats_keep_official_splits(fixture, request, faces, tmp_path):
    images, labels, splits = faces
    source = request.getfixturevalue(fixture)
    out = tmp_path / "cache"
    result = prepare(PrepareConfig(source=source, out=out))
    assert not result.up_to_date
    cache = load_cache(out)
    assert cache.images.shape == (len(labels), 48, 48) and cache.images.dtype == np.uint8
    assert cache.counts() == _expected_counts(labels, splits)
    assert cache.manifest["labels"] == list(LABELS)
    assert json.loads((out / "manifest.json").read_text()) == cache.manifest
    if fixture in ("kaggle_tree", "csv_file", "icml_csv"):  # lossless formats: exact pixels
        order = (
            np.argsort([int(i.rsplit("_", 1)[1].split(".")[0]) for i in cache.ids])
            if (fixture == "kaggle_tree")
            else np.arange(len(labels))
        )
        np.testing.assert_array_equal(cache.images[order], images)
        np.testing.assert_array_equal(cache.labels[order], labels)
    else:  # JPEG: close, not exact
        assert cache.ids[0].startswith(("test/", "train/"))
        assert np.abs(cache.images.astype(int).mean() - images.mean()) < 2


def test_rerun_is_a_noop_and_force_rewrites(kaggle_zip, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(out)]) == 0
    mtime = (out / "cache.npz").stat().st_mtime_ns
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "cache.npz").stat().st_mtime_ns == mtime
    assert main(["data", "prepare", str(kaggle_zip), "--out", str(out), "--force"]) == 0
    assert (out / "cache.npz").stat().st_mtime_ns != mtime


def test_changed_source_is_prepared_again(csv_file, tmp_path):
    out = tmp_path / "cache"
    prepare(PrepareConfig(source=csv_file, out=out))
    lines = csv_file.read_text().splitlines()
    csv_file.write_text("\n".join(lines[:-1]) + "\n")  # drop the last row
    result = prepare(PrepareConfig(source=csv_file, out=out))
    assert not result.up_to_date
    assert load_cache(out).labels.shape[0] == len(lines) - 2


def test_colour_folder_without_splits_is_resized_and_carved(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "mine"
    for label, name in enumerate(
        ["Anger", "disgust", "fear", "happy", "sad", "surprised", "neutral"]
    ):
        (root / name).mkdir(parents=True)
        for i in range(20):
            face = cv2.resize(draw_face(label, rng), (120, 90))  # other size, not square
            colour = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
            colour[..., 2] = 255 - colour[..., 2]  # really colour
            cv2.imwrite(str(root / name / f"img{i}.png"), colour)
    result = prepare(PrepareConfig(source=root, out=tmp_path / "c", val_fraction=0.25, seed=7))
    cache = load_cache(tmp_path / "c")
    assert cache.images.shape == (140, 48, 48)
    counts = cache.counts()
    assert counts["Training"] == [15] * 7 and counts["PublicTest"] == [5] * 7
    assert counts["PrivateTest"] == [0] * 7
    assert "carved 25%" in result.manifest["split_source"]
    assert any("carved" in w for w in result.warnings)
    # deterministic: the same seed carves the same rows
    prepare(PrepareConfig(source=root, out=tmp_path / "d", val_fraction=0.25, seed=7))
    np.testing.assert_array_equal(load_cache(tmp_path / "d").splits, cache.splits)


def test_carve_is_stratified_and_seeded():
    labels = np.repeat(np.arange(7), [100, 10, 50, 200, 80, 60, 90])
    splits = np.zeros_like(labels, dtype=np.int8)
    a = carve_validation(labels, splits, 0.1, seed=0)
    b = carve_validation(labels, splits, 0.1, seed=0)
    c = carve_validation(labels, splits, 0.1, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(labels[a == 1], minlength=7).tolist() == [10, 1, 5, 20, 8, 6, 9]


def test_a_few_unreadable_images_are_skipped_and_reported(tmp_path, faces, capsys):
    images, labels, _splits = faces
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as zf:
        for i in range(150):
            _ok, buf = cv2.imencode(".png", images[i % len(images)])
            zf.writestr(f"train/{LABELS[labels[i % len(labels)]]}/Training_{i}.png", buf.tobytes())
        zf.writestr("train/happy/Training_999.png", b"not an image")
        zf.writestr("test/sad/PublicTest_1.png", cv2.imencode(".png", images[0])[1].tobytes())
        zf.writestr("README.txt", "ignored")
    assert main(["data", "prepare", str(big), "--out", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "1 of 152 images unreadable" in err and "train/happy/Training_999.png" in err
    assert load_cache(tmp_path / "c").manifest["unreadable_skipped"] == 1


def test_cross_split_duplicates_are_warned(tmp_path, faces, capsys):
    images, labels, splits = faces
    splits = splits.copy()
    images = images.copy()
    pub = np.flatnonzero(splits == 1)[:3]
    images[pub] = images[:3]  # three Training faces reappear in PublicTest
    from ferkit.data.synthetic import write_csv

    src = write_csv(tmp_path / "dup.csv", images, labels, splits)
    assert main(["data", "prepare", str(src), "--out", str(tmp_path / "c")]) == 0
    assert "6 images have identical pixels in another split" in capsys.readouterr().err
