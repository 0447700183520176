"""Driving the app in a browser, shared by the load benchmark and the end-to-end tests.

* :data:`CHROMIUM_ARGS` and :func:`chromium_path`: how headless Chromium is found and started;
* :func:`start_app` / :func:`stop_app`: ``streamlit run streamlit_app.py`` on a free loopback
  port with its own models directory, and its end;
* :data:`DIGITS`, :func:`place`, :func:`render_strokes`: digits as mouse strokes in [0, 1]
  canvas units (polylines a person might draw), moved about, or rendered offline to a picture.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# No sandbox: the tests run as root in containers; the rest keeps Chromium off the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    """The Chromium to drive: $CHROMIUM, else the first one installed; None if there is none."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


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
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
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


def _ellipse(cx, cy, rx, ry, n=24):
    return [(cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
            for i in range(n + 1)]


def place(strokes, x0, y0, scale):
    """Shrink a digit drawn in the unit square and move it elsewhere on the canvas."""
    return [[(x0 + x * scale, y0 + y * scale) for x, y in s] for s in strokes]


DIGITS = {
    0: [_ellipse(0.5, 0.5, 0.2, 0.32)],
    1: [[(0.42, 0.27), (0.53, 0.15), (0.53, 0.85)]],
    2: [[(0.3, 0.3), (0.4, 0.18), (0.55, 0.16), (0.68, 0.25), (0.68, 0.38), (0.3, 0.82),
         (0.72, 0.82)]],
    3: [[(0.3, 0.2), (0.6, 0.18), (0.68, 0.3), (0.55, 0.46), (0.42, 0.49), (0.58, 0.52),
         (0.7, 0.65), (0.62, 0.8), (0.3, 0.82)]],
    4: [[(0.52, 0.15), (0.25, 0.6), (0.75, 0.6)], [(0.6, 0.35), (0.6, 0.88)]],
    7: [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]],
}


def render_strokes(strokes, size: int = 320, width: int = 18) -> np.ndarray:
    """Strokes as a browser would draw them on a white canvas of ``size`` pixels, offline."""
    img = np.full((size, size), 255, np.uint8)
    for stroke in strokes:
        pts = np.array([(x * size, y * size) for x, y in stroke], np.int32)
        cv2.polylines(img, [pts], False, 0, width, cv2.LINE_AA)
    return img
