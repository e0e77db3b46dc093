"""`ferkit predict --engine ray` on a local 2-CPU Ray cluster bound to 127.0.0.1: the same
faces as `--engine local`, error and no-face rows, and the refusals."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="--engine ray needs ferkit[ray]")
pq = pytest.importorskip("pyarrow.parquet", reason="--engine ray needs ferkit[ray]")

from ferkit.apps.predict import PredictConfig, Summary, predict_files
from ferkit.cli import main
from ferkit.core.decoding import NOT_AN_IMAGE
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.scale.config import RayConfig
from ferkit.scale.ray_engine import predict_on_ray
from ferkit.vision.recognize import EmotionRecognizer
from tests.conftest import EXAMPLES
from tests.ray_cluster import local_cluster, memory_of, small_crops


@pytest.fixture(scope="module")
def cluster():
    with local_cluster():
        yield


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The three bundled photos, a copy of one in a subfolder, and a corrupt file."""
    root = tmp_path_factory.mktemp("photos")
    for p in EXAMPLES.glob("*.*"):
        if p.suffix in (".jpg", ".png"):
            shutil.copy(p, root / p.name)
    (root / "more").mkdir()
    shutil.copy(EXAMPLES / "astronaut.jpg", root / "more" / "copy.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return sorted(str(p) for p in root.rglob("*.*"))


def local_rows(paths: list[str]) -> tuple[dict, Summary]:
    """`--engine local`'s rows, keyed by (path, face), and its summary."""
    out = io.StringIO()
    cfg = PredictConfig(inputs=tuple(Path(p) for p in paths))
    summary = predict_files(cfg, EmotionRecognizer(), out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return {(r["path"], r["face"]): r for r in rows}, summary


def test_ray_rows_equal_the_local_engines(cluster, photos, tmp_path):
    out = str(tmp_path / "out")
    summary = predict_on_ray(RayConfig(inputs=tuple(photos), out=out, actor_cpus=0.5))
    rows = pq.read_table(out).to_pylist()
    local, local_summary = local_rows(photos)
    faces = {(r["path"], r["face"]): r for r in rows if r["status"] == "face"}
    assert set(faces) == set(local) and len(faces) == 3  # astronaut, its copy, cameraman
    for key, mine in local.items():
        theirs = faces[key]
        assert [theirs[k] for k in ("x", "y", "width", "height")] == mine["box"]
        assert theirs["label"] == mine["label"] and theirs["score"] == mine["score"]
        assert [theirs[k] for k in LABELS] == [mine["probs"][k] for k in LABELS]  # exactly
    others = {r["path"]: r for r in rows if r["status"] != "face"}
    broken = next(p for p in photos if p.endswith("broken.jpg"))
    chelsea = next(p for p in photos if p.endswith("chelsea.jpg"))
    assert others[broken]["status"] == "error" and others[broken]["face"] is None
    assert others[broken]["error"] == f"{broken}: {NOT_AN_IMAGE}" == local_summary.errors[0]
    assert others[chelsea]["status"] == "no_face" and others[chelsea]["error"] is None
    assert set(others) == {broken, chelsea}
    assert (summary.images, summary.faces) == (local_summary.images, local_summary.faces)
    assert summary.no_face == [chelsea] and len(summary.errors) == 1


def test_the_command_writes_parquet_refuses_a_rerun_and_resumes(cluster, photos, tmp_path,
                                                                 capsys):  # fmt: skip
    out = tmp_path / "out"
    astronaut = next(p for p in photos if p.endswith("astronaut.jpg"))
    ray_predict = ["predict", "--engine", "ray", "--actor-cpus", "0.5"]
    assert main([*ray_predict, astronaut, "--out", str(out)]) == 0
    assert "1 images, 1 faces, 0 with no face, 0 errors" in capsys.readouterr().err
    assert [r["label"] for r in pq.read_table(out).to_pylist()] == ["happy"]
    assert main([*ray_predict, astronaut, "--out", str(out)]) == 2
    assert "already holds Parquet results; give --resume" in capsys.readouterr().err
    # a run killed while writing leaves a file without its footer
    whole = next(out.rglob("*.parquet")).read_bytes()
    (out / "killed.parquet").write_bytes(whole[: len(whole) // 2])
    assert main([*ray_predict, "--resume", *photos, "--out", str(out)]) == 1  # broken.jpg
    err = capsys.readouterr().err
    assert f"removed {out / 'killed.parquet'}: half-written by an interrupted run" in err
    assert "5 images, 3 faces, 1 with no face, 1 errors" in err
    assert "; 1 files were done already" in err
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["path"] for r in rows) == photos  # one row each: astronaut not redone
    assert not (out / "killed.parquet").exists()
    assert main([*ray_predict, "--resume", *photos, "--out", str(out)]) == 1  # nothing to do
    assert "5 images, 3 faces, 1 with no face, 1 errors; 0.0 faces/s; 5 files were done" in (
        capsys.readouterr().err
    )
    assert pq.read_table(out).num_rows == 5


def test_ray_needs_an_out_folder(photos, capsys):
    assert main(["predict", "--engine", "ray", photos[0]]) == 2
    assert capsys.readouterr().err == (
        "error: --engine ray writes Parquet: give --out (a folder or a URI)\n"
    )


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray.data", None)  # `import ray.data` fails
    with pytest.raises(FerkitError, match=r"pip install 'ferkit\[ray\]'"):
        predict_on_ray(RayConfig(inputs=("x.jpg",), out=str(tmp_path / "out")))


def test_each_video_is_a_task_with_its_own_results_folder(cluster, tmp_path, capsys):
    from tests.serve.test_jobs import clip

    (tmp_path / "a").mkdir()
    clip(tmp_path / "one.mp4", frames=12)
    clip(tmp_path / "a" / "one.mp4", frames=8)  # the same stem: its folder is one-2
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out"
    args = [str(tmp_path / "one.mp4"), str(tmp_path / "a" / "one.mp4"), str(bad)]
    code = main(["video", "--engine", "ray", "--task-cpus", "0.5", *args, "--out", str(out)])
    assert code == 1  # one video failed; the others are done
    assert sorted(p.name for p in out.iterdir()) == ["one", "one-2", "summary.parquet"]
    for name, frames in (("one", 12), ("one-2", 8)):
        assert sorted(p.name for p in (out / name).iterdir()) == [
            "annotated.mp4", "frames.csv", "timeline.png",
        ]  # fmt: skip
        lines = (out / name / "frames.csv").read_text().splitlines()
        assert len(lines) == 1 + frames  # one face per frame
    rows = pq.read_table(out / "summary.parquet").to_pylist()
    assert [r["video"] for r in rows] == args
    assert [r["status"] for r in rows] == ["done", "done", "error"]
    assert [r["frames"] for r in rows] == [12, 8, None] and rows[0]["tracks"] == 1
    assert rows[2]["error"] == f"{bad}: not a readable video" and rows[2]["folder"] is None
    err = capsys.readouterr().err
    assert "3 videos, 1 failed" in err and f"{bad}: not a readable video" in err
    assert f"{args[0]}: 12 frames, 12 face detections in 1 tracks -> {out / 'one'}" in err


def test_several_videos_need_the_ray_engine(tmp_path, capsys):
    assert main(["video", "a.mp4", "b.mp4"]) == 2
    assert "2 videos: several need --engine ray; give one" in capsys.readouterr().err


def test_actors_that_leave_no_cpu_for_reading_are_refused(cluster, photos, tmp_path):
    cfg = RayConfig(inputs=tuple(photos), out=str(tmp_path / "out"), actors=2, actor_cpus=1)
    with pytest.raises(FerkitError, match="leave the cluster's 2 CPUs none for reading"):
        predict_on_ray(cfg)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_memory_stays_bounded_on_a_few_hundred_small_files(cluster, tmp_path):
    """300 small face crops through one actor: its peak RSS under 600 MB (the recogniser
    about 100 MB, Ray's worker about 170) and the driver's growth under 100 MB, since the
    rows stream to Parquet rather than back to it."""
    paths = small_crops(tmp_path, 300)
    # a warm-up run of 10 first: the driver's imports of Ray Data and pyarrow, and its
    # first executor, are not growth with the files
    predict_on_ray(RayConfig(inputs=tuple(paths[:10]), out=str(tmp_path / "warm"), detect=False))
    cfg = RayConfig(inputs=tuple(paths), out=str(tmp_path / "out"), detect=False)
    summary, memory = memory_of(lambda: predict_on_ray(cfg))
    assert (summary.images, summary.faces) == (300, 300)
    assert pq.read_table(tmp_path / "out").num_rows == 300
    assert len(memory.peaks) >= 3  # Ray's own processes and the workers were seen
    assert max(memory.peaks.values()) < 600, sorted(memory.peaks.values())
    assert memory.driver_growth < 100, memory.driver_growth


def test_a_pipe_and_a_file_over_the_byte_limit_are_rows_not_an_aborted_job(cluster, tmp_path):
    """A FIFO named as an input aborted the whole job, and a 2.2 GB junk file was read in
    full: each is now an error row, before Ray reads anything, and the photo still runs."""
    from ferkit.core.limits import MAX_IMAGE_BYTES

    os.mkfifo(tmp_path / "pipe.jpg")
    with open(tmp_path / "huge.jpg", "wb") as f:  # sparse: no disk used
        f.truncate(MAX_IMAGE_BYTES + 1)
    shutil.copy(EXAMPLES / "astronaut.jpg", tmp_path / "ok.jpg")
    paths = tuple(str(tmp_path / n) for n in ("ok.jpg", "pipe.jpg", "huge.jpg"))
    summary = predict_on_ray(RayConfig(inputs=paths, out=str(tmp_path / "out"), actor_cpus=0.5))
    assert (summary.images, summary.faces) == (3, 1)
    assert sorted(summary.errors) == [
        f"{paths[2]}: {MAX_IMAGE_BYTES + 1:,} bytes, over the limit of {MAX_IMAGE_BYTES:,}",
        f"{paths[1]}: not a regular file (a pipe or device may never end)",
    ]
