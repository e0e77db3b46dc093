"""One face, written the same way by every delivery.

`predict` (JSON Lines or CSV), `video` (CSV), the server's `/v1/predict` and `/v1/stream`
(JSON) and the Ray engine (Parquet) all describe a face with these fields, in this order:

    path        the photo, upload, video or URI the face is in (None on a live stream)
    frame       the frame's index in a video or stream (None for a photo)
    time_s      the frame's time in seconds from the start of a video (None elsewhere)
    track       the tracker's id, the same face across frames (None for a photo)
    face        the face's index in its photo or frame (0, 1, ...)
    box         x, y, width, height in pixels of the upright photo or frame
    score       the detector's confidence (1.0 when the image was taken as one face)
    label       the most probable emotion
    confidence  that emotion's probability
    probs       the seven emotions' probabilities (LABELS order)

A field that does not apply is present and None (null in JSON, an empty CSV cell, a null
in Parquet), never left out, so the same photo gives rows with the same columns whichever
way it came in. On video and stream rows `probs`, `label` and `confidence` are smoothed
over the track (`ferkit.vision.tracking`). JSON nests `box` and `probs`; CSV and Parquet
flatten them into `x, y, width, height` and one column per emotion (`COLUMNS`).

The Ray engine's Parquet rows add `status` and `error` (`FILE_COLUMNS`), because a table
has one row for a file with no face or an unreadable one, where the other deliveries
report those files beside their rows instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferkit.core.labels import LABELS
from ferkit.vision.recognize import Face

PLACE = ("path", "frame", "time_s", "track", "face")  # where the face is
BOX = ("x", "y", "width", "height")
COLUMNS = (*PLACE, *BOX, "score", "label", "confidence", *LABELS)  # CSV and Parquet
JSON_FIELDS = (*PLACE, "box", "score", "label", "confidence", "probs")
FILE_COLUMNS = ("status", "error")  # Ray only: "face", "no_face" or "error", and why
DECIMALS = 6  # probabilities in CSV: 1e-6 is below any difference a reader acts on


@dataclass(frozen=True)
class FaceRecord:
    """A recognised face and where it was found."""

    face: Face
    index: int  # in its photo or frame
    path: str | None = None
    frame: int | None = None
    time_s: float | None = None
    track: int | None = None

    def place(self) -> dict[str, Any]:
        t = None if self.time_s is None else round(self.time_s, 3)  # ms: a frame is >= 1
        return {"path": self.path, "frame": self.frame, "time_s": t, "track": self.track,
                "face": self.index}  # fmt: skip

    def json(self) -> dict[str, Any]:
        """The JSON row (`JSON_FIELDS`): the place, then the face's own fields, box and
        probs nested."""
        return {**self.place(), **self.face.to_dict()}

    def flat(self) -> dict[str, Any]:
        """The flat row (`COLUMNS`), typed, as Parquet stores it."""
        row = self.json()
        row |= dict(zip(BOX, row["box"], strict=True)) | row["probs"]
        return {k: row[k] for k in COLUMNS}

    def csv(self) -> list[Any]:
        """The CSV cells (`COLUMNS`): None as an empty cell, probabilities to `DECIMALS`."""
        row = self.flat()
        for k in ("confidence", *LABELS):
            row[k] = f"{row[k]:.{DECIMALS}f}"
        return ["" if v is None else v for v in row.values()]


def arrow_schema(extra: tuple[str, ...] = ()):
    """The Parquet schema of `COLUMNS`, then the string columns `extra` (`FILE_COLUMNS`)."""
    import pyarrow as pa

    types = {"path": pa.string(), "time_s": pa.float64(), "label": pa.string()}
    ints = ("frame", "track", "face", *BOX)
    types |= dict.fromkeys(ints, pa.int64())
    types |= dict.fromkeys(("score", "confidence", *LABELS), pa.float64())
    fields = [(k, types[k]) for k in COLUMNS] + [(k, pa.string()) for k in extra]
    return pa.schema(fields)
