"""A fresh server whose first visitor opens a page's URL still serves the app's navigation."""

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import start_app, stop_app

pytestmark = pytest.mark.e2e


@pytest.fixture()
def fresh_server(chromium, tmp_path):
    from tests.conftest import data_dir

    if data_dir() is None:
        pytest.skip("MNIST not available: set DIGITREC_DATA")
    log = open(tmp_path / "streamlit.log", "w+")
    proc, url = start_app(tmp_path / "models", data_dir(), log)
    yield url
    stop_app(proc, log)


def test_first_request_to_a_page_url_gets_the_app_navigation(browser, fresh_server):
    """Streamlit's older multipage mode would run pages/train.py alone: no Draw / Upload /
    Train navigation, a "streamlit app" entry, no sidebar text."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=fresh_server)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto("/train")
        expect(page.get_by_role("heading", name="Train a model")).to_be_visible(timeout=60_000)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Active model:")).to_be_visible(timeout=60_000)
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="Upload")).to_be_visible(timeout=60_000)
        expect(nav.get_by_role("link", name="streamlit app")).to_have_count(0)
        nav.get_by_role("link", name="Draw").click()
        expect(page.get_by_role("heading", name="Draw a digit")).to_be_visible(timeout=60_000)
    finally:
        context.close()
