"""Draw page in a real Chromium: digits drawn with mouse moves, anywhere, any size."""
import re

import pytest
from playwright.sync_api import expect

from benchmarks.browser import DIGITS, place
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import draw, wait_hook, wait_idle

pytestmark = pytest.mark.e2e

BLANK = "No digit yet"


def first_digit(text: str) -> int | None:
    m = re.match(r"(\d)\b", text)
    return int(m.group(1)) if m else None


def test_draw_digits(page):
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    canvas = page.locator("canvas.upper-canvas")
    reset = page.get_by_role("button", name="Reset canvas & history")
    cases = [
        (7, DIGITS[7]),                           # big, centred
        (0, place(DIGITS[0], 0.0, 0.0, 0.45)),    # small, top-left corner
        (1, place(DIGITS[1], 0.5, 0.5, 0.5)),     # small, bottom-right corner
        (2, DIGITS[2]),
        (4, place(DIGITS[4], 0.1, 0.3, 0.7)),     # two strokes
        (3, DIGITS[3]),
    ]
    for expected, strokes in cases:
        draw(page, canvas, strokes)
        wait_hook(page, "prediction",
                  lambda t, e=expected: first_digit(t) == e and "confident" in t)
        page.locator(".st-key-confidences").first.wait_for()
        if expected == 3:
            page.wait_for_timeout(500)  # let the chart finish drawing
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "draw.png"))
        reset.click()
        wait_hook(page, "prediction", lambda t: t.startswith(BLANK))


def test_undo_and_thick_pen(page):
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("End")  # the thickest pen
    expect(slider).to_have_value("40")
    wait_idle(page)
    canvas = page.locator("canvas.upper-canvas")
    draw(page, canvas, DIGITS[4][:1])
    wait_hook(page, "prediction", lambda t: first_digit(t) is not None or "No digit found" in t)
    draw(page, canvas, DIGITS[4][1:])
    wait_hook(page, "prediction", lambda t: first_digit(t) == 4)
    page.get_by_role("button", name="Undo").click()
    page.get_by_role("button", name="Undo").click()
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
