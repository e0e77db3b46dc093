"""`--address`: ferkit joining a running cluster of two nodes, as on real machines, here
two raylets on this machine with every process on 127.0.0.1. The commands run as a user
runs them, in their own process, and schedule across both nodes."""

from __future__ import annotations

import subprocess
import sys

import pytest

cluster_utils = pytest.importorskip("ray.cluster_utils", reason="--engine ray needs ferkit[ray]")
pq = pytest.importorskip("pyarrow.parquet", reason="--engine ray needs ferkit[ray]")

from tests.conftest import EXAMPLES, ROOT
from tests.serve.test_jobs import clip


@pytest.fixture(scope="module")
def address():
    """A head node of 1 CPU and a worker node of 2; its GCS address. `Cluster.shutdown`
    kills the processes it started, by handle (never `ray stop`, which kills by name)."""
    import ray

    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        try:  # checked before any work runs
            nodes = [(n["NodeManagerAddress"], n["Resources"]["CPU"]) for n in ray.nodes()]
            assert sorted(nodes) == [("127.0.0.1", 1.0), ("127.0.0.1", 2.0)]
        finally:
            ray.shutdown()
        yield cluster.address
    finally:
        cluster.shutdown()


def ferkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferkit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, stdin=subprocess.DEVNULL)  # fmt: skip


def test_photos_on_a_two_node_cluster(address, tmp_path):
    # 2 actors x 1 CPU leave a 2-CPU cluster none for reading (refused), but fit the
    # 3 CPUs of these two nodes: the command sized itself on the cluster it joined
    photos = [str(EXAMPLES / n) for n in ("astronaut.jpg", "cameraman.png", "chelsea.jpg")]
    out = tmp_path / "out"
    done = ferkit("predict", "--engine", "ray", "--address", address, "--actors", "2",
                  "--actor-cpus", "1", *photos, "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 images, 2 faces, 1 with no face, 0 errors" in done.stderr
    rows = sorted(pq.read_table(out).to_pylist(), key=lambda r: r["path"])
    assert [(r["path"], r["status"]) for r in rows] == [
        (photos[0], "face"), (photos[1], "face"), (photos[2], "no_face"),
    ]  # fmt: skip
    assert rows[0]["label"] == "happy"


def test_videos_on_a_two_node_cluster(address, tmp_path):
    videos = []
    for i in range(3):  # three tasks of 1 CPU: all three nodes' CPUs at once
        videos.append(str(tmp_path / f"clip{i}.mp4"))
        clip(tmp_path / f"clip{i}.mp4", frames=6 + i)
    out = tmp_path / "out"
    done = ferkit("video", "--engine", "ray", "--address", address, *videos, "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out / "summary.parquet").to_pylist()
    assert [(r["video"], r["status"], r["frames"]) for r in rows] == [
        (v, "done", 6 + i) for i, v in enumerate(videos)
    ]
    assert all((out / f"clip{i}" / "annotated.mp4").is_file() for i in range(3))
