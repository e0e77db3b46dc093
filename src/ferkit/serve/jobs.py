"""Video jobs: a video uploaded from the page, processed in the background by
`process_video`, its results served until they expire.

    POST   /v1/jobs               upload (multipart field `file`): 202 and the job's status
    GET    /v1/jobs/{id}          its status and progress (poll it)
    GET    /v1/jobs/{id}/{name}   a result: annotated.webm, frames.csv, timeline.png
    DELETE /v1/jobs/{id}          delete a finished job's files now

Each job is a folder under the jobs root holding its upload, a `status.json` (written
atomically) and its results, so that every `--workers` process can answer for any job,
whichever one runs it. Jobs are bounded in number (queued or running, all workers
together, counted under a file lock); a finished job's folder is deleted `keep_s` after it
ends, and its upload as soon as it ends. The annotated video is WebM (VP8), which browsers
play; the MPEG-4 Part 2 of OpenCV's mp4 is for desktop players only (`apps.video`).
"""

import contextlib
import fcntl
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ferkit.apps.video import VideoConfig, frame_budget, open_capture, process_video
from ferkit.core.atomic import write_text
from ferkit.core.errors import FerkitError
from ferkit.serve.config import JobsConfig
from ferkit.serve.errors import RequestError
from ferkit.vision.recognize import EmotionRecognizer

RESULTS = {"video": "annotated.webm", "csv": "frames.csv", "timeline": "timeline.png"}
JOB_ID = re.compile(r"[0-9a-f]{16}")
STALE_S = 120.0  # s: a running job whose status has not moved for this long lost its worker
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"}


def probe(path: Path, name: str, cfg: JobsConfig) -> tuple[int, float]:
    """(frames, fps) the container declares, or a RequestError: 415 for what is not a readable
    video, 413 for frames or a duration over the limits."""
    import cv2

    try:
        cap, _ = open_capture(VideoConfig(source=str(path), name=name))
    except FerkitError:
        raise RequestError(415, f"{name}: not a readable video") from None
    try:
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS) or 30.0
    finally:
        cap.release()
    if frames < 1:  # a photo FFmpeg opens as "video" declares none, or -2**63
        raise RequestError(415, f"{name}: not a video (it declares no frames)")
    if w * h > cfg.max_frame_pixels:
        raise RequestError(413, f"{name}: frames of {w}x{h} are over the limit of "
                            f"{cfg.max_frame_pixels:,} pixels")  # fmt: skip
    if frames / fps > cfg.max_seconds:
        raise RequestError(413, f"{name}: {frames / fps:.0f} s of video, over the limit of "
                            f"{cfg.max_seconds:g} s")  # fmt: skip
    return frames, fps


def temporary_root() -> Path:
    """A fresh folder for a server's jobs when no --jobs-dir is given."""
    return Path(tempfile.mkdtemp(prefix="ferkit-jobs-"))


