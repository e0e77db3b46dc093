"""`/v1/stream`: live emotions over a WebSocket, one tracker per connection.

The protocol is `PROTOCOL` below; `GET /v1/stream` shows it in `/docs`. Each limit ends
the stream with a close code and a one-line reason (CLOSE_CODES). Frames are decoded in
memory and never stored. A connection's tracker lives in the worker process
that accepted it, for as long as the connection: a WebSocket is one TCP connection, so a
stream never moves between `--workers`, and no sticky routing is needed.
"""

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ferkit.apps.records import FaceRecord
from ferkit.core.errors import FerkitError
from ferkit.core.limits import LimitError
from ferkit.serve.config import StreamConfig
from ferkit.vision.images import decode
from ferkit.vision.recognize import EmotionRecognizer
from ferkit.vision.tracking import Tracker

# WebSocket close codes (RFC 6455 section 7.4; 4000-4999 are the application's own)
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # over the frame rate
CLOSE_TOO_BIG = 1009  # a frame over the byte or pixel limit
CLOSE_BUSY = 1013  # "try again later": the streams are all taken
CLOSE_IDLE = 4408  # no frame within the idle timeout (as HTTP's 408)
CLOSE_CODES = {
    CLOSE_NORMAL: "the client or server ended the stream",
    CLOSE_POLICY: "the client sent more frames per second than max_fps",
    CLOSE_TOO_BIG: "a frame over max_frame_kb bytes or max_frame_pixels pixels",
    CLOSE_BUSY: "max_streams streams are already open on this worker",
    CLOSE_IDLE: "no frame arrived for idle_s seconds",
}

PROTOCOL = """\
- the server accepts, then sends `{"type": "ready", "limits": {...}, "labels": [...]}`;
- the client sends each frame as one binary message (JPEG or PNG, at most 640 px on the
  long side is plenty), and waits for the answer before it sends the next, so nothing
  queues and latency stays bounded;
- the server answers each frame with `{"type": "faces", "frame": n, "image": {...},
  "faces": [...], "server_ms": t}`: face records as `ferkit predict` writes them
  (`ferkit.apps.records`), with the `frame` and `track` id, probabilities smoothed over
  the track as `ferkit video` does;
- a frame that does not decode gets `{"type": "error", "frame": n, "detail": "..."}` and
  the stream goes on; a text message gets an error too (frames are binary).
"""


