"""Shared fixtures: tiny generated datasets in every source format."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from ferkit.data import synthetic
from tests.tiny_runs import prepared_cache, train_cfg

# Ray reads it when it is imported, whichever test module imports it first: its
# single-machine mode, every process of a local cluster bound to 127.0.0.1
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

ROOT = Path(__file__).resolve().parents[1]  # the repository
EXAMPLES = ROOT / "examples"
SHARED_ARCHIVE = ROOT.parent / "shared" / "fer2013" / "archive.zip"
# dlib's detector is the ferkit[dlib] extra; `make test` installs it, a plain install has not
needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None, reason="no dlib: pip install 'ferkit[dlib]'"
)
PER_SPLIT = {"Training": 6, "PublicTest": 2, "PrivateTest": 2}  # faces per class


@pytest.fixture(scope="session")
def faces() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, splits): 70 train, 14 public, 14 private synthetic faces."""
    return synthetic.make_dataset(PER_SPLIT, seed=1)


@pytest.fixture
def kaggle_zip(tmp_path: Path, faces) -> Path:
    return synthetic.write_kaggle_zip(tmp_path / "archive.zip", *faces)


@pytest.fixture
def kaggle_tree(tmp_path: Path, faces) -> Path:
    images, labels, splits = faces
    names = synthetic.kaggle_paths(labels, splits, ext=".png")
    return synthetic.write_tree(tmp_path / "fer2013", images, names)


@pytest.fixture
def csv_file(tmp_path: Path, faces) -> Path:
    return synthetic.write_csv(tmp_path / "fer2013.csv", *faces)


@pytest.fixture
def icml_csv(tmp_path: Path, faces) -> Path:
    return synthetic.write_csv(tmp_path / "icml_face_data.csv", *faces, icml=True)


@pytest.fixture(scope="session")
def easy_cache(tmp_path_factory) -> Path:
    """150 training faces per class: enough steps to learn in two epochs."""
    return prepared_cache(
        tmp_path_factory.mktemp("easy"), {"Training": 150, "PublicTest": 20, "PrivateTest": 20}
    )


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory) -> Path:
    return prepared_cache(
        tmp_path_factory.mktemp("small"), {"Training": 20, "PublicTest": 4, "PrivateTest": 4}
    )


@pytest.fixture(scope="session")
def plain_run(small_cache, tmp_path_factory) -> Path:
    """One epoch of the plain recipe: the baseline that options must change, and a teacher."""
    pytest.importorskip("torch", reason="training needs ferkit[train] (torch)")
    from ferkit.training import loop

    run = tmp_path_factory.mktemp("plain") / "run"
    loop.train(train_cfg(small_cache, run, epochs=1))
    return run


@pytest.fixture(scope="session")
def teacher_onnx(plain_run) -> str:
    from ferkit.export.torch_export import export

    export(plain_run, plain_run.parent / "teacher.onnx")
    return str(plain_run.parent / "teacher.onnx")
