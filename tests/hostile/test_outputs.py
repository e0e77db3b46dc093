"""Silent loss: a full disk, a photo already in --out, like names, an export over a
checkpoint, outputs inside the input folder and broken links each cost one line, never a
file or a row."""

from __future__ import annotations

import json
import os

from ferkit.cli import main
from tests.conftest import EXAMPLES
from tests.hostile.bombs import one_line_error, run_capped, run_disk_full
from tests.serve.test_jobs import clip

PHOTO = (EXAMPLES / "astronaut.jpg").read_bytes()  # 68 KB; its annotated copy is larger


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def test_a_full_disk_names_each_file_and_keeps_every_row(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(PHOTO)
    r = run_disk_full(["predict", "a.jpg", "b.jpg", "--out", "out"], tmp_path, kb=16)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for name in ("a.jpg", "b.jpg"):
        assert f"out/{name}: File too large; nothing was written" in r.stderr
        assert not (tmp_path / "out" / name).exists()
    assert [row["path"] for row in rows(tmp_path / "out" / "predictions.jsonl")] == [
        "a.jpg",
        "b.jpg",
    ]


def test_a_video_on_a_full_disk_is_an_error_not_a_broken_file(tmp_path):
    clip(tmp_path / "clip.mp4", frames=30)
    r = run_disk_full(["video", "clip.mp4", "--out", "out.mp4"], tmp_path, kb=40)
    assert "out.mp4: the video did not write whole" in one_line_error(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_predict_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(PHOTO)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.jpg").write_bytes(b"my own photo")
    args = ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "out/a.jpg: exists and is not an annotated copy ferkit wrote" in capsys.readouterr().err
    assert (tmp_path / "out" / "a.jpg").read_bytes() == b"my own photo"
    (tmp_path / "out" / "a.jpg").unlink()
    for _ in range(2):  # a rerun replaces its own copies
        assert main(args) == 0


def test_three_like_names_keep_three_copies(tmp_path):
    for name in ("a.jpg", "a.jpeg", "a.jpeg.jpg"):
        (tmp_path / name).write_bytes(PHOTO)
    assert main(["predict", str(tmp_path / "a.jpg"), str(tmp_path / "a.jpeg"),
                 str(tmp_path / "a.jpeg.jpg"), "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "out").glob("*.jpg"))
    assert names == ["a.jpeg-2.jpg", "a.jpeg.jpg", "a.jpg"]


def test_export_never_writes_a_non_onnx_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"checkpoint")
    r = run_capped(["export", "run", "--out", "run/best.pt"], tmp_path)
    assert "give --out a name ending .onnx" in one_line_error(r)
    assert (run / "best.pt").read_bytes() == b"checkpoint"


def test_a_rerun_into_a_folder_inside_the_input_does_not_read_its_outputs(tmp_path):
    (tmp_path / "a.jpg").write_bytes(PHOTO)
    for _ in range(2):
        assert main(["predict", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert [row["path"] for row in rows(tmp_path / "out" / "predictions.jsonl")] == [
        str(tmp_path / "a.jpg")
    ]


def test_broken_and_looping_links_are_reported_not_dropped(tmp_path):
    (tmp_path / "ok.jpg").write_bytes(PHOTO)
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    os.symlink(tmp_path / "loop.jpg", tmp_path / "loop.jpg")
    r = run_capped(["predict", "ok.jpg", "dangling.jpg", "loop.jpg"], tmp_path)
    assert r.returncode == 1, r.stderr
    assert "dangling.jpg: No such file or directory" in r.stderr
    assert "loop.jpg: Too many levels of symbolic links" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("3 images, 1 faces")
