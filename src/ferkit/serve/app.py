"""`ferkit serve`: the REST API and the web page, on the shared inference path.

    POST /v1/predict          one image (multipart field `file`); `?annotate=true` adds a PNG
    POST /v1/predict/batch    several images (field `files`), one result each, in order
    WS   /v1/stream           live frames in, tracked faces out (`serve.stream`)
    POST /v1/jobs ...         a video analysed in the background (`serve.jobs`)
    GET  /v1/model            labels, input size, version, SHA-256, recorded accuracy
    GET  /healthz             liveness
    GET  /                    the web page (plain HTML/CSS/JS from ferkit/serve/web, no CDN)

Faces come back exactly as `ferkit predict` writes them. Photos are decoded, detected and
classified in a pool of `decode_slots` threads, off the event loop; the ONNX Runtime
session is shared (its `run` is thread-safe) and detectors are lent from a `DetectorPool`.
Errors are JSON `{"detail": "..."}` with the status that says what went wrong.
`serve(workers=N)` runs N processes on one port (`--workers`).
"""

import asyncio
import base64
import json
import os
import queue
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from ferkit.apps.records import FaceRecord
from ferkit.core.decoding import NotAnImage, decode_image
from ferkit.core.errors import FerkitError
from ferkit.core.limits import LimitError
from ferkit.core.version import __version__
from ferkit.serve.body_limit import BodyLimit
from ferkit.serve.config import JobsConfig, ServeConfig, StreamConfig
from ferkit.serve.errors import RequestError
from ferkit.serve.jobs import Jobs, add_job_routes, sweeping, temporary_root
from ferkit.serve.stream import add_stream_route
from ferkit.vision.detect import make_detector
from ferkit.vision.detection import Detection
from ferkit.vision.recognize import EmotionRecognizer

MB = 1 << 20
MULTIPART_OVERHEAD = 64 << 10  # bytes: form boundaries and part headers around the files
# Every response: no MIME sniffing, no framing, no referrer. The page also gets a CSP that
# allows only its own files, the photo it draws (blob:) and the webcam (mediastream:).
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.-]+/)*([\w.-]+)")
WEB = ("index.html", "app.js", "live.js", "clip.js", "style.css")
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


class DetectorPool:
    """At most `size` detectors, lent to one thread at a time: dlib's and OpenCV's keep
    scratch buffers and a BlazeFace session runs on one thread, so none is shared. A server
    holds `size` of them, each keeping its largest input's activations, rather than one per
    thread that ever ran a request. A thread waits for a free one."""

    def __init__(self, spec: str, min_face: int | None, size: int) -> None:
        self.spec, self.min_face = spec, min_face
        first = make_detector(spec, min_face)  # fail at start-up, not on the first request
        self.name, self.margin, self.align = first.name, first.margin, first.align
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._free.put(first)
        self._room = threading.BoundedSemaphore(size - 1)  # detectors still to be made

    def detect(self, image: np.ndarray) -> list[Detection]:
        try:
            det = self._free.get_nowait()
        except queue.Empty:
            made = self._room.acquire(blocking=False)
            det = make_detector(self.spec, self.min_face) if made else self._free.get()
        try:
            return det.detect(image)
        finally:
            self._free.put(det)


def analyse(rec: EmotionRecognizer, cfg: ServeConfig, data: bytes, name: str, annotate: bool):
    """Decode, detect, classify: the CPU-bound part of a request (runs in the thread pool).
    The upload limit is enforced while reading (`read_limited`), before this runs."""
    try:
        photo = decode_image(data, name, cfg.max_pixels)  # the pixel limit, from the header
    except LimitError as exc:
        raise RequestError(413, str(exc)) from None
    except FerkitError as exc:
        raise RequestError(415 if isinstance(exc, NotAnImage) else 422, str(exc)) from None
    image, k = photo.image, photo.scale
    faces = rec.predict_image(image)
    h, w = image.shape[:2]
    result: dict[str, Any] = {
        "file": name,
        "image": {"width": w * k, "height": h * k},
        "faces": [FaceRecord(f.scaled(k), i, name).json() for i, f in enumerate(faces)],
    }
    if not faces:
        result["message"] = "no face found"
    if annotate:
        import cv2

        from ferkit.vision.draw import draw_faces

        _, png = cv2.imencode(".png", draw_faces(image, faces, inplace=True))
        result["annotated_png_base64"] = base64.b64encode(png.tobytes()).decode()
    return result


