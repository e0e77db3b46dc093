"""Memory per photo and per request is bounded (docs/guarantees.md, "Memory"): a photo
at the CLI's pixel limit keeps `ferkit predict` under 1 GB, and sixteen concurrent uploads
at the server's pixel limit keep the server under 2 GB, measured as peak resident memory."""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ferkit.core.limits import MAX_PIXELS
from tests.hostile.bombs import flat_png, peak_rss_mb


def test_a_photo_at_the_pixel_limit_keeps_predict_under_1_gb(tmp_path):
    side = int(MAX_PIXELS**0.5)  # 10000 x 10000, 315 KB as PNG: 400 MB inside Pillow
    (tmp_path / "huge.png").write_bytes(flat_png(side))
    r, peak = peak_rss_mb(["predict", "huge.png", "--out", "out"], tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (tmp_path / "out" / "huge.png").exists()
    assert peak < 1024, f"peak {peak:.0f} MB"


def peak_of(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def post(url: str, data: bytes) -> int:
    boundary = "ferkitboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(f"{url}/v1/predict?annotate=true", body, headers)
    with urllib.request.urlopen(request, timeout=170) as r:
        return r.status


def test_sixteen_uploads_at_the_servers_limit_keep_it_under_2_gb():
    pytest.importorskip("uvicorn", reason="serving needs ferkit[serve]")
    from ferkit.serve.config import ServeConfig
    from tests.chromium import ferkit_serve

    side = int(ServeConfig().max_pixels ** 0.5)  # 6324 x 6324 RGBA: 160 KB, 40 MP
    data = flat_png(side, "RGBA")
    with ferkit_serve("--model", "fast", timeout=120) as server:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: post(server.url, data), range(16)))
        peak = peak_of(server.pid)
    assert statuses == [200] * 16
    assert peak < 2048, f"peak {peak:.0f} MB"
