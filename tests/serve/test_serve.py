"""The REST API through FastAPI's test client: every route and every kind of bad input."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image

from ferkit.apps.records import JSON_FIELDS

pytest.importorskip("fastapi", reason="serving needs ferkit[serve]")
from fastapi.testclient import TestClient

from ferkit import EmotionRecognizer
from ferkit.cli import build_parser
from ferkit.modelfile.classifier import Classifier
from ferkit.serve.app import create_app
from ferkit.serve.config import ServeConfig
from tests.conftest import EXAMPLES

ASTRONAUT = (EXAMPLES / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def post(client: TestClient, data: bytes, name: str = "a.jpg", **params):
    return client.post("/v1/predict", files={"file": (name, data)}, params=params)


def test_health_and_model(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    m = client.get("/v1/model").json()
    clf = Classifier()
    assert m["labels"] == list(clf.labels) and m["input_size"] == [48, 48]
    assert m["sha256"] == clf.info.sha256 and m["file"] == "default.onnx"
    assert m["accuracy"] == {"PublicTest": 0.7074, "PrivateTest": 0.7214}  # the model card's
    assert m["detector"] == "blazeface" and m["tta"] == "hflip"


def test_predict_matches_the_python_api(client):
    r = post(client, ASTRONAUT)
    assert r.status_code == 200
    body = r.json()
    assert body["image"] == {"width": 512, "height": 512} and "message" not in body
    (face,) = body["faces"]
    (expect,) = EmotionRecognizer().predict(ASTRONAUT)
    assert face["box"] == list(expect.box) and face["label"] == expect.label == "happy"
    assert face["probs"] == pytest.approx(expect.probs, abs=1e-6)
    assert tuple(face) == JSON_FIELDS  # the face record, as `ferkit predict` writes it
    assert face["path"] == "a.jpg" and face["frame"] is face["track"] is None


def test_annotate_returns_the_drawn_png(client):
    body = post(client, ASTRONAUT, annotate="true").json()
    png = base64.b64decode(body["annotated_png_base64"])
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (512, 512, 3)
    original = cv2.imdecode(np.frombuffer(ASTRONAUT, np.uint8), cv2.IMREAD_COLOR)
    x, y, w, _ = body["faces"][0]["box"]
    assert np.abs(img[y, x : x + w].astype(int) - original[y, x : x + w]).mean() > 30


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP"])
def test_other_formats(client, fmt):
    buf = io.BytesIO()
    Image.open(io.BytesIO(ASTRONAUT)).save(buf, fmt)
    body = post(client, buf.getvalue(), f"a.{fmt.lower()}").json()
    assert len(body["faces"]) == 1 and body["faces"][0]["label"] == "happy"


def test_exif_orientation_is_honoured(client):
    img = Image.open(io.BytesIO(ASTRONAUT)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    upright = post(client, ASTRONAUT).json()["faces"][0]["box"]
    rotated = post(client, buf.getvalue()).json()["faces"][0]["box"]
    assert np.abs(np.array(rotated) - upright).max() <= 8


def test_no_face_is_200_with_a_message(client):
    r = post(client, (EXAMPLES / "chelsea.jpg").read_bytes(), "cat.jpg")
    assert r.status_code == 200
    assert r.json()["faces"] == [] and r.json()["message"] == "no face found"


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"plain text, not an image", 415, "not an image"),
        (b"", 415, "empty file"),
        (ASTRONAUT[: len(ASTRONAUT) // 2], 422, "unreadable"),  # truncated JPEG
    ],
)
def test_bad_files_get_clear_json_errors(client, data, status, words):
    r = post(client, data, "bad.jpg")
    assert r.status_code == status
    assert words in r.json()["detail"] and "bad.jpg" in r.json()["detail"]


def test_missing_file_field_is_422(client):
    assert client.post("/v1/predict").status_code == 422


def test_upload_and_pixel_limits():
    small = TestClient(create_app(ServeConfig(max_upload_mb=0.05)))  # 52 kB < 68 kB photo
    r = post(small, ASTRONAUT)
    assert r.status_code == 413 and "upload limit of 0.05 MB" in r.json()["detail"]
    few = TestClient(create_app(ServeConfig(max_pixels=100_000)))  # 512x512 = 262,144
    r = post(few, ASTRONAUT)
    assert r.status_code == 413 and "512x512 is over the limit" in r.json()["detail"]


def test_batch_keeps_order_and_reports_each_file(client):
    files = [
        ("files", ("a.jpg", ASTRONAUT)),
        ("files", ("cat.jpg", (EXAMPLES / "chelsea.jpg").read_bytes())),
        ("files", ("bad.png", b"\x89PNG\r\n\x1a\ntruncated")),
        ("files", ("b.jpg", ASTRONAUT)),
    ]
    r = client.post("/v1/predict/batch", files=files)
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["file"] for x in res] == ["a.jpg", "cat.jpg", "bad.png", "b.jpg"]
    (a,), (b,) = res[0]["faces"], res[3]["faces"]
    assert (a["path"], b["path"]) == ("a.jpg", "b.jpg") and a | {"path": "b.jpg"} == b
    assert res[1]["faces"] == [] and res[2]["error"]["status"] == 422  # truncated PNG


def test_batch_size_limit():
    tiny = TestClient(create_app(ServeConfig(max_batch=2)))
    files = [("files", (f"{i}.jpg", ASTRONAUT)) for i in range(3)]
    r = tiny.post("/v1/predict/batch", files=files)
    assert r.status_code == 413 and "at most 2" in r.json()["detail"]


def test_concurrent_requests_get_the_right_answers(client):
    """Photos of different sizes in parallel: each reply equals the sequential answer for
    its own photo."""
    sizes = [512, 600, 700, 800, 900, 1000]  # the face stays over the 80 px --min-face
    photos, expected = {}, {}
    rec = EmotionRecognizer()
    for s in sizes:
        img = cv2.resize(cv2.imdecode(np.frombuffer(ASTRONAUT, np.uint8), 1), (s, s))
        photos[s] = cv2.imencode(".jpg", img)[1].tobytes()
        expected[s] = [f.to_dict() for f in rec.predict(photos[s])]
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda s: post(client, photos[s]).json(), sizes * 3))
    for s, body in zip(sizes * 3, replies, strict=True):
        assert body["image"] == {"width": s, "height": s}
        got = [{k: v for k, v in f.items() if k != "face"} for f in body["faces"]]
        assert [f["box"] for f in got] == [f["box"] for f in expected[s]]
        for g, e in zip(got, expected[s], strict=True):
            assert g["probs"] == pytest.approx(e["probs"], abs=1e-6)
        assert body["faces"][0]["label"] == "happy"


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model", "/healthz"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_web_page_and_assets_are_served_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text  # no CDN
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text
    assert client.get("/static/../serve.py").status_code == 404


def test_serve_binds_to_loopback_by_default():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.max_upload_mb) == ("127.0.0.1", 8000, 10.0)
