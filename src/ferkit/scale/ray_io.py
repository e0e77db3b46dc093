"""The Ray engine's files: the images a URI holds, what an `--out` already holds (refused,
or skipped with `--resume`), and the summary read back from the Parquet written.

Resuming is sound because a Parquet file's footer is written last: a file a killed run
left half-written does not open, and is deleted, and every file that opens is whole. All
of one image's rows come from one actor call, so they sit in one file.
"""

import os
import stat
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from ferkit.apps.predict import Summary
from ferkit.apps.records import FILE_COLUMNS, arrow_schema
from ferkit.core.decoding import IMAGE_SUFFIXES
from ferkit.core.errors import FerkitError
from ferkit.core.limits import MAX_IMAGE_BYTES


@dataclass
class RaySummary(Summary):
    """`--engine local`'s summary of every row under --out, plus what a resumed run found
    there already; faces/s counts this run's faces only."""

    skipped: int = 0  # input files whose rows were already written
    earlier_faces: int = 0
    removed: list[str] = field(default_factory=list)  # half-written files deleted

    @property
    def faces_per_s(self) -> float:
        return (self.faces - self.earlier_faces) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        done = f"; {self.skipped} files were done already" if self.skipped else ""
        return super().line() + done


def filesystem(where: str):
    """(pyarrow file system, path on it) for a local path or a URI; a URI pyarrow cannot
    open is a one-line error."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    if "://" not in where:
        return pafs.LocalFileSystem(), os.path.abspath(where)
    try:
        return pafs.FileSystem.from_uri(where)
    except (pa.ArrowException, OSError) as exc:  # an unknown scheme, a bad query
        raise FerkitError(f"{where}: {exc}") from None


def uri_images(uris: tuple[str, ...]):
    """The file system of `uris` (the first one's: one per run) and the image files they
    name or hold, sorted, as paths on it ("bucket/a.jpg")."""
    import pyarrow.fs as pafs

    fs, _ = filesystem(uris[0])
    paths: list[str] = []
    for uri in uris:
        root = filesystem(uri)[1]
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise FerkitError(f"{uri}: not found")
        found = [info]
        if info.type == pafs.FileType.Directory:
            found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
        paths += [f.path for f in found if f.type == pafs.FileType.File
                  and os.path.splitext(f.path)[1].lower() in IMAGE_SUFFIXES]  # fmt: skip
    return fs, sorted(set(paths))


def parquet_files(out: str) -> list[str]:
    """The Parquet files under `out`, as paths on its file system; none if it is new."""
    import pyarrow.fs as pafs

    fs, root = filesystem(out)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise FerkitError(f"{out}: a file, not a folder")
    if info.type == pafs.FileType.NotFound:
        return []
    found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return sorted(f.path for f in found if f.path.endswith(".parquet"))


class Earlier(NamedTuple):
    """What an --out held before this run."""

    done: set[str]  # the paths of files with rows written
    faces: int  # their face rows
    removed: list[str]  # half-written files, deleted


def previous_results(out: str, resume: bool) -> Earlier:
    """What `out` holds: nothing, or with `resume` the paths and faces already written,
    after deleting half-written files. Without `resume`, results there are refused."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = parquet_files(out)
    if parts and not resume:
        raise FerkitError(f"{out}: already holds Parquet results; give --resume to skip the "
                          "files in them, or an empty or new --out")  # fmt: skip
    fs, _ = filesystem(out)
    tables, removed = [], []
    for part in parts:
        try:
            tables.append(pq.read_table(part, columns=["path", "status"], filesystem=fs))
        except (pa.ArrowInvalid, OSError):  # no footer: a write a killed run left
            fs.delete_file(part)
            removed.append(part)
    if not tables:
        return Earlier(set(), 0, removed)
    table = pa.concat_tables(tables)
    faces = pc.sum(pc.equal(table["status"], "face")).as_py() or 0
    return Earlier(set(table["path"].to_pylist()), faces, removed)


def summarise(out: str, seconds: float, earlier: Earlier, skipped: int) -> RaySummary:
    """The summary line's counts, read back from every Parquet file under `out` (counted
    by pyarrow; only the no-face paths and the error messages become Python lists)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pds

    table = pds.dataset(out, format="parquet").to_table(columns=["path", "status", "error"])
    status = table["status"]
    summary = RaySummary(seconds=seconds, skipped=skipped, earlier_faces=earlier.faces,
                         removed=earlier.removed)  # fmt: skip
    summary.images = pc.count_distinct(table["path"]).as_py()
    summary.faces = pc.sum(pc.equal(status, "face")).as_py() or 0
    summary.no_face = table.filter(pc.equal(status, "no_face"))["path"].to_pylist()
    summary.errors = table.filter(pc.equal(status, "error"))["error"].to_pylist()
    return summary


def schema():
    """The engine's Parquet rows: a face record's columns, then the file's status and error
    (`ferkit.apps.records`)."""
    return arrow_schema(FILE_COLUMNS)


def screen(fs, paths: list[str], prefix: str) -> tuple[list[str], list[dict]]:
    """The paths Ray may read whole, and an error row for each it may not: a pipe or device
    (a read that may never end, which aborted the whole job) or a file over the photo byte
    limit (`MAX_IMAGE_BYTES`: Ray reads a file in one piece). `fs` None: local paths."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(paths) if fs is not None else None
    keep, rows = [], []
    for i, path in enumerate(paths):
        if infos is None:
            try:
                st = os.stat(path)
                regular, size = stat.S_ISREG(st.st_mode), st.st_size
            except OSError as exc:
                rows.append(_error_row(path, exc.strerror or "cannot read it"))
                continue
        else:
            regular, size = infos[i].type == pafs.FileType.File, infos[i].size or 0
        if not regular:
            rows.append(_error_row(prefix + path, "not a regular file (a pipe or device "
                                   "may never end)"))  # fmt: skip
        elif size > MAX_IMAGE_BYTES:
            rows.append(_error_row(prefix + path, f"{size:,} bytes, over the limit of "
                                   f"{MAX_IMAGE_BYTES:,}"))  # fmt: skip
        else:
            keep.append(path)
    return keep, rows


def _error_row(path: str, why: str) -> dict:
    return {"path": path, "status": "error", "error": f"{path}: {why}"}


def write_rows(out: str, rows: list[dict]) -> None:
    """Rows written beside Ray's, as one more Parquet file under `out`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = filesystem(out)
    fs.create_dir(root, recursive=True)
    table = pa.Table.from_pylist(rows, schema=schema())
    pq.write_table(table, f"{root}/refused-{uuid.uuid4().hex}.parquet", filesystem=fs)
