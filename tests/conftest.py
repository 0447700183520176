"""Shared fixtures and helpers: real MNIST from $DIGITREC_DATA, the shipped recognizer,
digit pictures and the files that encode them, a models directory of the test's own,
the stand-in training worker, and the app's pages under Streamlit's AppTest."""
from __future__ import annotations

import io
import os
import shutil
import struct
import sys
import time
import types
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from digitrec import store
from digitrec.training.synth import render_number

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
APP_TIMEOUT = 120  # seconds for one AppTest script run: 2 shared cores


def data_dir() -> Path | None:
    chosen = os.environ.get("DIGITREC_DATA") or (DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
    return Path(chosen) if chosen else None


@pytest.fixture(scope="session")
def mnist():
    from digitrec.training.datasets import load_mnist

    directory = data_dir()
    if directory is None:
        pytest.skip("MNIST not available: set DIGITREC_DATA")
    return load_mnist(directory)


@pytest.fixture(scope="session")
def recognizer():
    from digitrec.reading.digits import Recognizer

    return Recognizer.load()


# --- pictures and files -----------------------------------------------------------------------

def paper_digit(mnist_digit: np.ndarray, size: int = 200, canvas=(300, 400), ink: int = 30,
                paper: int = 235) -> np.ndarray:
    """An MNIST digit enlarged and drawn dark on light paper, off-centre on a bigger page."""
    big = cv2.resize(mnist_digit, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    page = np.full(canvas, paper, np.float32)
    y, x = (canvas[0] - size) // 3, (canvas[1] - size) // 4
    region = page[y: y + size, x: x + size]
    page[y: y + size, x: x + size] = region * (1 - big) + ink * big
    return page.clip(0, 255).astype(np.uint8)


def readable_digits(mnist, recognizer, wanted=range(10), confidence: float = 0.9) -> dict:
    """For each wanted label, the first MNIST test digit, on paper (:func:`paper_digit`),
    that the shipped model reads right with at least ``confidence``."""
    wanted, out = set(wanted), {}
    for i, label in enumerate(mnist.y_test):
        label = int(label)
        if label in wanted and label not in out:
            page = paper_digit(mnist.x_test[i])
            prediction = recognizer.predict(page)
            if prediction.digit == label and prediction.confidence >= confidence:
                out[label] = page
            if len(out) == len(wanted):
                return out
    raise AssertionError(f"no readable MNIST digit for {sorted(wanted - set(out))}")


UNSURE = (0, 6, 2, 7, 3, 8)  # the digits unsure_row draws over each other, two by two


def unsure_row(pages: dict) -> np.ndarray:
    """A 0 and a 6, a 2 and a 7, a 3 and an 8, each pair drawn over each other (``pages``:
    paper_digit pages of those digits, :data:`UNSURE`): a number no one can be sure of."""
    pairs = [np.minimum(pages[a], pages[b]) for a, b in zip(UNSURE[::2], UNSURE[1::2])]
    return np.concatenate([p[:, 60:300] for p in pairs], axis=1)


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    """A picture (PIL image or uint8 array) as the bytes of an image file."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header declares width x height pixels."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


SEVEN = 0  # mnist.x_test[0] is a 7


def bad_files(mnist) -> list[tuple[str, bytes, str | int]]:
    """Hostile and unusual uploads, as (file name, bytes, expected): expected is "error"
    (the file is refused with a message), "none" (read, but no digit: never a confident
    guess) or the digit read."""
    seven = paper_digit(mnist.x_test[SEVEN])  # 300x400, dark 7 on light paper
    pil = Image.fromarray(seven)
    png_full = encode(pil, "PNG")
    jpg_full = encode(pil.convert("RGB"), "JPEG", quality=90)
    palette = pil.convert("P", palette=Image.ADAPTIVE, colors=16)
    paper_index = int(np.asarray(palette)[2, 2])
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to display
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(seven, 1))).convert("RGB")
    frames = [pil, Image.new("L", pil.size, 235)]
    huge = Image.fromarray(paper_digit(mnist.x_test[SEVEN], size=2600, canvas=(4000, 4000)))
    noise = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
    return [
        ("empty.png", b"", "error"),
        ("random.png", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "error"),
        ("truncated.png", png_full[: len(png_full) // 2], "error"),
        ("truncated.jpg", jpg_full[: len(jpg_full) // 2], "error"),
        ("page.png", b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>", "error"),
        ("one-pixel.png", encode(Image.new("L", (1, 1), 0), "PNG"), "none"),
        ("bomb.png", png_declaring(50_000, 50_000), "error"),
        ("sixteen-bit.png", encode(Image.fromarray(seven.astype(np.uint16) * 257, "I;16"), "PNG"), 7),
        ("cmyk.jpg", encode(pil.convert("CMYK"), "JPEG", quality=95), 7),
        ("animated.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), 7),
        ("palette-transparent.png", encode(palette, "PNG", transparency=paper_index), 7),
        ("exif-rotated.jpg", encode(rotated, "JPEG", exif=exif, quality=95), 7),
        ("white.png", encode(Image.new("L", (300, 300), 255), "PNG"), "none"),
        ("black.png", encode(Image.new("L", (300, 300), 0), "PNG"), "none"),
        ("noise.png", encode(Image.fromarray(noise), "PNG"), "none"),
        ("huge-4000.jpg", encode(huge, "JPEG", quality=85), 7),
    ]


def check_answer(text: str, name: str, expected) -> None:
    """What the Upload page shows for one of :func:`bad_files`: "Cannot read NAME: why",
    no digit (or a reading marked "Not sure"), or the expected digit."""
    if expected == "error":
        assert text.startswith(f"Cannot read {name}: "), (name, text)
    elif expected == "none":
        assert text.startswith("No digit found") or "Not sure" in text, (name, text)
    else:
        assert text.startswith(f"{expected}\n"), (name, text)


# --- models -----------------------------------------------------------------------------------

@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A temporary models directory for the registry (and MNIST from data_dir())."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "models"))
    if data_dir() is not None:
        monkeypatch.setenv("DIGITREC_DATA", str(data_dir()))
    return tmp_path / "models"


def copy_shipped(directory: Path, name: str = "mine") -> Path:
    """The shipped digit model's three files copied to ``directory/NAME.*``; returns its .keras."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in store.SUFFIXES:
        shutil.copy(store.DIGIT_MODEL.with_suffix(suffix), directory / f"{name}{suffix}")
    return directory / f"{name}.keras"


@pytest.fixture
def fake_worker(monkeypatch):
    """Make digitrec.server.jobs start tests/fake_worker.py (same protocol, no TensorFlow) in the
    given mode: ``fake_worker("wait")``."""
    from digitrec.server import jobs

    def use(mode: str) -> None:
        monkeypatch.setattr(jobs, "WORKER", [sys.executable, str(ROOT / "tests" / "fake_worker.py"), mode])

    return use


def wait_for(condition, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until it holds; fail after ``timeout`` seconds."""
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


# --- the app under AppTest --------------------------------------------------------------------

def app_page(name: str):
    """The app (``streamlit_app.py``, its navigation and sidebar) under Streamlit's
    AppTest, opened on ``pages/NAME.py`` (not yet run), with no reading cached by an
    earlier test (the Upload page caches its readings by the files' bytes)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT)
    return at.switch_page(f"pages/{name}.py")


def texts(at, key: str) -> str:
    """All the text shown inside the container with ``key``, in order."""
    out = []

    def walk(n):
        value = getattr(n, "value", None)
        if isinstance(value, str) and type(n).__name__ in (
                "Header", "Markdown", "Caption", "Error", "Info", "Warning", "Subheader"):
            out.append(value)
        for child in getattr(n, "children", {}).values():
            walk(child)

    walk(at.get_by_key(key))
    return "\n".join(out).replace("**", "")


def canvas_module(image: np.ndarray | None) -> types.ModuleType:
    """A stand-in for streamlit_drawable_canvas (a browser component that AppTest cannot
    draw on): its canvas "returns" ``image`` (or nothing drawn) as the component does, a PNG."""

    def st_canvas(**kwargs):
        assert kwargs["return_image_data"] is True
        if image is None:
            return types.SimpleNamespace(json_data={"objects": []}, image_data=None)
        decoded = np.asarray(Image.open(io.BytesIO(encode(image))))
        return types.SimpleNamespace(json_data={"objects": [{"type": "path"}]}, image_data=decoded)

    module = types.ModuleType("streamlit_drawable_canvas")
    module.st_canvas = st_canvas
    return module


def fake_canvas(monkeypatch, image: np.ndarray | None) -> None:
    """The Draw page's canvas replaced by :func:`canvas_module` for this test."""
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", canvas_module(image))


def train_page(images: int = 300, epochs: int = 1, batch: int = 32):
    """The Train page run once, set to a short run of the fast preset (not started)."""
    at = app_page("train").run()
    assert not at.exception
    at.number_input(key="images").set_value(images)
    at.slider(key="epochs-fast").set_value(epochs)
    at.select_slider(key="batch-fast").set_value(batch)
    return at


# --- test digits and rows the reading tests share -------------------------------------------

_PICKS: dict[int, list[int]] = {}


def picks(mnist, recognizer) -> list[int]:
    """For each class 0-9, the first of MNIST's first 300 test digits that the model reads
    right: digits a rendering may make hard, but are not hard to begin with."""
    if id(recognizer) not in _PICKS:
        ok = recognizer.probabilities(mnist.x_test[:300] / 255.0).argmax(1) == mnist.y_test[:300]
        _PICKS[id(recognizer)] = [int(np.flatnonzero((mnist.y_test[:300] == d) & ok)[0]) for d in range(10)]
    return _PICKS[id(recognizer)]


def number_rows(mnist, count: int, seed: int) -> list[tuple[np.ndarray, str, list]]:
    """``count`` rows of 2 to 8 MNIST test digits in render_number's default conditions
    (some touching, some broken): (image, the digits as text, their ink boxes) each."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(count):
        idx = rng.choice(len(mnist.x_test), 2 + j % 7, replace=False)
        image, _, boxes = render_number([mnist.x_test[i] for i in idx], rng)
        rows.append((image, "".join(str(int(mnist.y_test[i])) for i in idx), boxes))
    return rows