class StreamClosed(Exception):
    """End the stream with this close code and reason (at most 123 bytes, RFC 6455)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason[:123]


class StreamSession:
    """One connection's state: its tracker, its frame count and the arrival times of its
    last second of frames. `admit` runs on the event loop, `analyse` in the thread pool;
    the endpoint awaits each frame's answer before it reads the next, so they never
    overlap within a session."""

    def __init__(
        self,
        rec: EmotionRecognizer,
        cfg: StreamConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rec, self.cfg, self.clock = rec, cfg, clock
        self.tracker = Tracker(cfg.smoothing, cfg.iou_match, cfg.max_missed)
        self.frames = 0
        self._tokens, self._last = cfg.max_fps, clock()  # the bucket starts full

    def ready(self, labels: tuple[str, ...]) -> dict[str, Any]:
        """The first message: the limits the client must keep to, so a page can pace
        itself under max_fps and shrink its frames under the size limits."""
        return {"type": "ready", "limits": asdict(self.cfg), "labels": list(labels)}

    def admit(self, size: int) -> int:
        """Count a message of `size` bytes against the limits; its frame number, or
        StreamClosed."""
        now = self.clock()
        refill = (now - self._last) * self.cfg.max_fps
        self._tokens, self._last = min(self.cfg.max_fps, self._tokens + refill), now
        self._tokens -= 1
        if self._tokens < 0:  # over a second's worth of frames beyond the rate
            raise StreamClosed(CLOSE_POLICY, f"over the limit of {self.cfg.max_fps:g} "
                                             "frames per second")  # fmt: skip
        if size > self.cfg.max_frame_kb * 1024:
            raise StreamClosed(CLOSE_TOO_BIG, f"frame {self.frames}: {size:,} bytes, over "
                               f"the limit of {self.cfg.max_frame_kb} KiB")  # fmt: skip
        self.frames += 1
        return self.frames - 1

    def analyse(self, frame: int, data: bytes) -> dict[str, Any]:
        """Decode, detect, classify and track one frame: its `faces` message, an `error`
        message when it does not decode, or StreamClosed when it is over the pixel limit."""
        start = time.perf_counter()
        try:
            image = decode(data, f"frame {frame}", self.cfg.max_frame_pixels)
        except LimitError as exc:
            raise StreamClosed(CLOSE_TOO_BIG, str(exc)) from None
        except FerkitError as exc:
            return {"type": "error", "frame": frame, "detail": str(exc)}
        tracked = self.tracker.update(self.rec.predict_image(image))
        h, w = image.shape[:2]
        return {
            "type": "faces",
            "frame": frame,
            "image": {"width": w, "height": h},
            "faces": [
                FaceRecord(f, i, frame=frame, track=t).json() for i, (t, f) in enumerate(tracked)
            ],
            "server_ms": round(1000 * (time.perf_counter() - start), 2),
        }


def text_error(frame: int) -> dict[str, Any]:
    return {"type": "error", "frame": frame,
            "detail": "frames are binary messages (JPEG or PNG bytes), not text"}  # fmt: skip


def stream_doc_text() -> str:
    """The protocol, for `/docs`: `PROTOCOL`, plus the close codes."""
    codes = "\n".join(f"- `{code}`: {why}" for code, why in CLOSE_CODES.items())
    return f"{PROTOCOL}\nClose codes:\n\n{codes}"


def add_stream_route(app: Any, rec: EmotionRecognizer, cfg: StreamConfig) -> None:
    """`/v1/stream` on a FastAPI app, and `GET /v1/stream` documenting it in `/docs`
    (OpenAPI has no WebSocket routes)."""
    import asyncio

    from fastapi import WebSocket, WebSocketDisconnect
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from ferkit.serve.schemas import StreamError, StreamFaces, StreamReady

    open_streams = 0  # on this worker; the event loop is one thread, so a plain count

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        nonlocal open_streams
        await ws.accept()  # before any close, so the client sees the code and reason
        if open_streams >= cfg.max_streams:
            await ws.close(CLOSE_BUSY, f"busy: {cfg.max_streams} streams already open; "
                                       "try again later")  # fmt: skip
            return
        open_streams += 1
        session = StreamSession(rec, cfg)
        try:
            await ws.send_json(session.ready(rec.labels))
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), timeout=cfg.idle_s)
                except TimeoutError:
                    raise StreamClosed(CLOSE_IDLE, f"idle: no frame for {cfg.idle_s:g} s") from None
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                frame = session.admit(len(data if data is not None else message.get("text") or ""))
                if data is None:
                    await ws.send_json(text_error(frame))
                    continue
                await ws.send_json(await run_in_threadpool(session.analyse, frame, data))
        except StreamClosed as exc:
            await ws.close(exc.code, exc.reason)
        except WebSocketDisconnect:
            pass
        finally:
            open_streams -= 1

    @app.get("/v1/stream", summary="Live emotions over a WebSocket (this GET documents it)",
             description=stream_doc_text(), status_code=426, responses={
                 200: {"description": "The messages the server sends (JSON text), by type",
                       "model": StreamReady | StreamFaces | StreamError}})  # fmt: skip
    async def stream_doc() -> JSONResponse:
        return JSONResponse({"detail": "/v1/stream is a WebSocket: connect with ws://"},
                            status_code=426, headers={"upgrade": "websocket"})  # fmt: skip
