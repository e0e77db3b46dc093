"""Terminals, pipes, ports and servers: a hostile file name prints as text, a closed pipe
ends the command quietly, a busy port is one line, a POST without its file gets the one-line
JSON every other error gets, and a camera's jittery 30 fps passes the stream's rate limit
while a flood is closed."""

from __future__ import annotations

import random
import socket
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES
from tests.hostile.bombs import one_line_error, run_capped

HOSTILE = "a\x1b[2J\x9b31m\nerror: forged"


def test_a_hostile_file_name_is_printed_as_escapes(tmp_path):
    (tmp_path / f"{HOSTILE}.jpg").write_text("not a photo")
    r = run_capped(["predict", f"{HOSTILE}.jpg", "missing\x1b[2J.jpg"], tmp_path)
    assert "\x1b" not in r.stderr and "\x9b" not in r.stderr
    assert "error: forged" not in r.stderr
    assert r"missing\x1b[2J.jpg: no such file" in one_line_error(r)
    r = run_capped(["predict", f"{HOSTILE}.jpg"], tmp_path)
    assert r.returncode == 1
    assert r"a\x1b[2J\x9b31m\nerror: forged.jpg: not an image" in r.stderr


def test_a_closed_pipe_ends_predict_quietly(tmp_path):
    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferkit", "predict", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("{")  # one row, then the reader goes away
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err  # 128 + SIGPIPE, as `yes | head -1` reports
    assert "error" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_serve_on_a_busy_port_is_one_line(tmp_path):
    pytest.importorskip("uvicorn", reason="serving needs ferkit[serve]")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_capped(["serve", "--port", str(port)], tmp_path)
    line = one_line_error(r)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and "--port" in line
    assert "uvicorn" not in r.stderr.lower() and "INFO" not in r.stderr


def test_a_post_without_its_file_gets_one_line_of_json():
    pytest.importorskip("fastapi", reason="serving needs ferkit[serve]")
    from fastapi.testclient import TestClient

    from ferkit.serve.app import create_app
    from ferkit.serve.config import ServeConfig

    client = TestClient(create_app(ServeConfig(model="fast")))
    r = client.post("/v1/predict")
    assert (r.status_code, r.json()) == (422, {"detail": "file: Field required"})
    r = client.post("/v1/predict?annotate=maybe", files={"file": ("a.jpg", b"x")})
    assert r.status_code == 422 and r.json()["detail"].startswith("annotate: ")


def arrivals(fps: float, seconds: float, jitter: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return sorted(i / fps + rng.uniform(-jitter, jitter) for i in range(int(fps * seconds)))


def admitted(times: list[float], max_fps: float) -> int:
    """How many frames arriving at `times` (s) a stream admits before it closes."""
    from ferkit.serve.config import StreamConfig
    from ferkit.serve.stream import StreamClosed, StreamSession

    now = [times[0]]
    session = StreamSession(None, StreamConfig(max_fps=max_fps), clock=lambda: now[0])
    for i, t in enumerate(times):
        now[0] = t
        try:
            session.admit(1000)
        except StreamClosed:
            return i
    return len(times)


def test_a_jittery_30_fps_camera_streams_at_the_default_limit():
    """Frames 33 ms apart +-12 ms for 60 s: some one-second windows hold 31 or 32 of them,
    which a sliding window of 30 refused; a bucket of one second's frames takes them all."""
    times = arrivals(30, 60, jitter=0.012)
    in_a_second = max(sum(1 for u in times if t <= u < t + 1) for t in times)
    assert in_a_second > 30  # the case that closed streams before
    assert admitted(times, max_fps=30) == len(times)


def test_a_flood_is_still_closed_within_about_two_seconds():
    times = arrivals(60, 10, jitter=0.0)  # twice the limit
    assert 55 <= admitted(times, max_fps=30) <= 2 * 60  # a burst of 30, then 30 a second
