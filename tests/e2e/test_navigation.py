"""A fresh server whose first visitor opens a page's URL still serves the app's navigation."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import new_page

pytestmark = pytest.mark.e2e


def test_first_request_to_a_page_url_gets_the_app_navigation(browser, fresh_server):
    """Streamlit's older multipage mode would run pages/train.py alone: no Draw / Upload /
    Train navigation, a "streamlit app" entry, no sidebar text."""
    page = new_page(browser, fresh_server.url)
    try:
        page.goto("/train")
        expect(page.get_by_role("heading", name="Train a model")).to_be_visible(timeout=60_000)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Active model:")).to_be_visible(timeout=60_000)
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="Upload")).to_be_visible(timeout=60_000)
        expect(nav.get_by_role("link", name="streamlit app")).to_have_count(0)
        nav.get_by_role("link", name="Draw").click()
        expect(page.get_by_role("heading", name="Draw", exact=True)).to_be_visible(timeout=60_000)
    finally:
        page.context.close()
