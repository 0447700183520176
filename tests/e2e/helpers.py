"""Helpers for the browser tests: wait for the app, draw strokes, write a fake webcam video."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(models: str | os.PathLike, data: str | os.PathLike, log, timeout: float = 120):
    """``streamlit run streamlit_app.py`` on a free loopback port with its own models
    directory; returns (process, url) once the server answers its health check.
    Raises RuntimeError with the end of the server's log if it does not start."""
    port = free_port()
    env = dict(os.environ, DIGITREC_MODELS_DIR=str(models), DIGITREC_DATA=str(data),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.seek(0)
            proc.kill()
            raise RuntimeError(f"streamlit did not start:\n{log.read()[-3000:]}")
        time.sleep(0.3)


def stop_app(proc, log) -> None:
    """Stop a server from :func:`start_app` (killed if it does not stop in 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def wait_idle(page, timeout_ms: int = 60_000, quiet_ms: int = 800) -> None:
    """Wait until the app's script has finished running: its "Running..." status widget
    has stayed away for ``quiet_ms`` (a rerun may take a moment to show it)."""
    import time

    deadline = time.time() + timeout_ms / 1000
    quiet_since = time.time()
    while time.time() < deadline:
        if page.locator("[data-testid='stStatusWidget']").count():
            quiet_since = time.time()
        elif (time.time() - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)
    raise AssertionError("the app never finished running")


def hook_text(page, key: str) -> str:
    return page.locator(f".st-key-{key}").first.inner_text().strip()


def wait_hook(page, key: str, predicate, timeout_ms: int = 60_000) -> str:
    """Poll the text of the container with ``key`` until ``predicate(text)`` holds on
    two polls in a row with the same text. Streamlit renders a rerun's elements one by
    one, so a single poll can catch a half-drawn result (the digit without its line of
    confidence)."""
    import time

    deadline = time.time() + timeout_ms / 1000
    text, last = "", None
    while time.time() < deadline:
        loc = page.locator(f".st-key-{key}")
        if loc.count():
            try:
                text = loc.first.inner_text(timeout=1000).strip()
            except Exception:
                text = ""
            if predicate(text) and text == last:
                return text
            last = text
        page.wait_for_timeout(200)
    raise AssertionError(f"container {key!r} never matched; last text {text!r}")


def draw(page, canvas, strokes, size: float) -> None:
    """Draw polylines given in [0, 1] canvas units with real mouse moves."""
    box = canvas.bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=8)
        page.mouse.up()


def write_y4m(path: Path, gray: np.ndarray, frames: int = 10) -> Path:
    """A short 4:2:0 YUV4MPEG2 video showing a grayscale image (Chromium loops it)."""
    h, w = gray.shape
    h, w = h - h % 2, w - w % 2
    y = np.ascontiguousarray(gray[:h, :w], np.uint8)
    uv = np.full((h // 2, w // 2), 128, np.uint8)
    frame = b"FRAME\n" + y.tobytes() + uv.tobytes() + uv.tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(frame)
    return path


def render_strokes(strokes, size: int = 320, width: int = 18) -> np.ndarray:
    """The same strokes as :func:`draw`, rendered offline (to check them without a browser)."""
    img = np.full((size, size), 255, np.uint8)
    for stroke in strokes:
        pts = np.array([(x * size, y * size) for x, y in stroke], np.int32)
        cv2.polylines(img, [pts], False, 0, width, cv2.LINE_AA)
    return img
