"""End-to-end fixtures: one `streamlit run` server (temporary models directory) and one
headless Chromium for the whole e2e session, driven with Playwright.

Skipped, with the reason, only when no Chromium is installed (`make chromium`)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.helpers import start_app, stop_app

ROOT = Path(__file__).resolve().parents[2]
# Screenshots of the three pages go to artifacts/screenshots (git-ignored); to refresh the
# README's, run: DIGITREC_SCREENSHOTS=docs/screenshots pytest -m e2e
SCREENSHOTS = ROOT / os.environ.get("DIGITREC_SCREENSHOTS", "artifacts/screenshots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000  # generous: 2 shared cores, TensorFlow in the same process


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium():
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (run `make chromium`): browser tests skipped")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: browser tests skipped")
    return path


@pytest.fixture(scope="session")
def server(chromium, tmp_path_factory):
    """The app under `streamlit run` on a free port, with its own models directory."""
    from tests.conftest import data_dir

    if data_dir() is None:
        pytest.skip("MNIST not available: set DIGITREC_DATA")
    models = tmp_path_factory.mktemp("models")
    log = open(tmp_path_factory.mktemp("server") / "streamlit.log", "w+")
    try:
        proc, url = start_app(models, data_dir(), log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield type("Server", (), {"url": url, "models": models, "log": log})
    stop_app(proc, log)


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory, mnist):
    """A y4m video of a handwritten 7 on paper, for Chromium's fake webcam."""
    from tests.conftest import paper_digit
    from tests.e2e.helpers import write_y4m

    index = int(next(i for i, y in enumerate(mnist.y_test) if y == 7))
    page = paper_digit(mnist.x_test[index], size=300, canvas=(480, 640))
    path = tmp_path_factory.mktemp("camera") / "seven.y4m"
    write_y4m(path, page)
    return path


@pytest.fixture(scope="session")
def browser(chromium, fake_camera):
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-video-capture={fake_camera}"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=args, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  permissions=["camera"], base_url=server.url)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    yield pg
    context.close()
