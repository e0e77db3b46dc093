"""Fuzz: small valid files of every accepted format, in several pixel modes, damaged the ways
disks, networks and attackers damage them (cut short, bytes flipped, runs overwritten,
a header field set to an extreme). Every input gives either pixels or one `FerkitError` from
the decoder, rows or one line from the CLI, JSON from the API and an error frame (with the
stream still open) from the live stream: never a traceback, a 500 or a dropped connection."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
from PIL import Image

from ferkit.core.decoding import FORMATS, decode_image
from ferkit.core.errors import FerkitError
from tests.hostile.bombs import run_capped

MODES = {
    "JPEG": ("RGB", "L", "CMYK"),
    "PNG": ("RGB", "L", "RGBA", "P", "I;16", "LA"),
    "WEBP": ("RGB", "RGBA"),
    "BMP": ("RGB", "L", "P", "1"),
    "TIFF": ("RGB", "L", "RGBA", "I;16", "F", "CMYK"),
    "GIF": ("P", "L"),
    "PPM": ("RGB", "L", "I;16", "1"),
}
SAVE = {
    "TIFF": [{}, {"compression": "tiff_lzw"}, {"compression": "tiff_adobe_deflate"}],
    "WEBP": [{"lossless": True}, {"quality": 60}],
    "JPEG": [{}, {"progressive": True}],
}
EXTREMES = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff")


def seeds() -> list[tuple[str, bytes]]:
    """(format, bytes) of small valid files: 37x23, noise over a gradient."""
    rng = np.random.default_rng(0)
    rgb = (rng.integers(0, 60, (23, 37, 3)) + np.arange(37)[None, :, None] * 5).astype(np.uint8)
    out = []
    for fmt, modes in MODES.items():
        for mode in modes:
            img = Image.fromarray(rgb).convert(mode) if mode not in ("I;16", "F") else None
            if mode == "I;16":
                img = Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257)
            if mode == "F":
                img = Image.fromarray(rgb[:, :, 0].astype(np.float32) / 255)
            for kw in SAVE.get(fmt, [{}]):
                buf = io.BytesIO()
                img.save(buf, format=fmt, **kw)
                out.append((fmt, buf.getvalue()))
    return out


def mutants(data: bytes, rng: random.Random, n: int) -> list[bytes]:
    """`n` damaged copies: cut short, bytes flipped, a run overwritten, a field maxed out."""
    out = []
    for i in range(n):
        d = bytearray(data)
        kind = i % 4
        if kind == 0:
            d = d[: rng.randrange(1, len(d))]
        elif kind == 1:
            for _ in range(rng.randrange(1, 8)):
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        elif kind == 2:
            at = rng.randrange(len(d))
            d[at : at + rng.randrange(1, 32)] = bytes([rng.choice((0, 0xFF, 0x7F))]) * 16
        else:  # a header field (first 64 bytes) set to an extreme
            at = rng.randrange(min(64, len(d) - 4))
            d[at : at + 4] = rng.choice(
                (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff")
            )
        out.append(bytes(d))
    return out


def corpus(per_seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(46)
    return [(f"{fmt}-{i}-{j}", m) for i, (fmt, data) in enumerate(seeds())
            for j, m in enumerate(mutants(data, rng, per_seed))]  # fmt: skip


def test_every_accepted_format_is_fuzzed():
    assert set(MODES) == set(FORMATS)


def test_damaged_files_give_pixels_or_one_ferkit_error():
    """About 2,300 damaged files: the decoder returns uint8 pixels or raises FerkitError."""
    kinds = {"pixels": 0, "error": 0}
    for name, data in corpus(per_seed=60):
        try:
            out = decode_image(data, name).image
        except FerkitError as exc:
            assert str(exc).startswith(f"{name}: ") and "\n" not in str(exc)
            kinds["error"] += 1
            continue
        assert out.dtype == np.uint8 and out.ndim in (2, 3) and min(out.shape[:2]) > 0, name
        kinds["pixels"] += 1
    assert min(kinds.values()) > 100, kinds  # both outcomes are exercised


def test_the_cli_gives_rows_or_one_line_for_each_damaged_file(tmp_path):
    files = []
    for name, data in corpus(per_seed=3):
        suffix = FORMATS[name.split("-")[0]][0]
        (tmp_path / f"{name}{suffix}").write_bytes(data)
        files.append(f"{name}{suffix}")
    r = run_capped(["predict", *files], tmp_path)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr[-3000:]
    *lines, summary = [line for line in r.stderr.splitlines() if line.strip()]
    assert summary.startswith(f"{len(files)} images"), summary
    # one line per file at most, each naming its file: no decoder's own chatter (libtiff)
    assert all(line.split(": ")[0] in files for line in lines), r.stderr[-3000:]
    assert "unreadable" in r.stderr


pytest.importorskip("fastapi", reason="serving needs ferkit[serve]")


def test_the_api_answers_json_for_each_damaged_file():
    from fastapi.testclient import TestClient

    from ferkit.serve.app import create_app
    from ferkit.serve.config import ServeConfig

    client = TestClient(create_app(ServeConfig(model="fast")), raise_server_exceptions=False)
    items = corpus(per_seed=2)
    for name, data in items:
        r = client.post("/v1/predict", files={"file": (f"{name}.jpg", data)})
        assert r.status_code in (200, 413, 415, 422), (name, r.status_code, r.text)
        assert "faces" in r.json() or r.json()["detail"].startswith(f"{name}.jpg: ")
    files = [("files", (f"{n}.jpg", d)) for n, d in items[:32]]
    r = client.post("/v1/predict/batch", files=files)
    assert r.status_code == 200 and len(r.json()["results"]) == 32


def test_the_stream_answers_each_damaged_frame_and_stays_open():
    from fastapi.testclient import TestClient

    from ferkit.serve.app import create_app
    from ferkit.serve.config import ServeConfig, StreamConfig

    cfg = ServeConfig(model="fast", stream=StreamConfig(max_fps=1000))
    client = TestClient(create_app(cfg))
    items = corpus(per_seed=1)[:40]
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        for _, data in items:
            ws.send_bytes(data)
            assert ws.receive_json()["type"] in ("faces", "error")
        ws.send_bytes(json.dumps({}).encode())
        assert ws.receive_json()["type"] == "error"
