"""`ferkit predict`: the command matches the Python API, writes annotated copies, reports a
bad file and goes on, classifies crops without detection, and fails in one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit import LABELS, EmotionRecognizer
from ferkit.cli import main
from tests.conftest import EXAMPLES

ASTRONAUT = EXAMPLES / "astronaut.jpg"


@pytest.fixture(scope="module")
def rec() -> EmotionRecognizer:
    return EmotionRecognizer(threads=1)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_matches_the_api_and_writes_annotated_images(tmp_path, rec, capsys):
    code = main(["predict", str(ASTRONAUT), "--out", str(tmp_path / "out")])
    assert code == 0
    (row,) = _rows(tmp_path / "out" / "predictions.jsonl")
    (face,) = rec.predict(ASTRONAUT)
    assert row["box"] == list(face.box) and row["label"] == face.label
    assert row["probs"] == pytest.approx(face.probs, abs=1e-6)
    annotated = cv2.imread(str(tmp_path / "out" / "astronaut.jpg"))
    assert annotated.shape == (512, 512, 3)
    x, y, w, _ = face.box
    original = cv2.imread(str(ASTRONAUT))
    # the box outline is drawn: its top edge differs from the photo, a far corner does not
    assert np.abs(annotated[y, x : x + w].astype(int) - original[y, x : x + w]).mean() > 30
    assert np.abs(annotated[-20:, :20].astype(int) - original[-20:, :20]).mean() < 5
    assert "1 images, 1 faces, 0 with no face, 0 errors" in capsys.readouterr().err


def test_cli_batch_reports_bad_files_and_goes_on(tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.jpg").write_bytes(ASTRONAUT.read_bytes())
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    (folder / "cat.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes())
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    code = main(["predict", str(folder), "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 1  # one file failed
    rows = list(csv.DictReader(out.splitlines()))
    assert len(rows) == 1 and rows[0]["path"].endswith("a.jpg") and rows[0]["label"] == "happy"
    assert float(rows[0]["happy"]) == pytest.approx(float(rows[0]["confidence"]))
    assert "b.png: unreadable" in err and "cat.jpg: no face found" in err
    assert "3 images, 1 faces, 1 with no face, 1 errors" in err
    assert "Traceback" not in err


def test_cli_no_detect_classifies_the_whole_crop(tmp_path, rec, capsys):
    rng = np.random.default_rng(1)
    face = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "crop.png"), face)
    assert main(["predict", str(tmp_path / "crop.png"), "--no-detect"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["box"] == [0, 0, 48, 48]
    expect = rec.classify(face[None])[0]
    assert [row["probs"][k] for k in LABELS] == pytest.approx(expect.tolist(), abs=1e-6)


def test_cli_usage_errors_are_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nothing*.jpg")]) == 2
    assert "no such file, folder or matching glob" in capsys.readouterr().err
    assert main(["predict", str(ASTRONAUT), "--detector", "yunet:/no/such.onnx"]) == 2
    assert "no such YuNet model file" in capsys.readouterr().err
