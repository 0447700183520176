"""Your digits in a real Chromium: a drawing read wrong, corrected beside its reading, kept
in the database and shown on the Train page."""
import re

import pytest
from playwright.sync_api import expect

from benchmarks.your_digits import STYLES
from tests.e2e.conftest import new_page
from tests.e2e.helpers import draw, not_cut, wait_hook, within

pytestmark = pytest.mark.e2e

BLANK = "No digit yet"


def test_a_correction_is_kept_and_shown_on_the_train_page(browser, fresh_server):
    from digitrec.server.samples import SampleStore

    page = new_page(browser, fresh_server.url, 1280, 800)
    try:
        page.goto("/")
        wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
        draw(page, page.locator("canvas.upper-canvas"), STYLES["flagged_1"][1])  # a 1 with a long flag
        text = wait_hook(page, "prediction", lambda t: re.match(r"\d\b", t) is not None and "confident" in t)
        read = int(text[0])
        page.locator(".st-key-was").get_by_role("radio", name="1", exact=True).click()
        expect(page.get_by_text("Saved as a 1")).to_be_visible()
        wait_hook(page, "prediction", lambda t: t.startswith(BLANK))  # a clean canvas for the next one
        (saved,) = SampleStore(fresh_server.models / "samples.sqlite3").samples()
        assert (saved.true_digit, saved.read_digit, saved.source) == (1, read, "draw")

        page.goto("/train")
        digits = page.locator(".st-key-your-digits")
        expect(digits).to_contain_text("1 of your digits", timeout=60_000)
        expect(digits.get_by_text(f"1, read {read}")).to_be_visible()
        delete = digits.get_by_role("button", name="Delete", exact=True)
        delete.scroll_into_view_if_needed()
        assert within(page, delete) and not_cut(delete)  # not "De…"
        delete.click()
        expect(digits).to_contain_text("None yet")
    finally:
        page.context.close()
