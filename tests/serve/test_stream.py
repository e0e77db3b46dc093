"""`/v1/stream` through FastAPI's test client: the messages, the tracker per connection,
and every limit closing the stream with its code and reason."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from ferkit.apps.records import JSON_FIELDS

pytest.importorskip("fastapi", reason="serving needs ferkit[serve]")
from fastapi.testclient import TestClient

from ferkit.core.decoding import NOT_AN_IMAGE
from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.serve.app import create_app
from ferkit.serve.config import ServeConfig
from ferkit.serve.stream import (
    CLOSE_BUSY,
    CLOSE_IDLE,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    StreamConfig,
)
from tests.conftest import EXAMPLES

ASTRONAUT = cv2.imread(str(EXAMPLES / "astronaut.jpg"))  # 512x512, one face


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def shifted(image: np.ndarray, dx: int) -> np.ndarray:
    """The image moved right by dx px, as a face moves a little between video frames."""
    return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, 0]]), image.shape[1::-1])


TWO_FACES = jpeg(np.hstack([ASTRONAUT, ASTRONAUT]))  # 1024x512


def client(**limits) -> TestClient:
    # the fast model keeps these many frames quick; the path is the same for every model
    return TestClient(create_app(ServeConfig(model="fast", stream=StreamConfig(**limits))))


@pytest.fixture(scope="module")
def default() -> TestClient:
    return client()


def closed(ws) -> tuple[int, str]:
    """The close code and reason of the next message, which must be the close."""
    message = ws.receive()
    assert message["type"] == "websocket.close", message
    return message["code"], message["reason"]


def test_ready_then_faces_in_predicts_shape_with_a_track(default):
    with default.websocket_connect("/v1/stream") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["labels"] == list(LABELS)
        assert ready["limits"]["max_fps"] == 30 and ready["limits"]["max_streams"] == 4
        ws.send_bytes(jpeg(ASTRONAUT))
        reply = ws.receive_json()
    assert reply["type"] == "faces" and reply["frame"] == 0
    assert reply["image"] == {"width": 512, "height": 512} and reply["server_ms"] > 0
    (face,) = reply["faces"]
    assert tuple(face) == JSON_FIELDS and face["frame"] == 0 and face["track"] == 0
    assert face["path"] is face["time_s"] is None
    assert face["face"] == 0 and face["track"] == 0 and face["label"] == "happy"
    assert list(face["probs"]) == list(LABELS)
    assert abs(sum(face["probs"].values()) - 1) < 1e-4
    x, y, w, _ = face["box"]
    assert 150 < x < 200 and 50 < y < 100 and 80 < w < 130  # the astronaut's face


def test_track_ids_are_stable_as_faces_move(default):
    with default.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ids, xs = [], []
        for i in range(6):
            frame = np.hstack([shifted(ASTRONAUT, 4 * i), shifted(ASTRONAUT, -4 * i)])
            ws.send_bytes(jpeg(frame))
            faces = sorted(ws.receive_json()["faces"], key=lambda f: f["box"][0])
            ids.append([f["track"] for f in faces])
            xs.append(faces[0]["box"][0])
    assert ids == [[0, 1]] * 6 or ids == [[1, 0]] * 6
    assert xs[-1] - xs[0] > 12  # the boxes did follow the faces


def test_each_connection_has_its_own_tracker(default):
    with default.websocket_connect("/v1/stream") as a, default.websocket_connect("/v1/stream") as b:
        a.receive_json(), b.receive_json()
        a.send_bytes(TWO_FACES)
        assert sorted(f["track"] for f in a.receive_json()["faces"]) == [0, 1]
        # a face where a's track 1 is: b's own tracker starts it at 0
        b.send_bytes(jpeg(np.hstack([np.zeros_like(ASTRONAUT), ASTRONAUT])))
        assert [f["track"] for f in b.receive_json()["faces"]] == [0]
        a.send_bytes(TWO_FACES)  # a's tracks go on, untouched by b's face
        assert sorted(f["track"] for f in a.receive_json()["faces"]) == [0, 1]


def test_a_bad_frame_or_text_is_an_error_and_the_stream_goes_on(default):
    with default.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(b"not a jpeg")
        assert ws.receive_json() == {"type": "error", "frame": 0,
                                     "detail": f"frame 0: {NOT_AN_IMAGE}"}  # fmt: skip
        ws.send_text("hello")
        error = ws.receive_json()
        assert error["type"] == "error" and "binary" in error["detail"]
        ws.send_bytes(jpeg(ASTRONAUT))
        reply = ws.receive_json()
        assert reply["frame"] == 2 and len(reply["faces"]) == 1


def test_an_image_with_no_face_has_no_faces(default):
    with default.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(jpeg(np.full((240, 320, 3), 90, np.uint8)))
        assert ws.receive_json()["faces"] == []


def test_busy_when_the_streams_are_taken():
    c = client(max_streams=1)
    with c.websocket_connect("/v1/stream") as first:
        first.receive_json()
        with c.websocket_connect("/v1/stream") as second:
            code, reason = closed(second)
        assert code == CLOSE_BUSY and reason.startswith("busy: 1 streams already open")
        first.send_bytes(jpeg(ASTRONAUT))  # the first is unaffected
        assert first.receive_json()["type"] == "faces"
    with c.websocket_connect("/v1/stream") as third:  # the slot is free again
        assert third.receive_json()["type"] == "ready"


def test_a_frame_over_the_byte_limit_closes():
    with client(max_frame_kb=1).websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(b"\xff" * 2000)
        assert closed(ws) == (CLOSE_TOO_BIG, "frame 0: 2,000 bytes, over the limit of 1 KiB")


def test_a_frame_over_the_pixel_limit_closes_before_decoding():
    with client(max_frame_pixels=100_000).websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(TWO_FACES)
        assert closed(ws) == (CLOSE_TOO_BIG,
                              "frame 0: 1024x512 is over the limit of 100,000 pixels")  # fmt: skip


def test_too_many_frames_per_second_closes():
    with client(max_fps=2).websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        start = time.monotonic()
        for _ in range(2):
            ws.send_bytes(b"x")  # quick to refuse, so three arrive well within a second
            assert ws.receive_json()["type"] == "error"
        ws.send_bytes(b"x")
        code, reason = closed(ws)
    assert time.monotonic() - start < 1.0, "too slow a machine to test the rate"
    assert (code, reason) == (CLOSE_POLICY, "over the limit of 2 frames per second")


def test_an_idle_stream_closes():
    with client(idle_s=0.3).websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        assert closed(ws) == (CLOSE_IDLE, "idle: no frame for 0.3 s")


def test_limits_must_be_positive():
    with pytest.raises(FerkitError, match="max_fps must be positive, not 0"):
        StreamConfig(max_fps=0)


def test_the_protocol_and_the_jobs_are_in_the_openapi_schema(default):
    assert default.get("/v1/stream").status_code == 426
    spec = default.get("/openapi.json").json()
    doc = spec["paths"]["/v1/stream"]["get"]
    assert "binary message" in doc["description"] and "`4408`" in doc["description"]
    assert {"StreamReady", "StreamFaces", "StreamError", "TrackedFace", "JobStatus"} <= set(
        spec["components"]["schemas"]
    )
    jobs = {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/{name}"}
    assert jobs <= set(spec["paths"]) and "delete" in spec["paths"]["/v1/jobs/{job_id}"]
