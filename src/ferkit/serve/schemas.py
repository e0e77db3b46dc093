"""Pydantic models of the messages and job records that `/docs` shows: the WebSocket
stream's messages (OpenAPI has no WebSocket routes, so `GET /v1/stream` carries them) and
the video jobs' status. Needs `ferkit[serve]` (FastAPI brings pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ImageSize(BaseModel):
    width: int
    height: int


class TrackedFace(BaseModel):
    """A face record (`ferkit.apps.records`) on a live stream."""

    path: None = Field(description="always null: a live frame has no file")
    frame: int = Field(description="the frame's index, as in the message")
    time_s: None = Field(description="always null: a live stream has no timeline")
    track: int = Field(description="the same id for the same face across frames")
    face: int = Field(description="index of the face in this frame")
    box: list[int] = Field(description="x, y, width, height in pixels of the frame")
    score: float = Field(description="the detector's score")
    label: str
    confidence: float
    probs: dict[str, float] = Field(description="seven emotions, smoothed over the track")


class StreamReady(BaseModel):
    type: Literal["ready"]
    limits: dict[str, float] = Field(
        description="max_streams, max_frame_kb, max_frame_pixels, max_fps, idle_s and the tracker's"
    )
    labels: list[str]


class StreamFaces(BaseModel):
    type: Literal["faces"]
    frame: int = Field(description="0, 1, 2... in the order the client sent them")
    image: ImageSize
    faces: list[TrackedFace]
    server_ms: float = Field(description="decode, detect, classify and track, in ms")


class StreamError(BaseModel):
    type: Literal["error"]
    frame: int
    detail: str = Field(description="why this frame was not analysed; the stream goes on")


class JobStatus(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    file: str = Field(description="the uploaded file's name")
    progress: float = Field(description="0 to 1: frames done over the container's count")
    frames: int
    total: int = Field(description="the container's frame count (an estimate in some)")
    error: str | None = None
    summary: dict[str, int | float] | None = Field(
        None, description="frames, faces, tracks, fps_source, seconds, fps, when done"
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="name -> URL of each result, when done"
    )
    expires_in_s: float | None = Field(
        None, description="seconds until the job's files are deleted, once it has finished"
    )
