"""Atomic file writes: readers see the old file or the complete new one, never a half."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ferkit.core.errors import FerkitError

# errnos that mean the disk (or a quota, or RLIMIT_FSIZE) took no more: a write inside
# `atomic_path` that fails so is reported against the file being written
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_orphans(target: Path) -> list[Path]:
    """Delete the temporary files of earlier writes of `target` whose process is gone (a
    `kill -9` or a power cut leaves them: `.NAME.PID.XXXX.tmp`); returns what it removed.
    A write still in progress in another process is left alone."""
    removed = []
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds.

    The temporary file lives in the same directory so that `os.replace` is an atomic
    rename. On any exception the temporary file is removed and `path` is untouched. Its
    name carries this process's id, so later writes clean up after a killed one.
    """
    target = Path(path)
    remove_orphans(target)
    prefix = f".{target.name}.{os.getpid()}."
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FerkitError(f"{target}: cannot write here ({exc.strerror})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; published files get the usual mode
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise FerkitError(f"{target}: {exc.strerror}; nothing was written") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_writable(path: str | os.PathLike[str], folder: bool = False) -> Path:
    """Say in one line, before any work, why `path` cannot be written: as a file, it is a
    folder; as a `folder`, it is a file; or the nearest existing folder above it is a file,
    or takes no new file. Returns the path."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise FerkitError(f"{path}: exists and is not a folder")
        if not folder and path.is_dir():
            raise FerkitError(f"{path}: is a folder; give a file name")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise FerkitError(f"{path}: {parent} is a file, not a folder")
    try:  # a real write: permissions, read-only mounts and pseudo file systems, even as root
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise FerkitError(f"{path}: cannot write in {parent} ({exc.strerror})") from None
    return path
