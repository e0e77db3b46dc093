"""Bad input: one line naming the file (and row or member), exit 2, no traceback, no output."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ferkit.cli import main
from ferkit.data.synthetic import write_csv

HEADER = "emotion,pixels,Usage\n"
GOOD_PIXELS = " ".join(["128"] * 2304)


def _fails(source: Path, tmp_path: Path, capsys, *needles: str) -> str:
    out = tmp_path / "out"
    assert main(["data", "prepare", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists(), "a failed prepare must leave no output behind"
    return err


def test_missing_path(tmp_path, capsys):
    _fails(tmp_path / "nope.zip", tmp_path, capsys, "nope.zip", "no such file")


def test_not_a_zip(tmp_path, capsys):
    src = tmp_path / "archive.zip"
    src.write_bytes(b"this is not a zip at all" * 10)
    _fails(src, tmp_path, capsys, "archive.zip", "not a readable zip")


def test_truncated_zip(tmp_path, capsys, kaggle_zip):
    data = kaggle_zip.read_bytes()
    kaggle_zip.write_bytes(data[: len(data) // 2])
    _fails(kaggle_zip, tmp_path, capsys, "archive.zip", "not a readable zip")


def test_corrupt_member(tmp_path, capsys):
    src = tmp_path / "archive.zip"
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/happy/Training_1.jpg", b"x" * 5000)
    raw = bytearray(src.read_bytes())
    raw[60:64] = b"\xff\xff\xff\xff"  # damage the compressed stream
    src.write_bytes(bytes(raw))
    _fails(src, tmp_path, capsys, "archive.zip", "train/happy/Training_1.jpg")


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("emotion,Usage\n3,Training\n", ["missing column pixels"]),
        (HEADER + "3,1 2 3,Training\n", ["row 2", "3 values, expected 2304"]),
        (
            HEADER + f"3,{GOOD_PIXELS},Training\n3,{GOOD_PIXELS[:-3]}abc,Training\n",
            ["row 3", "'abc' is not a number"],
        ),
        (HEADER + f"9,{GOOD_PIXELS},Training\n", ["row 2", "unknown emotion index 9"]),
        (HEADER + f"happy,{GOOD_PIXELS},Training\n", ["row 2", "'happy' is not a number"]),
        (HEADER + f"3,{GOOD_PIXELS},Validation\n", ["row 2", "Usage 'Validation'"]),
        (HEADER + f"3,{GOOD_PIXELS[:-3]}300,Training\n", ["row 2", "within 0..255"]),
        (HEADER, ["no images found"]),
        ("", ["empty"]),
    ],
    ids=[
        "missing-column",
        "short-pixels",
        "non-numeric-pixel",
        "unknown-emotion",
        "non-numeric-emotion",
        "unknown-usage",
        "out-of-range",
        "header-only",
        "empty-file",
    ],
)
def test_bad_csv(tmp_path, capsys, body, needles):
    src = tmp_path / "fer2013.csv"
    src.write_text(body)
    _fails(src, tmp_path, capsys, "fer2013.csv", *needles)


def test_folder_that_is_not_an_emotion(tmp_path, capsys, kaggle_tree):
    (kaggle_tree / "train" / "happy").rename(kaggle_tree / "train" / "joyful")
    err = _fails(kaggle_tree, tmp_path, capsys, "'joyful'", "expected one of")
    assert "angry, disgust, fear, happy, sad, surprise, neutral" in err


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", tmp_path, capsys, "no images found")


def test_empty_zip(tmp_path, capsys):
    src = tmp_path / "archive.zip"
    zipfile.ZipFile(src, "w").close()
    _fails(src, tmp_path, capsys, "archive.zip", "no images found")


def test_too_many_unreadable_images(tmp_path, capsys, faces):
    _images, _labels, _splits = faces
    src = tmp_path / "archive.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for i in range(20):
            zf.writestr(f"train/happy/Training_{i}.jpg", b"garbage")
        zf.writestr("train/sad/Training_99.png", b"\x89PNG truncated")
    _fails(src, tmp_path, capsys, "21 of 21 images unreadable", "more than 1%")


def test_unsupported_file(tmp_path, capsys):
    src = tmp_path / "notes.txt"
    src.write_text("hello")
    _fails(src, tmp_path, capsys, "notes.txt", "not a FER-2013 source")


def test_crash_while_writing_keeps_the_old_cache(tmp_path, faces, monkeypatch):
    from ferkit.data import cache as cache_mod
    from ferkit.data import load_cache
    from ferkit.data.prepare import PrepareConfig, prepare

    src = write_csv(tmp_path / "fer2013.csv", *faces)
    out = tmp_path / "out"

    def crash(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(cache_mod.np, "savez", crash)
        with pytest.raises(OSError):
            prepare(PrepareConfig(source=src, out=out))
        assert list(out.iterdir()) == [], "no cache, manifest or temporary file may remain"
    prepare(PrepareConfig(source=src, out=out))
    before = (out / "cache.npz").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(cache_mod.np, "savez", crash)
        with pytest.raises(OSError):
            prepare(PrepareConfig(source=src, out=out, force=True))
    assert (out / "cache.npz").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["cache.npz", "manifest.json"]
    assert load_cache(out).labels.shape == (len(faces[1]),)
