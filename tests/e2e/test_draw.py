"""Draw page in a real Chromium: digits drawn with mouse moves, anywhere, any size; the
page's own Undo and Clear; a number drawn, read as one; what a laptop's and a phone's
window show without scrolling sideways."""
import re

import pytest
from playwright.sync_api import expect

from benchmarks.browser import DIGITS, place
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import draw, not_cut, wait_hook, wait_idle, within

pytestmark = pytest.mark.e2e

BLANK = "No digit yet"


def first_digit(text: str) -> int | None:
    m = re.match(r"(\d)\b", text)
    return int(m.group(1)) if m else None


def side_by_side(*digits):
    """Digits drawn next to each other, as a person writes a number on the canvas."""
    n = len(digits)
    return [s for i, d in enumerate(digits) for s in place(DIGITS[d], i / n, 0.5 - 0.5 / n, 1 / n)]


def test_draw_digits(page):
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    canvas = page.locator("canvas.upper-canvas")
    clear = page.locator(".st-key-clear").get_by_role("button", name="Clear")
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
        assert not page.locator(".st-key-several").count()  # one digit: no word of a number
        clear.click()
        wait_hook(page, "prediction", lambda t: t.startswith(BLANK))


def test_undo_and_thick_pen(page):
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    page.locator(".st-key-canvas-tools").get_by_role("button", name="Pen").click()
    slider = page.get_by_role("slider", name="Pen width")
    slider.focus()
    slider.press("End")  # the thickest pen
    expect(slider).to_have_value("40")
    page.keyboard.press("Escape")
    wait_idle(page)
    canvas = page.locator("canvas.upper-canvas")
    draw(page, canvas, DIGITS[4][:1])
    # half a 4 may be read as a digit, as no digit found, or as no digit at all
    wait_hook(page, "prediction", lambda t: first_digit(t) is not None or t.startswith(("No digit", "Not a digit")))
    draw(page, canvas, DIGITS[4][1:])
    wait_hook(page, "prediction", lambda t: first_digit(t) == 4)
    undo = page.locator(".st-key-undo").get_by_role("button", name="Undo")
    undo.click()  # the drawing without its second stroke, read again
    wait_hook(page, "prediction", lambda t: first_digit(t) != 4)
    undo.click()
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    expect(undo).to_be_disabled()


def test_a_number_drawn_as_one_digit_is_said_to_be_a_number(page):
    """Drawing 12 reads as one digit; the page says that the drawing holds two, shows 12,
    and reads it as a number on request (the drawing stays)."""
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    draw(page, page.locator("canvas.upper-canvas"), side_by_side(1, 2))
    hint = wait_hook(page, "several", lambda t: "holds" in t)
    assert "holds 2 digits" in hint and "12" in hint, hint
    page.locator(".st-key-several").get_by_role("button", name="Read it as a number").click()
    text = wait_hook(page, "prediction", lambda t: t.startswith("12\n"))
    assert "2 digits" in text


def test_number_mode_reads_a_number(page):
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    page.locator(".st-key-draw-mode").get_by_role("radio", name="A number").click()
    wait_hook(page, "prediction", lambda t: t.startswith("No number yet"))
    draw(page, page.locator("canvas.upper-canvas"), side_by_side(7, 4, 2))
    text = wait_hook(page, "prediction", lambda t: t.startswith("742\n"))  # the last stroke read too
    assert "3 digits" in text, text
    page.locator(".st-key-confidences").first.wait_for()
    expect(page.locator(".st-key-correction-draw").get_by_label("No, it was:")).to_be_visible()


def test_everything_fits_a_laptop_window(laptop):
    """At 1280 px: the answer buttons (Right, 0 to 9) and the canvas's buttons lie inside
    the window, none cut short; the reading sits beside the canvas."""
    page = laptop
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    canvas = page.locator("canvas.upper-canvas")
    draw(page, canvas, DIGITS[3])
    wait_hook(page, "prediction", lambda t: first_digit(t) == 3 and "confident" in t)
    answers = page.locator(".st-key-correction button:visible")
    assert answers.count() == 11  # Right, and 0 to 9
    answers.last.scroll_into_view_if_needed()
    assert within(page, answers) and not_cut(answers)
    tools = page.locator(".st-key-canvas-tools button:visible")
    assert within(page, tools) and not_cut(tools)
    assert within(page, page.locator(".st-key-prediction h2"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "draw-1280.png"))


def test_the_reading_stays_in_sight_on_a_phone(phone):
    """At 390 px the columns stack: with the canvas in sight, the reading of the stroke
    just drawn is in sight too, and nothing needs scrolling sideways."""
    page = phone
    page.goto("/")
    wait_hook(page, "prediction", lambda t: t.startswith(BLANK))
    canvas = page.locator("canvas.upper-canvas")
    canvas.scroll_into_view_if_needed()
    draw(page, canvas, DIGITS[7])
    wait_hook(page, "prediction", lambda t: first_digit(t) == 7 and "confident" in t)
    assert within(page, canvas)
    assert within(page, page.locator(".st-key-prediction h2"))  # the digit read
    assert within(page, page.locator(".st-key-prediction").get_by_text("confident"))
    answers = page.locator(".st-key-correction button:visible")
    answers.last.scroll_into_view_if_needed()
    assert within(page, answers) and not_cut(answers)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "draw-390.png"))
