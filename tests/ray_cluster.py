"""A local Ray cluster for the engine's tests: 2 CPUs, no dashboard, every process on
127.0.0.1 (checked before any work runs), shut down afterwards; never `ray stop`, which
kills processes by name. And the memory of a run, for the test and
`benchmarks/ray_engine.py --memory`."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

import pytest

from ferkit.scale.ray_engine import LOOPBACK_ENV, import_ray

T = TypeVar("T")


@contextlib.contextmanager
def local_cluster(env: dict[str, str] | None = None) -> Iterator[None]:
    """The cluster, with `env` set in this process while it runs (Ray's processes inherit
    it from here when they start)."""
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        ray = import_ray(None)  # sets LOOPBACK_ENV before Ray is imported
        assert os.environ[LOOPBACK_ENV] == "0"
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
            assert ray.util.get_node_ip_address() == "127.0.0.1"
            yield
        finally:
            ray.shutdown()


def small_crops(folder: Path, n: int) -> list[str]:
    """`n` 64x64 grayscale PNG crops of the bundled astronaut, no two the same bytes."""
    import cv2
    import numpy as np

    photo = cv2.imread(str(Path(__file__).parents[1] / "examples" / "astronaut.jpg"), 0)
    face = cv2.resize(photo, (64, 64))
    paths = [str(folder / f"{i:04d}.png") for i in range(n)]
    for i, path in enumerate(paths):
        cv2.imwrite(path, np.roll(face, i % 9 - 4, axis=1))
    return paths


def _processes(root: int) -> list[int]:
    """`root` and every process under it (Linux's /proc): the driver and Ray's workers."""
    todo, found = [root], []
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):  # gone meanwhile
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _rss(pid: int, field: str) -> int:
    """A process's VmRSS (now) or VmHWM (its peak), MB; 0 once it has gone (a zombie's
    status has no memory lines)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) // 1024 if found else 0


class Memory(NamedTuple):
    peaks: dict[int, int]  # MB, the peak RSS of each process under this one, by PID
    driver_growth: int  # MB, this process's RSS at its highest during the run, less before


def memory_of(run: Callable[[], T]) -> tuple[T, Memory]:
    """`run()`'s result and the memory it took, sampled from /proc every 50 ms (so the
    peaks of processes that exit are seen too)."""
    peaks: dict[int, int] = {}
    before = peak = _rss(os.getpid(), "VmRSS")
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for pid in _processes(os.getpid())[1:]:
                peaks[pid] = max(peaks.get(pid, 0), _rss(pid, "VmHWM"))
            peak = max(peak, _rss(os.getpid(), "VmRSS"))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run()
    finally:
        done.set()
        sampler.join()
    return result, Memory(peaks, peak - before)
