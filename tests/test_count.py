"""digitrec.reading.count: whether a picture given as one digit holds a number, with the
shipped networks; and ink.gray on a thick pen's strokes, which that check depends on."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from benchmarks.browser import DIGITS, place, render_strokes
from digitrec.reading import ink
from digitrec.reading.decode import load_image
from tests.conftest import data_dir, readable_digits


def drawn(digits, width: int = 18, size: int = 320) -> np.ndarray:
    """``digits`` drawn side by side on a white canvas with a pen ``width`` wide, as the
    Draw page's canvas returns them (RGBA)."""
    strokes = []
    for i, d in enumerate(digits):
        strokes += place(DIGITS[d], i / len(digits), 0.5 - 0.5 / len(digits), 1 / len(digits))
    gray = render_strokes(strokes, size, width)
    return np.dstack([gray] * 3 + [np.full(gray.shape, 255, np.uint8)])


def test_single_digits_are_never_taken_for_a_number(mnist, recognizer):
    pages = readable_digits(mnist, recognizer)
    counts = {d: recognizer.count_digits(page) for d, page in pages.items()}
    assert not [d for d, c in counts.items() if c.several], {d: c.to_dict() for d, c in counts.items()}
    assert all(c.digits in (0, 1) for c in counts.values())


@pytest.mark.parametrize("digit", [0, 2, 3, 4, 7])
def test_a_digit_drawn_with_a_thick_pen_is_one_digit(recognizer, digit):
    assert not recognizer.count_digits(drawn([digit])).several


def test_a_row_of_digits_holds_three(mnist, recognizer):
    pages = readable_digits(mnist, recognizer, {1, 4, 7})
    row = np.concatenate([pages[d][:, 90:300] for d in (4, 1, 7)], axis=1)
    count = recognizer.count_digits(row)
    assert (count.several, count.digits, count.number.text) == (True, 3, "417"), count.to_dict()
    assert count.to_dict() == {"digits": 3, "several": True, "number": "417",
                               "confidence": round(count.number.confidence, 4)}


@pytest.mark.parametrize("digits", [(1, 2), (7, 4), (4, 2, 7), (2, 0, 7, 1)])
def test_a_number_drawn_with_a_thick_pen_is_a_number(recognizer, digits):
    """The Draw page's pen (18 px on a 320 px canvas) makes strokes wider than the disc
    that first judges the polarity; read whole, the drawing is still the number drawn."""
    count = recognizer.count_digits(drawn(digits))
    assert count.several and count.number.text == "".join(map(str, digits)), count.to_dict()


def test_cheque_amounts_hold_numbers(recognizer):
    folder = data_dir().parent / "orand-train" if data_dir() else None
    if folder is None or not (folder / "labels.csv").is_file():
        pytest.skip("orand-train not available beside MNIST")
    with open(folder / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if len(r["text"]) >= 2][:20]
    several = [recognizer.count_digits(load_image(folder / r["file"])).several for r in rows]
    assert sum(several) >= 17, several


def test_a_blank_picture_holds_no_digit(recognizer):
    count = recognizer.count_digits(np.full((200, 300), 240, np.uint8))
    assert (count.digits, count.several, count.number.text) == (0, False, "")


@pytest.mark.parametrize("width", [6, 12, 18])
def test_ink_stays_dark_whatever_the_pen(width):
    """A thick pen leaves nothing thinner than the first disc: the polarity is judged by
    a wider one, and the white canvas stays the paper."""
    picture = drawn([4, 2, 7], width)
    g = ink.gray(picture)
    assert g[0, 0] > 0.9 and g[picture[..., 0] < 64].mean() < 0.2


def test_light_strokes_on_a_dark_board_are_turned_over():
    board = 255 - render_strokes(DIGITS[7] + place(DIGITS[1], 0.5, 0.2, 0.5), 320, 8)
    g = ink.gray(board)
    assert g[0, 0] > 0.9  # the board is the paper: the chalk is the ink, dark after turning over