def model_info(rec: EmotionRecognizer) -> dict[str, Any]:
    info = rec.classifier.info
    meta = info.metadata
    return {
        "labels": list(info.labels),
        "input_size": list(info.input_size),
        "tta": info.tta,
        "ferkit_version": __version__,
        "model_ferkit_version": meta.get("ferkit_version"),
        "file": info.path.name,
        "sha256": info.sha256,
        "accuracy": {
            k.removeprefix("accuracy_"): float(v)
            for k, v in meta.items()
            if k.startswith("accuracy_")
        },
        # where it was trained is the trainer's business: /home/me/data/fer2013 -> fer2013
        "training": ABSOLUTE_PATH.sub(r"\1", meta.get("training") or "") or None,
        "detector": rec.detector.name,
    }


def create_app(cfg: ServeConfig | None = None):
    """The FastAPI application (needs `ferkit[serve]`)."""
    try:
        from fastapi import FastAPI, File, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, Response
    except ImportError:
        raise FerkitError("serving needs FastAPI: pip install 'ferkit[serve]'") from None

    cfg = cfg or ServeConfig()
    detector = DetectorPool(cfg.detector, cfg.min_face, cfg.decode_slots + 1)  # +1: streams
    rec = EmotionRecognizer(model=cfg.model, detector=detector)
    info = model_info(rec)
    jobs = Jobs(rec, cfg.jobs)  # with no --jobs-dir, a temporary folder the lifespan removes
    app = FastAPI(
        lifespan=lambda _: sweeping(jobs),
        title="ferkit",
        version=__version__,
        description="Facial emotion recognition: faces, boxes and the probabilities of "
        "seven emotions (FER-2013 order) for uploaded photos, live webcam frames "
        "(`/v1/stream`, a WebSocket) and uploaded videos (`/v1/jobs`).",
    )

    def body_limit(path: str) -> int:
        """Bytes a request may send: one file and its multipart headers, or a batch."""
        if path.startswith("/v1/jobs"):
            mb = cfg.jobs.max_video_mb
        else:
            mb = cfg.max_request_mb if path.endswith("/batch") else cfg.max_upload_mb
        return int(mb * MB) + MULTIPART_OVERHEAD

    app.state.jobs = jobs
    app.add_middleware(BodyLimit, limit=body_limit)
    # The bounded decode pool: photos wait in the event loop holding their bytes only. Its
    # own few threads, not Starlette's 40: glibc gives each thread that decodes a large
    # photo a malloc arena that keeps its memory, so 16 threads held 3.4 GB after 16
    # uploads of 40 MP taken one at a time (tests/hostile/test_memory.py)
    pool = ThreadPoolExecutor(cfg.decode_slots, thread_name_prefix="ferkit-decode")

    async def analysed(data: bytes, name: str, annotate: bool) -> dict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, analyse, rec, cfg, data, name, annotate)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers["content-security-policy"] = PAGE_CSP
        return response

    @app.exception_handler(RequestError)
    async def bad_input(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's list of errors as the one line every other error is: "file: Field
        required" for a POST without its file."""
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, 422)

    async def read_limited(upload: UploadFile, mb: float = cfg.max_upload_mb) -> bytes:
        """Read at most the limit + 1 byte, so a huge upload is refused without buffering it."""
        limit = int(mb * MB)
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise RequestError(413, f"{upload.filename}: over the upload limit of {mb:g} MB")
        return data

    @app.post("/v1/predict", summary="Faces and emotions in one image")
    async def predict(file: Annotated[UploadFile, File()], annotate: bool = False) -> dict:
        data = await read_limited(file)
        name = file.filename or "upload"
        return await analysed(data, name, annotate)

    @app.post("/v1/predict/batch", summary="Faces and emotions in several images, in order")
    async def predict_batch(
        files: Annotated[list[UploadFile], File()], annotate: bool = False
    ) -> dict:
        if len(files) > cfg.max_batch:
            raise RequestError(413, f"{len(files)} files: at most {cfg.max_batch} per request")
        results = []
        for upload in files:
            name = upload.filename or "upload"
            try:
                data = await read_limited(upload)
                results.append(await analysed(data, name, annotate))
            except RequestError as exc:  # one bad file does not sink the others
                results.append({"file": name, "error": {"status": exc.status,
                                                        "detail": exc.detail}})  # fmt: skip
        return {"results": results}

    add_stream_route(app, rec, cfg.stream)
    add_job_routes(app, jobs, read_limited)

    @app.get("/v1/model", summary="The model's metadata")
    async def model() -> dict:
        return info

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict:
        return {"status": "ok"}

    def static(name: str) -> Response:
        body = (resources.files("ferkit.serve") / "web" / name).read_bytes()
        suffix = name[name.rindex(".") :]
        return Response(body, media_type=MEDIA_TYPES[suffix])

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return static("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def assets(name: str) -> Response:
        if name not in WEB:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return static(name)

    return app


CONFIG_ENV = "FERKIT_SERVE_CONFIG"  # how `serve` hands its config to worker processes


def config_from_json(text: str) -> ServeConfig:
    d = json.loads(text)
    stream, jobs = StreamConfig(**d.pop("stream")), d.pop("jobs")
    root = jobs.pop("root")
    return ServeConfig(**d, stream=stream, jobs=JobsConfig(**jobs, root=root and Path(root)))


def app_from_environment():
    """The app of one `--workers` process, built from the config `serve` left in the
    environment (uvicorn starts workers by import string, not with arguments)."""
    return create_app(config_from_json(os.environ[CONFIG_ENV]))


def check_port(host: str, port: int) -> None:
    """One line, before the model loads, when host:port cannot be listened on (in use, or
    a privileged port): uvicorn would log its own lines and exit 3 (it binds the same way,
    with SO_REUSEADDR, so a port in TIME_WAIT is free to both)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise FerkitError(f"cannot listen on {host}:{port}: {why}; choose another --port") from None


def serve(cfg: ServeConfig, host: str, port: int, workers: int) -> None:
    """Serve on host:port. With `workers` > 1, uvicorn runs that many processes on one
    socket; each loads the model once and the kernel spreads connections over them. A
    stream stays on the worker that accepted it (one WebSocket, one connection), and the
    jobs' folders are shared, so any worker answers for any job."""
    try:
        import uvicorn
    except ImportError:
        raise FerkitError("serving needs uvicorn: pip install 'ferkit[serve]'") from None
    # bytes: a frame over this is refused by the WebSocket layer before it is buffered whole;
    # one between the limit and this gets StreamSession's precise reason
    ws = {"ws_max_size": 2 * cfg.stream.max_frame_kb * 1024}
    check_port(host, port)
    if workers == 1:
        uvicorn.run(create_app(cfg), host=host, port=port, log_level="info", **ws)
        return
    own_root = cfg.jobs.root is None  # one folder for all workers, made here
    root = temporary_root() if own_root else cfg.jobs.root
    shared = replace(cfg, jobs=replace(cfg.jobs, root=root))
    os.environ[CONFIG_ENV] = json.dumps(asdict(shared), default=str)
    try:
        uvicorn.run("ferkit.serve.app:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="info", **ws)  # fmt: skip
    finally:
        if own_root:
            shutil.rmtree(root, ignore_errors=True)
