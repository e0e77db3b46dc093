"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through
the system chromedriver (nothing is downloaded), against a real `ferkit serve` process on
a free loopback port, with a fake webcam playing a clip of the bundled astronaut. The
screenshots are kept in artifacts/web_page.png and artifacts/live.png."""

from __future__ import annotations

import time

import pytest

from ferkit.core.decoding import NOT_AN_IMAGE
from tests.chromium import CHROMEDRIVER, CHROMIUM, ROOT, chrome, ferkit_serve, write_y4m
from tests.vision.test_recognize import FACE_BOX  # the default detector's box on the astronaut

ARTIFACTS = ROOT / "artifacts"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them with apt)",
)


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("uvicorn", reason="serving needs ferkit[serve]")
    with ferkit_serve() as server:
        yield server.url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m")
    driver = chrome(fake_camera=camera)
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
        list(FACE_BOX),
    )
    assert pixel[:3] == [240, 228, 66]  # happy's yellow on the box's bottom edge
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web_page.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000


def test_live_mode_tracks_the_face_and_draws_the_timeline(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    browser.find_element(By.ID, "live-start").click()
    status = browser.find_element(By.ID, "live-status")
    WebDriverWait(browser, 30).until(lambda _: status.text == "Live.")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return ferkitLive.drawn") > 0)
    first = browser.execute_script("return ferkitLive.drawn")
    time.sleep(5)
    live = browser.execute_script("return ferkitLive")
    assert live["drawn"] - first >= 10, f"{live['drawn'] - first} frames answered in 5 s"
    assert status.text == "Live." and status.get_attribute("class") == ""
    # the box: the overlay has opaque pixels in happy's yellow around the face
    drawn = browser.execute_script(
        "const c = document.getElementById('live-overlay');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4)"
        " if (d[i] === 240 && d[i + 1] === 228 && d[i + 2] === 66 && d[i + 3] === 255) n++;"
        "return [c.width, c.height, n];"
    )
    assert drawn[:2] == [640, 480] and drawn[2] > 500, drawn
    # the timeline: one strip for the one face, with lines drawn on it
    strip = browser.execute_script(
        "const c = document.getElementById('live-timeline');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "const colours = new Set();"
        "for (let i = 0; i < d.length; i += 4) colours.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);"
        "return [c.height, colours.size];"
    )
    assert strip[0] == 90 and strip[1] > 7, strip
    stats = browser.find_element(By.ID, "live-stats").text
    assert "frames/s" in stats and "round trip" in stats
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "live.png"))
    browser.find_element(By.ID, "live-stop").click()
    WebDriverWait(browser, 10).until(lambda _: status.text == "Stream closed (1000: stopped).")


def test_a_video_upload_plays_its_annotated_video(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.serve.test_jobs import clip

    video = tmp_path / "clip.mp4"
    clip(video)
    browser.get(server)
    browser.find_element(By.ID, "clip-file").send_keys(str(video))
    status = browser.find_element(By.ID, "clip-status")
    WebDriverWait(browser, 60).until(lambda _: "frames/s" in status.text or "Could" in status.text)
    assert status.text.startswith("clip.mp4: 20 frames, 1 face tracked"), status.text
    # Chromium decodes the WebM: its length is the clip's 2 s, its frames 320x240
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.getElementById('clip-video').readyState") >= 1
    )
    size = browser.execute_script(
        "const v = document.getElementById('clip-video');"
        "return [v.videoWidth, v.videoHeight, v.duration];"
    )
    assert size[:2] == [320, 240] and abs(size[2] - 2.0) < 0.2, size
    WebDriverWait(browser, 30).until(
        lambda d: (
            d.execute_script("return document.getElementById('clip-timeline').naturalWidth") > 0
        )
    )
    csv_link = browser.find_element(By.ID, "clip-csv").get_attribute("href")
    assert csv_link.endswith("/frames.csv")
    video_link = browser.find_element(By.ID, "clip-download").get_attribute("href")
    assert video_link.endswith("/annotated.webm")
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "video_job.png"))


@pytest.mark.parametrize(
    ("field", "status_id", "name", "reason"),
    [
        ("file", "status", "notes.jpg", f"notes.jpg: {NOT_AN_IMAGE}"),
        ("clip-file", "clip-status", "notes.mp4", "notes.mp4: not a readable video"),
    ],
)
def test_a_bad_file_shows_an_error(server, browser, tmp_path, field, status_id, name, reason):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / name
    bad.write_text("not a photo or a video")
    browser.get(server)
    browser.find_element(By.ID, field).send_keys(str(bad))
    status = browser.find_element(By.ID, status_id)
    WebDriverWait(browser, 30).until(lambda _: "Could not analyse" in status.text)
    assert status.text == f"Could not analyse {name}: {reason}"
    assert status.get_attribute("class") == "error"


def test_live_pause_outlasting_the_idle_limit_shows_the_close_and_resumes(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with ferkit_serve("--idle-s", "1", "--model", "fast") as server:
        browser.get(server.url)
        browser.find_element(By.ID, "live-start").click()
        status = browser.find_element(By.ID, "live-status")
        WebDriverWait(browser, 30).until(lambda _: status.text == "Live.")
        browser.find_element(By.ID, "live-pause").click()
        assert status.text == "Paused."
        WebDriverWait(browser, 10).until(lambda _: status.text.startswith("Stream closed"))
        assert status.text == "Stream closed (4408: idle: no frame for 1 s)."
        assert status.get_attribute("class") == "error"
        before = browser.execute_script("return ferkitLive.drawn")
        browser.find_element(By.ID, "live-pause").click()  # Resume: a new stream
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return ferkitLive.drawn") > before + 3
        )
        assert status.text == "Live."
        browser.find_element(By.ID, "live-stop").click()
