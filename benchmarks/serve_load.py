"""Load test of `ferkit serve`: N concurrent clients x M requests on loopback.

    python benchmarks/serve_load.py [--clients 1,4,8] [--requests 50] [--photo PATH]

Starts a real server (`python -m ferkit serve`) on a free 127.0.0.1 port, posts the photo
(default: examples/astronaut.jpg, one face) to /v1/predict from each client thread as fast
as replies come, and reports requests/s, p50/p95 latency and errors per concurrency level.
The first level (1 client) is the baseline for the ratios. Traffic stays on loopback; the
loop is bounded by --requests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferkit", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("ferkit serve did not start")


def run_level(url: str, body: bytes, ctype: str, clients: int, requests: int) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests):
            req = urllib.request.Request(url, body, {"Content-Type": ctype})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    ok = r.status == 200 and b'"faces"' in r.read()
            except OSError:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - t)
                errors[0] += not ok

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "rps": len(lat) / wall,
        "p50": 1000 * statistics.median(lat),
        "p95": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "errors": errors[0],
        "n": len(lat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,4,8", help="concurrency levels, comma-separated")
    ap.add_argument("--requests", type=int, default=50, help="requests per client")
    ap.add_argument("--photo", default=str(ROOT / "examples" / "astronaut.jpg"))
    args = ap.parse_args()
    photo = Path(args.photo)
    body, ctype = multipart(photo.read_bytes(), photo.name)
    port = free_port()
    proc = start_server(port)
    url = f"http://127.0.0.1:{port}/v1/predict"
    try:
        run_level(url, body, ctype, 2, 5)  # warm-up: threads, detectors, ONNX Runtime
        print(f"POST /v1/predict with {photo.name} ({len(body) / 1e3:.0f} kB), {url}")
        base = None
        for clients in (int(c) for c in args.clients.split(",")):
            r = run_level(url, body, ctype, clients, args.requests)
            base = base or r["rps"]
            print(
                f"{clients:3d} clients x {args.requests}: {r['rps']:6.1f} req/s "
                f"({r['rps'] / base:.2f}x), p50 {r['p50']:6.1f} ms, p95 {r['p95']:6.1f} ms, "
                f"errors {r['errors']}/{r['n']}"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
