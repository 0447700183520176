"""Shared fixtures: real MNIST from $DIGITREC_DATA, the shipped recognizer, digit images."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"


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


def paper_digit(mnist_digit: np.ndarray, size: int = 200, canvas=(300, 400), ink: int = 30,
                paper: int = 235) -> np.ndarray:
    """An MNIST digit enlarged and drawn dark on light paper, off-centre on a bigger page."""
    big = cv2.resize(mnist_digit, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    page = np.full(canvas, paper, np.float32)
    y, x = (canvas[0] - size) // 3, (canvas[1] - size) // 4
    region = page[y: y + size, x: x + size]
    page[y: y + size, x: x + size] = region * (1 - big) + ink * big
    return page.clip(0, 255).astype(np.uint8)


def unsure_row(pages: dict) -> np.ndarray:
    """A 7 and a 9 drawn over each other between a 4 and a 7 (``pages``: paper_digit pages
    of 4, 7 and 9): a number the reader should mark as unsure."""
    overlay = np.minimum(pages[7], pages[9])  # the ink of both
    return np.concatenate([pages[4][:, 60:300], overlay[:, 60:300], pages[7][:, 60:300]], axis=1)


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A temporary models directory for the registry (and MNIST from data_dir())."""
    from digitrec.server import registry

    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "models"))
    if data_dir() is not None:
        monkeypatch.setenv("DIGITREC_DATA", str(data_dir()))
    return tmp_path / "models"


@pytest.fixture
def fake_worker(monkeypatch):
    """Make digitrec.server.jobs start tests/fake_worker.py (same protocol, no TensorFlow) in the
    given mode: ``fake_worker("wait")``."""
    import sys

    from digitrec.server import jobs

    def use(mode: str) -> None:
        monkeypatch.setattr(jobs, "WORKER", [sys.executable, str(ROOT / "tests" / "fake_worker.py"), mode])

    return use
