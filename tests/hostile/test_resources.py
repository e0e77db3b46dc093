"""Resource exhaustion: image bombs in every format, zip bombs and oversize uploads are
refused from their headers, in one line, before they cost memory or disk."""

from __future__ import annotations

import asyncio
import json

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from ferkit.core.limits import MAX_MEMBER_BYTES, LimitError
from ferkit.vision.images import decode
from tests.conftest import EXAMPLES
from tests.hostile.bombs import FORMATS, image_bomb, one_line_error, run_capped, zip_bomb

ASTRONAUT = (EXAMPLES / "astronaut.jpg").read_bytes()


@pytest.mark.parametrize("side", [20_000, 12_000])  # over Pillow's own limit; under it
@pytest.mark.parametrize("fmt", FORMATS)
def test_image_bombs_are_refused_from_the_header(fmt, side):
    with pytest.raises(LimitError, match=r"bomb: (12000x12000 is )?over the limit of 100,000,000"):
        decode(image_bomb(fmt, side), "bomb")


def test_predict_refuses_a_jpeg_bomb_and_goes_on_within_1_gb(tmp_path):
    """The 20000x20000 JPEG decodes to 1.2 GB; with 1 GB of address space the CLI must
    refuse it from its header, say so in one line, and still do the good photo."""
    (tmp_path / "bomb.jpg").write_bytes(image_bomb("jpeg"))
    (tmp_path / "ok.jpg").write_bytes(ASTRONAUT)
    r = run_capped(["predict", "bomb.jpg", "ok.jpg", "--out", "out"], tmp_path, mb=1024)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "bomb.jpg: over the limit of 100,000,000 pixels" in r.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").open()]
    assert [row["path"] for row in rows] == ["ok.jpg"]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [".ferkit-annotated", "ok.jpg", "predictions.jsonl"]


def test_data_prepare_refuses_a_zip_bomb_within_1_gb(tmp_path):
    zip_bomb(tmp_path / "bomb.zip", "train/happy/Training_1.jpg", MAX_MEMBER_BYTES + (8 << 20))
    assert (tmp_path / "bomb.zip").stat().st_size < 200_000  # 40 MiB packed small
    r = run_capped(["data", "prepare", "bomb.zip", "--out", "c"], tmp_path, mb=1024)
    line = one_line_error(r)
    assert "member train/happy/Training_1.jpg unpacks to over 33,554,432 bytes" in line
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_data_prepare_refuses_an_oversize_file_in_a_folder(tmp_path, capsys):
    folder = tmp_path / "faces" / "happy"
    folder.mkdir(parents=True)
    with (folder / "huge.png").open("wb") as f:
        f.truncate(MAX_MEMBER_BYTES + 1)  # sparse: no disk used
    assert main(["data", "prepare", str(tmp_path / "faces"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "huge.png: 33,554,433 bytes, over the limit" in err and "\n" not in err


def test_data_prepare_refuses_a_pixel_bomb_among_faces(tmp_path, capsys):
    folder = tmp_path / "faces" / "sad"
    folder.mkdir(parents=True)
    (folder / "bomb.png").write_bytes(image_bomb("png"))
    assert main(["data", "prepare", str(tmp_path / "faces"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "sad/bomb.png: over the limit of 100,000,000 pixels" in err and "\n" not in err


def test_video_frames_over_the_pixel_limit_are_refused(tmp_path, monkeypatch, capsys):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(3):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    monkeypatch.setattr("ferkit.core.limits.MAX_PIXELS", 320 * 240 - 1)
    assert main(["video", str(path), "--out", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert "frames of 320x240 are over the limit of 76,799 pixels" in err and "\n" not in err
    assert not (tmp_path / "o.mp4").exists()


def _client(**cfg):
    pytest.importorskip("fastapi", reason="serving needs ferkit[serve]")
    from fastapi.testclient import TestClient

    from ferkit.serve.app import create_app
    from ferkit.serve.config import ServeConfig

    return TestClient(create_app(ServeConfig(**cfg)))


@pytest.fixture(scope="module")
def client():
    return _client(max_upload_mb=1.0, max_request_mb=2.0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_server_refuses_image_bombs_with_413(client, fmt):
    r = client.post("/v1/predict", files={"file": (f"bomb.{fmt}", image_bomb(fmt))})
    assert r.status_code == 413 and "over the limit of 40,000,000 pixels" in r.json()["detail"]


def test_server_refuses_a_declared_oversize_body_before_reading_it(client):
    body = b"x" * (3 << 20)
    r = client.post(
        "/v1/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code == 413
    assert r.json() == {"detail": "request body over the limit of 1.0625 MB"}


def test_server_stops_reading_an_undeclared_oversize_body(client):
    def chunks():  # no Content-Length: chunked transfer, 64 KiB at a time, 3 MiB in all
        for _ in range(48):
            yield b"y" * (64 << 10)

    headers = {"content-type": "multipart/form-data; boundary=b"}
    r = client.post("/v1/predict/batch", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert r.json() == {"detail": "request body over the limit of 2.0625 MB"}


def test_body_limit_reads_no_further_than_the_limit():
    """The middleware alone, fed 64 KiB messages: it pulls one past the limit, answers 413,
    and the application (which reads like Starlette, until the body ends or the client
    goes) is told the client went away, and never answers itself."""
    from ferkit.serve.body_limit import BodyLimit

    pulled, sent, app_saw = [], [], []

    async def receive():
        pulled.append(1)
        return {"type": "http.request", "body": b"z" * (64 << 10), "more_body": True}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):  # reads until the body ends or the client goes
        while (message := await receive())["type"] == "http.request":
            app_saw.append(len(message["body"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})

    scope = {"type": "http", "path": "/v1/predict", "headers": []}
    asyncio.run(BodyLimit(app, limit=lambda path: 1 << 20)(scope, receive, send))
    assert len(pulled) == 17 and sum(app_saw) == 1 << 20  # 16 x 64 KiB = the limit
    assert [m.get("status") for m in sent] == [413, None]  # start and body, ours only


def test_server_still_takes_a_photo_under_the_limits(client):
    r = client.post("/v1/predict", files={"file": ("a.jpg", ASTRONAUT)})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1


def test_every_response_carries_the_security_headers_and_the_page_a_csp(client):
    for path in ("/", "/healthz", "/v1/model", "/static/app.js", "/nowhere"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"]
    page = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in page and "script-src 'self'" in page
    assert "frame-ancestors 'none'" in page and "'unsafe-inline'" not in page


def test_the_model_endpoint_shows_no_build_paths(client):
    m = client.get("/v1/model").json()
    text = json.dumps(m)
    assert "/tmp/" not in text and "/home/" not in text and "/work/" not in text
    assert m["file"] == "default.onnx" and "Training split" in m["training"]
