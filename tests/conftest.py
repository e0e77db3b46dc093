"""Shared fixtures: tiny generated datasets in every source format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferkit.data import synthetic

ROOT = Path(__file__).resolve().parents[1]  # the repository
EXAMPLES = ROOT / "examples"
SHARED_ARCHIVE = ROOT.parent / "shared" / "fer2013" / "archive.zip"
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
