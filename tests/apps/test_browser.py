"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through
the system chromedriver (nothing is downloaded), against a real `ferkit serve` process on
a free loopback port. The screenshot is kept in artifacts/web_page.png."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT

ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them with apt)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("uvicorn", reason="serving needs ferkit[serve]")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferkit", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"ferkit serve did not start:\n{proc.stdout.read()}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_shows_boxes_and_seven_bars(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    assert browser.title.startswith("ferkit")
    browser.find_element(By.ID, "file").send_keys(str(ROOT / "examples" / "astronaut.jpg"))
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".face")))
    faces = browser.find_elements(By.CSS_SELECTOR, ".face")
    assert len(faces) == 1
    bars = faces[0].find_elements(By.CSS_SELECTOR, ".bar")
    assert [b.get_attribute("data-label") for b in bars] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
    ]  # fmt: skip
    widths = [float(b.value_of_css_property("width").removesuffix("px")) for b in bars]
    assert max(widths) == widths[3] > 0  # the happy bar is the longest
    assert "happy" in faces[0].find_element(By.TAG_NAME, "h3").text
    assert browser.find_element(By.ID, "status").text == "1 face found."
    # the canvas shows the photo at its size, with the box drawn in the label's colour
    canvas = browser.find_element(By.ID, "canvas")
    assert canvas.is_displayed()
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("512", "512")
    pixel = browser.execute_script(
        "const c = document.getElementById('canvas').getContext('2d');"
        "const r = arguments[0]; return Array.from(c.getImageData(r[0] + r[2] / 2, r[1] + r[3],"
        " 1, 1).data);",
        [174, 70, 105, 105],  # the default detector's (BlazeFace's) box on the astronaut
    )
    assert pixel[:3] == [240, 228, 66]  # happy's yellow on the box's bottom edge
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web_page.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000


def test_a_bad_file_shows_an_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    browser.get(server)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda _: "Could not analyse" in status.text)
    assert "not an image" in status.text and status.get_attribute("class") == "error"
