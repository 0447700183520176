"""Helpers for the browser tests: wait for the app, draw strokes, write a fake webcam video.
Starting the app and the digits as strokes live in :mod:`benchmarks.browser`, shared with
the load benchmark."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def wait_idle(page, timeout_ms: int = 60_000, quiet_ms: int = 800) -> None:
    """Wait until the app's script has finished running: its "Running..." status widget
    has stayed away for ``quiet_ms`` (a rerun may take a moment to show it)."""
    deadline = time.time() + timeout_ms / 1000
    quiet_since = time.time()
    while time.time() < deadline:
        if page.locator("[data-testid='stStatusWidget']").count():
            quiet_since = time.time()
        elif (time.time() - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)
    raise AssertionError("the app never finished running")


def wait_hook(page, key: str, predicate, timeout_ms: int = 60_000) -> str:
    """Poll the text of the container with ``key`` until ``predicate(text)`` holds on
    two polls in a row with the same text. Streamlit renders a rerun's elements one by
    one, so a single poll can catch a half-drawn result (the digit without its line of
    confidence)."""
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


def draw(page, canvas, strokes) -> None:
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



def within(page, locator) -> bool:
    """True when every element ``locator`` matches lies wholly inside the page's window
    (nothing cut at its right edge, nothing to scroll sideways for), and is visible."""
    size = page.viewport_size
    boxes = [locator.nth(i).bounding_box() for i in range(locator.count())]
    return bool(boxes) and all(b is not None and b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= size["width"]
                               and b["y"] + b["height"] <= size["height"] for b in boxes)


def not_cut(locator) -> bool:
    """True when no element ``locator`` matches shows its text cut short (an ellipsis: the
    text is wider than the element)."""
    return all(locator.nth(i).evaluate("e => [e, ...e.querySelectorAll('*')].every("
                                       "n => n.scrollWidth <= n.clientWidth + 1)")
               for i in range(locator.count()))
