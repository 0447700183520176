"""The README's screenshots of the app, made again: the app started with a models directory
of its own, driven in the system's Chromium (Playwright) at WIDTH x HEIGHT pixels.

    python docs/screenshots/make.py [--out docs/screenshots] [--width 1280] [--height 800]

* draw.png           Draw, a 3 drawn and read, the answer buttons beside it
* upload.png         Upload, one-digit mode, the cheque example: read as one digit, and
                     the note that it holds a number
* upload-number.png  the same cheque read as a number
* train.png          Train, a short run of the fast preset with its live curves

PNGs are stored with an adaptive palette of 256 colours (a few tens of KB each).
Needs MNIST in $DIGITREC_DATA (default ../shared/data/mnist) and Chromium (`make chromium`).
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.browser import CHROMIUM_ARGS, DIGITS, chromium_path, start_app, stop_app  # noqa: E402
from tests.e2e.helpers import draw  # noqa: E402

TIMEOUT_MS = 120_000


def wait_text(page, key: str, pattern: str, timeout_ms: int = TIMEOUT_MS) -> str:
    """The text of the container with ``key`` once it matches ``pattern`` twice in a row."""
    deadline, last = time.time() + timeout_ms / 1000, None
    while time.time() < deadline:
        loc = page.locator(f".st-key-{key}")
        text = loc.first.inner_text() if loc.count() else ""
        if re.search(pattern, text, re.S) and text == last:
            return text
        last = text
        page.wait_for_timeout(250)
    raise RuntimeError(f"{key} never showed {pattern!r} (last: {last!r})")


def save(page, path: Path, whole: bool = False, most: int = 2000) -> None:
    """A screenshot of the viewport, or (``whole``) of the whole page up to ``most`` pixels
    tall: Streamlit scrolls its main area, not the document, so the viewport grows."""
    size = page.viewport_size
    if whole:
        height = page.locator("[data-testid='stMain']").evaluate("e => e.scrollHeight")
        page.set_viewport_size({"width": size["width"], "height": min(most, max(size["height"], height))})
    page.wait_for_timeout(800)  # the charts' last frame
    picture = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    page.set_viewport_size(size)
    picture.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}: {picture.size[0]}x{picture.size[1]}, {path.stat().st_size // 1024} KB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chromium = chromium_path()
    if chromium is None:
        print("Chromium is not installed (make chromium)", file=sys.stderr)
        return 1
    data = os.environ.get("DIGITREC_DATA", str(ROOT.parent / "shared" / "data" / "mnist"))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as models, open(Path(models) / "streamlit.log", "w+") as log:
        proc, url = start_app(Path(models) / "models", data, log)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": args.width, "height": args.height}, base_url=url)
                page.set_default_timeout(TIMEOUT_MS)

                page.goto("/")
                wait_text(page, "prediction", "No digit yet")
                draw(page, page.locator("canvas.upper-canvas"), DIGITS[3])
                wait_text(page, "prediction", r"^3\s.*confident")
                page.locator(".st-key-confidences").first.wait_for()
                save(page, out / "draw.png")

                page.goto("/upload")
                page.get_by_role("button", name="A cheque's amount").click()
                wait_text(page, "several-cheque", "holds")
                page.locator(".st-key-confidences-cheque").first.wait_for()
                save(page, out / "upload.png", whole=True)
                page.locator(".st-key-several-cheque button").click()
                wait_text(page, "prediction-cheque", r"^3\.827")
                page.locator(".st-key-confidences-cheque").first.wait_for()
                save(page, out / "upload-number.png", whole=True)

                page.goto("/train")
                images = page.get_by_label("Training images", exact=True)
                images.fill("6000")
                images.press("Enter")
                page.wait_for_timeout(1000)
                page.get_by_role("button", name="Start training").click()
                wait_text(page, "training", r"Epoch 1 of 1 · batch [1-9]")
                page.wait_for_function("document.querySelectorAll("
                                       "'.st-key-training [data-testid=\"stVegaLiteChart\"]').length == 2")
                page.wait_for_timeout(4000)  # a few points on the curves
                save(page, out / "train.png", whole=True)
                if page.locator(".st-key-stop button").count():  # a quick machine may have finished
                    page.locator(".st-key-stop button").first.click()
                wait_text(page, "result", "New model: test accuracy|Stopped before")
                browser.close()
        finally:
            stop_app(proc, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
