"""`ferkit serve --workers 2`: a real server of two processes on loopback. Streams keep
their tracker on the worker that accepted them; jobs are answered by whichever worker
gets the poll, through the shared jobs folder."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="serving needs ferkit[serve]")
websockets = pytest.importorskip("websockets.sync.client", reason="needs websockets (serve)")

from tests.chromium import ferkit_serve
from tests.serve.test_jobs import clip
from tests.serve.test_stream import ASTRONAUT, jpeg, shifted


def workers(pid: int) -> list[int]:
    """PIDs of the worker processes uvicorn spawned under `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            out.append(int(stat.parent.name))
    return out


def post_video(url: str, data: bytes) -> dict:
    boundary = "ferkitboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"'
            f"\r\nContent-Type: video/mp4\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/v1/jobs", body, {"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        assert r.status == 202
        return json.load(r)


@pytest.fixture(scope="module")
def server():
    with ferkit_serve("--workers", "2", "--model", "fast", timeout=120) as s:
        yield s


def test_two_worker_processes_serve_one_port(server):
    deadline = time.monotonic() + 30
    while len(workers(server.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers(server.pid)) == 2  # under uvicorn's supervisor


def test_a_stream_keeps_its_tracks_on_its_worker(server):
    ws_url = server.url.replace("http://", "ws://") + "/v1/stream"
    with websockets.connect(ws_url, open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        tracks = []
        for i in range(8):
            ws.send(jpeg(shifted(ASTRONAUT, 3 * i)))
            tracks.append([f["track"] for f in json.loads(ws.recv(timeout=30))["faces"]])
    assert tracks == [[0]] * 8


def test_any_worker_answers_for_a_job(server, tmp_path):
    job = post_video(server.url, clip(tmp_path / "clip.mp4"))
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(f"{server.url}/v1/jobs/{job['id']}", timeout=10) as r:
            status = json.load(r)  # a 404 from a worker that did not know it would raise
        if status["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status["status"] == "done", status
    with urllib.request.urlopen(server.url + status["files"]["csv"], timeout=10) as r:
        assert r.read().startswith(b"path,frame,time_s,track")


def test_the_config_reaches_the_workers_whole(tmp_path):
    from dataclasses import asdict

    from ferkit.serve.app import config_from_json
    from ferkit.serve.config import JobsConfig, ServeConfig, StreamConfig

    cfg = ServeConfig(
        model="fast",
        min_face=40,
        stream=StreamConfig(max_streams=2, max_fps=12.5),
        jobs=JobsConfig(root=tmp_path, max_jobs=3, keep_s=60),
    )
    assert config_from_json(json.dumps(asdict(cfg), default=str)) == cfg
