"""Upload page in a real Chromium: image files of every format, an unreadable file, a whole
number, a webcam snapshot through Chromium's fake camera; a number uploaded as one digit,
the examples, a number corrected, the readings downloaded, and a laptop's window."""
import csv
import io
import json
import re

import numpy as np
import pytest

from tests.conftest import UNSURE, encode, readable_digits, unsure_row
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import not_cut, wait_hook, within

pytestmark = pytest.mark.e2e

FORMATS = [("png", "PNG"), ("jpg", "JPEG"), ("bmp", "BMP"), ("gif", "GIF"), ("webp", "WEBP"),
           ("tiff", "TIFF")]


def first_token(text: str) -> str:
    m = re.match(r"(\d+)\b", text)
    return m.group(1) if m else ""


def answered(text: str) -> bool:
    """The hook shows a reading, says that there is no digit, or that the file is unreadable."""
    return bool(first_token(text)) or text.startswith(("No digit", "Cannot read"))


def test_upload_files_one_bad(page, mnist, recognizer):
    digits = readable_digits(mnist, recognizer, {2, 3, 5, 6, 8, 9})
    files, expected = [], []
    for (ext, fmt), digit in zip(FORMATS, sorted(digits)):
        files.append({"name": f"digit-{digit}.{ext}", "mimeType": f"image/{ext}",
                      "buffer": encode(digits[digit], fmt)})
        expected.append(str(digit))
    files.insert(2, {"name": "broken.png", "mimeType": "image/png",
                     "buffer": b"this is not a picture of a digit"})
    expected.insert(2, None)

    page.goto("/upload")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(files)
    for i, want in enumerate(expected):
        text = wait_hook(page, f"prediction-{i}", answered)
        if want is None:
            assert text.startswith("Cannot read broken.png: "), text
        else:
            assert first_token(text) == want, (i, text)
            page.locator(f".st-key-confidences-{i}").wait_for()
    page.set_viewport_size({"width": 1400, "height": 1900})  # three images and the error
    page.locator("[data-testid='stMain']").evaluate("e => e.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # let the charts finish drawing
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "upload.png"))


def test_a_number_uploaded_as_one_digit_is_said_to_be_one_and_can_be_read_as_a_number(laptop):
    """The cheque example, read as one digit: the page says that it holds four digits and
    what they read; one click reads it as a number; a typed correction is kept in the
    downloads (CSV and JSON), beside what was read."""
    page = laptop
    page.goto("/upload")
    page.locator(".st-key-examples").get_by_role("button", name="A cheque's amount").click()
    hint = wait_hook(page, "several-cheque", lambda t: "holds" in t)
    assert "holds 4 digits" in hint and "3.827" in hint, hint
    answers = page.locator(".st-key-correction-cheque button:visible")
    answers.last.scroll_into_view_if_needed()
    # Right and the ten digits; or, read as "not a digit", the ten digits alone
    assert answers.count() in (10, 11) and within(page, answers) and not_cut(answers)

    page.locator(".st-key-several-cheque").get_by_role("button", name="Read it as a number").click()
    text = wait_hook(page, "prediction-cheque", lambda t: bool(first_token(t)))
    assert text.startswith("3.827\n"), text
    typed = page.locator(".st-key-correction-cheque").get_by_label("No, it was:")
    typed.fill("3.829")
    typed.press("Enter")
    page.get_by_text("Saved 4 digits of 3.829").wait_for()

    downloads = page.locator(".st-key-downloads")
    downloads.scroll_into_view_if_needed()
    assert within(page, downloads.locator("button:visible")) and not_cut(downloads.locator("button:visible"))
    with page.expect_download() as got:
        downloads.get_by_role("button", name="Download the readings (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(open(got.value.path()).read())))
    assert [(r["file"], r["mode"], r["text"], r["correction"]) for r in rows] == [
        ("cheque.jpg", "numbers", "3.827", "3.829")]
    with page.expect_download() as got:
        downloads.get_by_role("button", name="Download the readings (JSON)").click()
    (record,) = json.loads(open(got.value.path()).read())
    assert record["text"] == "3.827" and record["correction"] == ["3.829"]
    assert [d["digit"] for d in record["numbers"][0]["digits"]] == [3, 8, 2, 7]


def test_the_examples_are_there_to_try(page):
    page.goto("/upload")
    examples = page.locator(".st-key-examples")
    for name in ("A digit, photographed", "A row of digits"):
        examples.get_by_role("button", name=name).click()
    assert first_token(wait_hook(page, "prediction-digit-photo", answered)) == "7"
    assert "14959" in wait_hook(page, "several-row", lambda t: "holds" in t)
    page.get_by_test_id("stRadioGroup").get_by_text("every number in it").click()
    assert first_token(wait_hook(page, "prediction-row", lambda t: first_token(t) == "14959")) == "14959"


def test_whole_number(page, mnist, recognizer, tmp_path):
    digits = readable_digits(mnist, recognizer, {1, 4, 7})
    row = np.concatenate([digits[d][:, 90:300] for d in (4, 1, 7)], axis=1)
    page.goto("/upload")
    page.get_by_test_id("stRadioGroup").get_by_text("every number in it").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        [{"name": "number.png", "mimeType": "image/png", "buffer": encode(row, "PNG")}])
    text = wait_hook(page, "prediction-0", lambda t: bool(first_token(t)))
    assert first_token(text) == "417", text
    assert "Unsure" not in text, text  # read with confidence
    page.locator(".st-key-confidences-0").wait_for()
    page.screenshot(path=str(tmp_path / "number.png"))


def test_an_unsure_number_is_marked(page, mnist, recognizer):
    """Three pairs of digits, each drawn over each other: the page shows its reading and
    says why it is unsure."""
    row = unsure_row(readable_digits(mnist, recognizer, UNSURE))
    assert recognizer.read_number(row).low_confidence
    page.goto("/upload")
    page.get_by_test_id("stRadioGroup").get_by_text("every number in it").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        [{"name": "unsure.png", "mimeType": "image/png", "buffer": encode(row, "PNG")}])
    text = wait_hook(page, "prediction-0", lambda t: "Unsure" in t)
    assert first_token(text).isdigit() and "Check it" in text, text


def test_webcam_snapshot(page):
    page.goto("/upload")
    page.get_by_text("Use the webcam").click()
    take = page.get_by_role("button", name=re.compile("take photo", re.I))
    take.wait_for()
    page.wait_for_function(  # the fake camera is delivering frames
        "() => { const v = document.querySelector('video');"
        " return v && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0.5; }")
    take.click()
    text = wait_hook(page, "prediction-camera", answered)
    assert first_token(text) == "7", text
