"""`ferkit predict --engine ray`: the photo batch on Ray Data, for more than one machine.

Ray Data's batch-inference pattern, nothing of ferkit's own in the scheduling:
`read_binary_files` streams the files' bytes (local paths, or any URI pyarrow reads:
`s3://`, `gs://`, ...), `map_batches` runs them through a pool of actors that each build
one `EmotionRecognizer` and keep it, and `write_parquet` streams the rows out. Decoding,
detection and cropping are ferkit's own (`decode`, `predict_image`), so the faces equal
`--engine local`'s. One row per face, plus one per file with no face (`status`
"no_face") or an error ("error", with `error`): nothing is lost silently, and a bad file
is a row, never a failed job.

A run on an `--out` that holds results is refused, or with `resume` skips the files whose
rows are there (`ray_io`).

A local cluster (no `--address`) binds to 127.0.0.1 only: Ray's single-machine mode
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`); by default Ray on Linux listens on the machine's
network address. Actors get `actor_cpus` each and the reads what is left, since two whole
CPUs for two actors on a 2-CPU node leave the reads none and the job hangs.
"""

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from ferkit.apps.records import FaceRecord
from ferkit.core.decoding import decode_image
from ferkit.core.errors import FerkitError
from ferkit.scale.config import RayConfig, RayVideoConfig
from ferkit.scale.ray_io import (
    RaySummary,
    previous_results,
    schema,
    screen,
    summarise,
    uri_images,
    write_rows,
)

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class Recognize:
    """A Ray Data actor: one recogniser, built once, applied to batches of file bytes."""

    def __init__(self, recognizer: dict[str, Any], detect: bool, scheme: str = "") -> None:
        from ferkit.vision.recognize import EmotionRecognizer

        self.rec, self.detect = EmotionRecognizer(**recognizer), detect
        # Ray hands a URI's files over as paths on their file system ("bucket/a.jpg"); the
        # rows say where they are ("s3://bucket/a.jpg")
        self.prefix = f"{scheme}://" if scheme else ""

    def __call__(self, batch: dict[str, Any]):
        import pyarrow as pa

        rows: list[dict[str, Any]] = []
        for path, data in zip(batch["path"], batch["bytes"], strict=True):
            rows.extend(self.rows(self.prefix + str(path), bytes(data)))
        return pa.Table.from_pylist(rows, schema=schema())

    def rows(self, path: str, data: bytes) -> list[dict[str, Any]]:
        try:
            photo = decode_image(data, path)
            found = self.rec.predict_image(photo.image, detect=self.detect)
            faces = [f.scaled(photo.scale) for f in found]
        except FerkitError as exc:
            return [{"path": path, "status": "error", "error": str(exc)}]
        if not faces:
            return [{"path": path, "status": "no_face"}]
        return [{**FaceRecord(f, i, path).flat(), "status": "face"} for i, f in enumerate(faces)]


def import_ray(address: str | None):
    """`ray` with Ray Data loaded, or a one-line error saying how to install it. For a local
    cluster, LOOPBACK_ENV is set first: Ray reads it when it is imported."""
    if address is None:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
        import ray.data  # the engine's half of ray, missing without [data]
    except ImportError:
        raise FerkitError("--engine ray needs Ray: pip install 'ferkit[ray]'") from None
    return ray


# Ray's warnings that say nothing to a ferkit user, by the loggers that log them:
# - "no available CPUs, the job will hang": `write_parquet` logs it after the work is done,
#   while the actors still hold their CPUs; `predict_on_ray` has checked what reads need;
# - "token authentication is enabled": Ray's default for a new local cluster, kept.
QUIETED = {
    "ray.data.dataset": "does not have any available CPUs",
    "ray._private.authentication.authentication_token_setup": "Token authentication is enabled",
}


def _quiet(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop) for the warnings in QUIETED."""
    return not any(text in record.getMessage() for text in QUIETED.values())


def start(address: str | None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address`, or start a local one bound to loopback (after
    `import_ray`)."""
    import ray

    # Ray's INFO lines (its plan, and its progress when stderr is no terminal) would bury
    # ferkit's summary; its progress bars on a terminal stay
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    for name in QUIETED:
        logging.getLogger(name).addFilter(_quiet)  # a filter already there is not re-added
    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **quiet)
    else:
        ray.init(address=address, **quiet)


def input_scheme(inputs: tuple[str, ...]) -> str:
    """The inputs' one URI scheme ("s3"), or "" for local paths: Ray Data reads one file
    system per dataset."""
    schemes = {p.split("://", 1)[0] if "://" in p else "" for p in inputs}
    if len(schemes) > 1:
        found = " and ".join(sorted(s or "local" for s in schemes))
        raise FerkitError(f"inputs on one file system only (local paths, or URIs of one "
                          f"scheme), not {found}")  # fmt: skip
    return schemes.pop() if schemes else ""


