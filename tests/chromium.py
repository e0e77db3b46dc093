"""A real `ferkit serve` and a real headless Chromium on loopback, for the browser test and
`benchmarks/stream_speed.py`: Debian's chromium driven by Selenium through the system
chromedriver (nothing is downloaded), and a fake webcam that plays a y4m file made from
the bundled astronaut photo."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(NamedTuple):
    url: str
    pid: int


@contextlib.contextmanager
def ferkit_serve(*args: str, timeout: float = 60) -> Iterator[Server]:
    """`python -m ferkit serve ARGS` on a free 127.0.0.1 port; yields its URL and PID, and
    stops it (by its PID) on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferkit", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"ferkit serve did not start:\n{proc.communicate()[0]}")
            time.sleep(0.2)
        yield Server(url, proc.pid)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def chrome(fake_camera: Path | None = None):
    """Headless Chromium; with `fake_camera`, getUserMedia is granted and plays that y4m."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    if fake_camera is not None:
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument(f"--use-file-for-fake-video-capture={fake_camera}")
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def write_y4m(path: Path, seconds: float = 4.0, fps: int = 30) -> Path:
    """A 640x480 YUV4MPEG2 clip of the astronaut (one face) drifting left and right, which
    Chromium's fake camera loops: a webcam with one moving face, from bundled material."""
    photo = cv2.imread(str(ROOT / "examples" / "astronaut.jpg"))
    face = cv2.resize(photo, (400, 400))
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        n = int(seconds * fps)
        for i in range(n):
            canvas = np.full((480, 640, 3), 200, np.uint8)
            x = 120 + int(60 * np.sin(2 * np.pi * i / n))  # px: one sweep per loop
            canvas[40:440, x : x + 400] = face
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path
