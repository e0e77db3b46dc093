"""Video jobs through FastAPI's test client: upload, progress, results, limits, clean-up."""

from __future__ import annotations

import csv
import io
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="serving needs ferkit[serve]")
from fastapi.testclient import TestClient

from ferkit.core.labels import LABELS
from ferkit.serve.app import create_app
from ferkit.serve.config import JobsConfig, ServeConfig
from tests.conftest import EXAMPLES


def clip(path: Path, frames: int = 20, fps: float = 10.0, size: tuple = (320, 240)) -> bytes:
    """A short mp4 of the astronaut (one face) drifting right."""
    face = cv2.resize(cv2.imread(str(EXAMPLES / "astronaut.jpg")), size)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        w.write(np.roll(face, 2 * i, axis=1))
    w.release()
    return path.read_bytes()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> bytes:
    return clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def app(root: Path, **limits) -> TestClient:
    return TestClient(create_app(ServeConfig(model="fast", jobs=JobsConfig(root=root, **limits))))


def upload(client: TestClient, data: bytes, name: str = "clip.mp4"):
    return client.post("/v1/jobs", files={"file": (name, data)})


def wait(client: TestClient, job_id: str, timeout: float = 60) -> list[dict]:
    """Poll until the job ends; every status seen."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(client.get(f"/v1/jobs/{job_id}").json())
        if seen[-1]["status"] in ("done", "failed"):
            return seen
        time.sleep(0.05)
    pytest.fail(f"job {job_id} still {seen[-1]['status']} after {timeout} s")


def test_a_video_job_runs_to_its_results(tmp_path, video):
    c = app(tmp_path)
    r = upload(c, video)
    assert r.status_code == 202
    job = r.json()
    assert job["status"] in ("queued", "running") and job["total"] == 20
    assert job["file"] == "clip.mp4" and job["files"] == {} and job["expires_in_s"] is None
    seen = wait(c, job["id"])
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0  # it only goes forward
    done = seen[-1]
    assert done["status"] == "done" and done["error"] is None, done
    assert done["summary"]["frames"] == 20 and done["summary"]["tracks"] == 1
    assert 890 < done["expires_in_s"] <= 900
    assert set(done["files"]) == {"video", "csv", "timeline"}
    movie = c.get(done["files"]["video"])
    assert movie.headers["content-type"] == "video/webm"
    assert movie.content[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM (Matroska) file
    out = tmp_path / "annotated.webm"
    out.write_bytes(movie.content)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320 and cap.read()[0]
    cap.release()
    rows = list(csv.DictReader(io.StringIO(c.get(done["files"]["csv"]).text)))
    assert len(rows) == 20 and {r["track"] for r in rows} == {"0"}
    assert rows[0]["label"] in LABELS
    assert c.get(done["files"]["timeline"]).content.startswith(b"\x89PNG")
    folder = tmp_path / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "annotated.webm",
        "frames.csv",
        "status.json",
        "timeline.png",
    ]  # fmt: skip  (the upload is deleted once the job ends)
    assert c.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert not folder.exists() and c.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_finished_jobs_are_cleaned_up(tmp_path, video):
    c = app(tmp_path, keep_s=0.5)
    job_id = upload(c, video).json()["id"]
    assert wait(c, job_id)[-1]["status"] == "done"
    time.sleep(0.6)
    r = c.get(f"/v1/jobs/{job_id}")  # each request sweeps first
    assert r.status_code == 404 and "expire after 0.5 s" in r.json()["detail"]
    assert not (tmp_path / job_id).exists()


def test_bad_and_oversized_videos_get_json_errors(tmp_path, video):
    c = app(tmp_path, max_video_mb=0.01, max_seconds=1.5, max_frame_pixels=50_000)
    big = upload(c, b"\0" * 20_000)
    assert big.status_code == 413 and "over the upload limit of 0.01 MB" in big.json()["detail"]
    c = app(tmp_path, max_seconds=1.5)
    junk = upload(c, b"not a video", "junk.mp4")
    assert junk.status_code == 415 and junk.json() == {"detail": "junk.mp4: not a readable video"}
    long = upload(c, video)  # 20 frames at 10 fps: 2 s
    assert long.status_code == 413
    assert long.json()["detail"] == "clip.mp4: 2 s of video, over the limit of 1.5 s"
    c = app(tmp_path, max_frame_pixels=50_000)
    wide = upload(c, video)
    assert wide.status_code == 413 and "320x240 are over the limit of 50,000" in wide.text
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_jobs_are_bounded_in_number(tmp_path, video):
    c = app(tmp_path, max_jobs=1)
    first = upload(c, video).json()["id"]
    busy = upload(c, video)
    assert busy.status_code == 429 and "1 video jobs are already running" in busy.json()["detail"]
    assert c.delete(f"/v1/jobs/{first}").status_code == 409  # not while it runs
    wait(c, first)
    assert upload(c, video).status_code == 202  # a slot again


def test_unknown_jobs_and_files_are_404(tmp_path, video):
    c = app(tmp_path)
    assert c.get("/v1/jobs/0123456789abcdef").status_code == 404
    assert c.get("/v1/jobs/../../etc").status_code == 404
    job_id = upload(c, video).json()["id"]
    wait(c, job_id)
    assert c.get(f"/v1/jobs/{job_id}/status.json").status_code == 404
    assert c.get(f"/v1/jobs/{job_id}/frames.csv").status_code == 200


def test_a_job_that_fails_says_why(tmp_path, video, monkeypatch):
    import ferkit.serve.jobs

    def broken(*_, **__):
        raise ferkit.serve.jobs.FerkitError("clip.mp4: no frames could be read")

    monkeypatch.setattr(ferkit.serve.jobs, "process_video", broken)
    c = app(tmp_path)
    end = wait(c, upload(c, video).json()["id"])[-1]
    assert end["status"] == "failed" and end["error"] == "clip.mp4: no frames could be read"
    assert end["files"] == {} and end["expires_in_s"] > 0
    assert c.get(f"/v1/jobs/{end['id']}/frames.csv").status_code == 404


def test_the_temporary_jobs_folder_goes_with_the_server(video):
    made = lambda: set(Path(tempfile.gettempdir()).glob("ferkit-jobs-*"))  # noqa: E731
    before = made()
    create_app(ServeConfig(model="fast"))
    assert made() == before  # made on the first job only
    with TestClient(create_app(ServeConfig(model="fast"))) as c:
        job_id = upload(c, video).json()["id"]
        wait(c, job_id)
        folder = c.app.state.jobs.root
        assert (folder / job_id / "frames.csv").is_file()
    assert not folder.exists()


def test_job_limits_must_be_positive():
    from ferkit.core.errors import FerkitError

    with pytest.raises(FerkitError, match="max_jobs must be positive, not 0"):
        JobsConfig(max_jobs=0)


def test_serve_refuses_a_jobs_dir_it_cannot_write(tmp_path, capsys):
    from ferkit.cli import main

    (tmp_path / "file").write_text("x")
    assert main(["serve", "--jobs-dir", str(tmp_path / "file" / "jobs")]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}/file/jobs: {tmp_path}/file is a file, not a folder\n"
    )