def predict_on_ray(cfg: RayConfig) -> RaySummary:
    """Run the batch on Ray Data; the Parquet files under cfg.out and the summary of all
    of them. With cfg.resume, files with rows already under cfg.out are skipped."""
    ray = import_ray(cfg.address)
    scheme = input_scheme(cfg.inputs)
    earlier = previous_results(cfg.out, cfg.resume)
    # local inputs come expanded (`find_images`, as --engine local); a URI is listed here,
    # images only, and read through its file system
    fs, paths = uri_images(cfg.inputs) if scheme else (None, list(cfg.inputs))
    if not paths:
        raise FerkitError("no image files found in " + " ".join(cfg.inputs))
    # a row's path is the URI, or the local path as given: compared absolute
    prefix, same = (f"{scheme}://", str) if scheme else ("", os.path.abspath)
    done = {same(p) for p in earlier.done}
    todo = [p for p in paths if same(prefix + p) not in done]
    begin = time.perf_counter()
    todo, refused = screen(fs, todo, prefix)  # pipes, devices, files over the byte limit
    if refused:
        write_rows(cfg.out, refused)
    if todo:
        start(cfg.address)
        check_cpus(ray.cluster_resources().get("CPU", 0), cfg.actors, cfg.actor_cpus)
        ds = ray.data.read_binary_files(todo, include_paths=True, filesystem=fs)
        ds = ds.map_batches(
            Recognize,
            fn_constructor_kwargs={
                "recognizer": cfg.recognizer,
                "detect": cfg.detect,
                "scheme": scheme,
            },
            compute=ray.data.ActorPoolStrategy(size=cfg.actors),
            num_cpus=cfg.actor_cpus,
            batch_size=cfg.batch_size,
            batch_format="numpy",
        )
        ds.write_parquet(cfg.out)
    return summarise(cfg.out, time.perf_counter() - begin, earlier, len(paths) - len(todo))


def check_cpus(cpus: float, actors: int, actor_cpus: float) -> None:
    """Refuse actors that would leave the read tasks no CPU: each asks for a whole one,
    and the job would hang."""
    if actors * actor_cpus > cpus - 1:
        raise FerkitError(f"{actors} actors x {actor_cpus:g} CPUs leave the cluster's "
                          f"{cpus:g} CPUs none for reading the files, and the job would "
                          "hang; lower --actors or --actor-cpus")  # fmt: skip


VIDEO_COLUMNS = ("video", "folder", "status", "error", "frames", "faces", "tracks", "lost",
                 "seconds", "fps")  # fmt: skip


def video_folders(videos: tuple[str, ...]) -> list[str]:
    """A results folder name per video: its stem, numbered when two stems collide."""
    names: list[str] = []
    for v in videos:
        stem = os.path.splitext(os.path.basename(v))[0] or "video"
        name, n = stem, 1
        while name in names:
            n += 1
            name = f"{stem}-{n}"
        names.append(name)
    return names


def one_video(video: str, folder: str, smoothing: float, recognizer: dict[str, Any]) -> dict:
    """A Ray task: the whole of one video through `process_video` (its tracker needs the
    clip in order), results in `folder`; a summary row, with the error if it failed."""
    from pathlib import Path

    from ferkit.apps.video import VideoConfig, process_video
    from ferkit.vision.recognize import EmotionRecognizer

    d = Path(folder)
    cfg = VideoConfig(video, d / "annotated.mp4", d / "frames.csv", d / "timeline.png",
                      smoothing=smoothing)  # fmt: skip
    row: dict[str, Any] = dict.fromkeys(VIDEO_COLUMNS)  # every key, so columns line up
    row.update(video=video, folder=folder, status="done")
    try:
        s = process_video(cfg, EmotionRecognizer(**recognizer))
    except FerkitError as exc:
        return {**row, "folder": None, "status": "error", "error": str(exc)}  # none written
    return {**row, "frames": s.frames, "faces": s.faces, "tracks": s.tracks,
            "lost": len(s.lost), "seconds": s.seconds, "fps": s.fps}  # fmt: skip


def videos_on_ray(cfg: RayVideoConfig, on_done: Callable[[dict], None] | None = None) -> list[dict]:
    """One Ray task per video; `summary.parquet` in cfg.out, a row per video, in order.
    `on_done` gets each video's row as its task finishes, in the order they finish (for a
    progress bar)."""
    ray = import_ray(cfg.address)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ferkit.core.atomic import atomic_path

    start(cfg.address)
    task = ray.remote(num_cpus=cfg.task_cpus, max_retries=0)(one_video)
    folders = [os.path.join(cfg.out, n) for n in video_folders(cfg.videos)]
    refs = [task.remote(v, f, cfg.smoothing, cfg.recognizer)
            for v, f in zip(cfg.videos, folders, strict=True)]  # fmt: skip
    pending, done = list(refs), {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        done[ready[0]] = ray.get(ready[0])
        if on_done:
            on_done(done[ready[0]])
    rows = [done[r] for r in refs]
    os.makedirs(cfg.out, exist_ok=True)
    with atomic_path(os.path.join(cfg.out, "summary.parquet")) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return rows