class Jobs:
    """The jobs under `cfg.root`, run by this process's threads on `rec`. With no root, a
    temporary folder is made on the first use and removed by `close`."""

    def __init__(self, rec: EmotionRecognizer, cfg: JobsConfig) -> None:
        self.rec, self.cfg = rec, cfg
        self._root = cfg.root

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = temporary_root()
        self._root.mkdir(parents=True, exist_ok=True)
        return self._root

    def close(self) -> None:
        """Remove the temporary folder, if this made one (a given root is the user's)."""
        if self.cfg.root is None and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    @contextlib.contextmanager
    def _locked(self):
        with open(self.root / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _read(self, job_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / job_id / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def _write(self, job_id: str, **changes: Any) -> dict[str, Any]:
        status = {**(self._read(job_id) or {}), **changes, "updated": time.time()}
        write_text(self.root / job_id / "status.json", json.dumps(status))
        return status

    def _active(self) -> int:
        now = time.time()
        return sum(
            1
            for d in self.root.iterdir()
            if JOB_ID.fullmatch(d.name)
            and (s := self._read(d.name)) is not None
            and s["status"] in ("queued", "running")
            and now - s["updated"] < STALE_S
        )

    def _refuse_when_busy(self) -> None:
        if self._active() >= self.cfg.max_jobs:
            raise RequestError(429, f"{self.cfg.max_jobs} video jobs are already running; "
                                    "try again when one has finished")  # fmt: skip

    def submit(self, data: bytes, name: str) -> dict[str, Any]:
        """Store, check and start a video: its public status, or a RequestError."""
        self._refuse_when_busy()  # before storing and probing it; again below, under the lock
        suffix = Path(name).suffix.lower()
        job_id = secrets.token_hex(8)
        staging = self.root / f".incoming-{job_id}"
        staging.mkdir()
        upload = staging / f"upload{suffix if suffix in VIDEO_SUFFIXES else '.mp4'}"
        try:
            upload.write_bytes(data)
            frames, fps = probe(upload, name, self.cfg)
            with self._locked():
                self._refuse_when_busy()
                staging.rename(self.root / job_id)
                self._write(job_id, id=job_id, status="queued", file=name, frames=0,
                            total=frames, fps=fps, upload=upload.name)  # fmt: skip
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already unless it failed
        threading.Thread(target=self._run, args=(job_id,), daemon=True).start()
        return self.status(job_id)

    def _run(self, job_id: str) -> None:
        folder = self.root / job_id
        status = self._write(job_id, status="running")
        out = {k: folder / v for k, v in RESULTS.items()}
        cfg = VideoConfig(str(folder / status["upload"]), out["video"], out["csv"], out["timeline"],
                          max_frames=frame_budget(self.cfg.max_seconds, status["fps"]),
                          name=status["file"])  # fmt: skip
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            if time.monotonic() - last > 0.5:  # s: status.json is rewritten twice a second
                last = time.monotonic()
                self._write(job_id, frames=done)

        try:
            s = process_video(cfg, self.rec, on_frame=progress)
            summary = {"frames": s.frames, "faces": s.faces, "tracks": s.tracks,
                       "fps_source": s.fps_source, "seconds": s.seconds, "fps": s.fps}  # fmt: skip
            self._write(job_id, status="done", frames=s.frames, summary=summary,
                        finished=time.time())  # fmt: skip
        except Exception as exc:  # a job must end in a status, whatever went wrong
            detail = str(exc) if isinstance(exc, FerkitError) else f"internal error: {exc!r}"
            self._write(job_id, status="failed", error=detail, finished=time.time())
        finally:
            (folder / status["upload"]).unlink(missing_ok=True)

    def status(self, job_id: str) -> dict[str, Any]:
        """The public status of a job, or a 404 RequestError."""
        s = self._read(job_id) if JOB_ID.fullmatch(job_id) else None
        if s is None:
            raise RequestError(404, f"no job {job_id} (finished jobs expire after "
                                f"{self.cfg.keep_s:g} s)")  # fmt: skip
        if s["status"] in ("queued", "running") and time.time() - s["updated"] > STALE_S:
            s = {**s, "status": "failed", "error": "the worker running it stopped"}
        done = s["status"] == "done"
        out = {
            "id": job_id,
            "status": s["status"],
            "file": s["file"],
            "progress": 1.0 if done else min(1.0, s["frames"] / s["total"]) if s["total"] else 0,
            "frames": s["frames"],
            "total": s["total"],
            "error": s.get("error"),
            "summary": s.get("summary"),
            "files": {k: f"/v1/jobs/{job_id}/{v}" for k, v in RESULTS.items()} if done else {},
            "expires_in_s": None,
        }
        if "finished" in s:
            out["expires_in_s"] = round(max(0.0, s["finished"] + self.cfg.keep_s - time.time()), 1)
        return out

    def result(self, job_id: str, name: str) -> Path:
        """The path of a finished job's result file, or a 404 RequestError."""
        if self.status(job_id)["status"] != "done" or name not in RESULTS.values():
            raise RequestError(404, f"job {job_id} has no {name} (yet)")
        return self.root / job_id / name

    def delete(self, job_id: str) -> None:
        if self.status(job_id)["status"] in ("queued", "running"):
            raise RequestError(409, f"job {job_id} is still running")
        shutil.rmtree(self.root / job_id, ignore_errors=True)

    def sweep(self) -> list[str]:
        """Delete the folders of jobs finished more than keep_s ago, of jobs whose worker
        stopped, and uploads left half-staged; the ids removed."""
        removed, now = [], time.time()
        for d in self.root.iterdir():
            if d.name.startswith(".incoming-") and now - d.stat().st_mtime > STALE_S:
                shutil.rmtree(d, ignore_errors=True)
            if not JOB_ID.fullmatch(d.name):
                continue
            s = self._read(d.name)
            finished = s.get("finished") if s else None
            # a job with no end (its worker stopped) expires keep_s after it went stale
            end = finished or (s["updated"] if s else d.stat().st_mtime) + STALE_S
            if now - end > self.cfg.keep_s:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
        return removed


def add_job_routes(app: Any, jobs: Jobs, read_limited: Any) -> None:
    """The /v1/jobs routes on a FastAPI app; `read_limited(upload, mb)` reads an upload of
    at most `mb` MB or answers 413."""
    from typing import Annotated

    from fastapi import File, UploadFile
    from fastapi.responses import FileResponse, Response
    from starlette.concurrency import run_in_threadpool

    from ferkit.serve.schemas import JobStatus

    media = {".webm": "video/webm", ".csv": "text/csv", ".png": "image/png"}

    @app.post("/v1/jobs", summary="Analyse a video in the background", status_code=202,
              response_model=JobStatus)  # fmt: skip
    async def submit(file: Annotated[UploadFile, File()]) -> dict:
        await run_in_threadpool(jobs.sweep)
        data = await read_limited(file, jobs.cfg.max_video_mb)
        return await run_in_threadpool(jobs.submit, data, file.filename or "upload.mp4")

    @app.get("/v1/jobs/{job_id}", summary="A video job's status and progress",
             response_model=JobStatus)  # fmt: skip
    async def status(job_id: str) -> dict:
        await run_in_threadpool(jobs.sweep)
        return jobs.status(job_id)

    @app.get("/v1/jobs/{job_id}/{name}", summary="A finished job's result file",
             response_class=FileResponse)  # fmt: skip
    async def result(job_id: str, name: str) -> FileResponse:
        path = jobs.result(job_id, name)
        return FileResponse(path, media_type=media[path.suffix], filename=name)

    @app.delete("/v1/jobs/{job_id}", summary="Delete a finished job's files", status_code=204)
    async def delete(job_id: str) -> Response:
        jobs.delete(job_id)
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def sweeping(jobs: Jobs, every_s: float = 60.0):
    """Lifespan of a server: sweep expired jobs every `every_s` (or keep_s, if shorter);
    at the end, remove the temporary jobs folder."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    async def loop() -> None:
        while True:
            await asyncio.sleep(min(every_s, jobs.cfg.keep_s))
            await run_in_threadpool(jobs.sweep)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        jobs.close()
