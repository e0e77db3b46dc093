"""One face record: the same photo through predict (JSON and CSV), video, the server's
`/v1/predict` and `/v1/stream`, and the Ray engine's rows gives the same fields, in the
same order, with the same values where they apply (`ferkit.apps.records`)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ferkit.apps.predict import PredictConfig, predict_files
from ferkit.apps.records import COLUMNS, FILE_COLUMNS, JSON_FIELDS, FaceRecord
from ferkit.apps.video import VideoConfig, process_video
from ferkit.vision.recognize import EmotionRecognizer
from tests.conftest import EXAMPLES
from tests.serve.test_jobs import clip

PHOTO = EXAMPLES / "astronaut.jpg"
WHERE = ("path", "frame", "time_s", "track", "face")


@pytest.fixture(scope="module")
def rec() -> EmotionRecognizer:
    return EmotionRecognizer()


def predicted(rec: EmotionRecognizer, fmt: str) -> str:
    out = io.StringIO()
    predict_files(PredictConfig(inputs=(PHOTO,), format=fmt), rec, out)
    return out.getvalue()


def test_predict_writes_the_record_as_json_and_as_csv(rec):
    (row,) = [json.loads(line) for line in predicted(rec, "json").splitlines()]
    assert tuple(row) == JSON_FIELDS
    assert row["path"] == str(PHOTO) and row["frame"] is row["track"] is row["time_s"] is None
    header, cells = list(csv.reader(io.StringIO(predicted(rec, "csv"))))
    assert tuple(header) == COLUMNS
    flat = dict(zip(header, cells, strict=True))
    assert [int(flat[k]) for k in ("x", "y", "width", "height")] == row["box"]
    assert flat["frame"] == flat["track"] == flat["time_s"] == ""  # None: an empty cell
    assert float(flat["happy"]) == pytest.approx(row["probs"]["happy"], abs=1e-6)


def test_video_rows_are_the_record_with_frame_time_and_track(rec, tmp_path):
    clip(tmp_path / "clip.mp4", frames=3)
    out = io.StringIO()
    process_video(VideoConfig(str(tmp_path / "clip.mp4"), name="clip.mp4"), rec, stdout=out)
    header, *rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(header) == COLUMNS and len(rows) == 3
    places = [tuple(r[: len(WHERE)]) for r in rows]
    assert places == [("clip.mp4", "0", "0.0", "0", "0"), ("clip.mp4", "1", "0.1", "0", "0"),
                      ("clip.mp4", "2", "0.2", "0", "0")]  # fmt: skip
    assert all(r[COLUMNS.index("score")] not in ("", "1.0") for r in rows)  # the detector's


def test_the_server_and_the_stream_answer_with_the_record(rec):
    pytest.importorskip("fastapi", reason="the server needs ferkit[serve]")
    from fastapi.testclient import TestClient

    from ferkit.serve.app import create_app
    from ferkit.serve.config import ServeConfig
    from ferkit.serve.schemas import TrackedFace

    (row,) = [json.loads(line) for line in predicted(rec, "json").splitlines()]
    with TestClient(create_app(ServeConfig())) as client:
        files = {"file": (str(PHOTO), PHOTO.read_bytes())}
        (served,) = client.post("/v1/predict", files=files).json()["faces"]
        with client.websocket_connect("/v1/stream") as ws:
            ws.receive_json()
            ws.send_bytes(PHOTO.read_bytes())
            (live,) = ws.receive_json()["faces"]
    assert tuple(served) == tuple(live) == tuple(TrackedFace.model_fields) == JSON_FIELDS
    assert served == row  # the upload's name is its path
    assert (live["path"], live["frame"], live["track"]) == (None, 0, 0)
    assert live["box"] == row["box"] and live["label"] == row["label"]


def test_the_ray_engine_rows_are_the_record_and_a_files_status(rec):
    pytest.importorskip("pyarrow", reason="the Ray engine's rows need ferkit[ray]")
    from ferkit.scale.ray_engine import Recognize
    from ferkit.scale.ray_io import schema

    assert tuple(schema().names) == (*COLUMNS, *FILE_COLUMNS)
    (row,) = [json.loads(line) for line in predicted(rec, "json").splitlines()]
    (flat,) = Recognize({}, detect=True).rows(str(PHOTO), PHOTO.read_bytes())
    assert flat == {**FaceRecord(rec.predict(PHOTO)[0], 0, str(PHOTO)).flat(), "status": "face"}
    assert [flat[k] for k in ("x", "y", "width", "height")] == row["box"]
    assert flat["frame"] is flat["track"] is None


def test_every_place_field_is_either_set_or_none(rec):
    """The record leaves no field out: a face with no place still has every column."""
    face = rec.predict(PHOTO)[0]
    record = FaceRecord(face, 0)
    assert tuple(record.json()) == JSON_FIELDS and tuple(record.flat()) == COLUMNS
    assert len(record.csv()) == len(COLUMNS)
