"""End-to-end fixtures: one `streamlit run` server (temporary models directory) and one
headless Chromium for the whole e2e session, driven with Playwright; a fresh server for
the tests that need one to themselves.

Skipped, with the reason, only when no Chromium is installed (`make chromium`)."""
from __future__ import annotations

import os

import pytest

from benchmarks.browser import CHROMIUM_ARGS, chromium_path, start_app, stop_app
from tests.conftest import ROOT, data_dir, paper_digit

# Screenshots the tests take go to artifacts/screenshots (git-ignored), to look at after a
# run; the README's are made by docs/screenshots/make.py.
SCREENSHOTS = ROOT / os.environ.get("DIGITREC_SCREENSHOTS", "artifacts/screenshots")
TIMEOUT_MS = 60_000  # generous: 2 shared cores, a training beside the server in some tests


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


def app_server(models, log_dir):
    """The app under `streamlit run` on a free port with its own models directory, until
    the generator is closed: an object with url, models, log and proc."""
    if data_dir() is None:
        pytest.skip("MNIST not available: set DIGITREC_DATA")
    log = open(log_dir / "streamlit.log", "w+")
    try:
        proc, url = start_app(models, data_dir(), log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield type("Server", (), {"url": url, "models": models, "log": log, "proc": proc})
    finally:
        stop_app(proc, log)


@pytest.fixture(scope="session")
def server(chromium, tmp_path_factory):
    """The app shared by the e2e session."""
    yield from app_server(tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("server"))


@pytest.fixture()
def fresh_server(chromium, tmp_path):
    """An app server of this test's own, that no browser has visited yet."""
    yield from app_server(tmp_path / "models", tmp_path)


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory, mnist):
    """A y4m video of a handwritten 7 on paper, for Chromium's fake webcam."""
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


def new_page(browser, url: str, width: int = 1400, height: int = 1000):
    """A page in a browser context of its own (a new session) on the app at ``url``, in a
    window of ``width`` x ``height`` pixels."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  permissions=["camera"], base_url=url, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    return pg


@pytest.fixture()
def page(browser, server):
    pg = new_page(browser, server.url)
    yield pg
    pg.context.close()


@pytest.fixture()
def laptop(browser, server):
    """A page in a laptop's window, 1280 x 800 pixels: what must fit without scrolling sideways."""
    pg = new_page(browser, server.url, 1280, 800)
    yield pg
    pg.context.close()


@pytest.fixture()
def phone(browser, server):
    """A page in a phone's window, 390 x 844 pixels."""
    pg = new_page(browser, server.url, 390, 844)
    yield pg
    pg.context.close()
