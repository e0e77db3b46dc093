"""A local Ray cluster for the engine's tests: 2 CPUs, no dashboard, every process on
127.0.0.1 (checked before any work runs), shut down afterwards; never `ray stop`, which
kills processes by name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from ferkit.apps.ray_engine import LOOPBACK_ENV, import_ray


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
