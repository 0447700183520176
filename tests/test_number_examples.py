"""The detector's rendered words: writing that is no number, laid where no number is."""
from __future__ import annotations

import numpy as np
import pytest

from digitrec.training import number_examples as ne


def _letters(n=10, seed=0):
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    for k in range(n):  # a bar of ink, a different width each
        w = int(rng.integers(3, 12))
        out[k, 4:24, 14 - w // 2: 14 + (w + 1) // 2] = 255
    return out


def test_a_handwritten_word_is_three_to_eight_letters_side_by_side():
    rng = np.random.default_rng(1)
    for _ in range(20):
        word = ne.word_ink(_letters(), rng)
        assert word.shape[0] == 28 and word.dtype == np.uint8
        inked = (word.max(axis=0) > 60).astype(int)
        pieces = int(inked[0] + (np.diff(inked) == 1).sum())  # runs of inked columns: the letters
        assert 3 <= pieces <= 8


def test_a_handwritten_date_is_its_day_a_space_then_its_word():
    rng = np.random.default_rng(2)
    day = _letters(2, seed=5)  # two "digits"
    word = ne.word_ink(_letters(), rng)
    date = ne.date_ink(list(day), word, rng)
    assert date.shape[0] == 28 and date.dtype == np.uint8
    assert np.array_equal(date[:, -word.shape[1]:], word)  # the word closes the date
    inked = date.max(axis=0) > 60
    runs = np.flatnonzero(np.diff(np.r_[0, inked.astype(int), 0]))  # starts and ends of inked runs
    gaps = runs[2::2] - runs[1:-1:2]  # the blank columns between runs
    assert gaps[1] >= 6 > gaps[0]  # between the day's digits a little, before the word a space


def test_a_font_date_says_a_day_and_a_month(monkeypatch):
    import cv2

    texts, put = [], cv2.putText
    monkeypatch.setattr(cv2, "putText", lambda img, text, *a, **k: texts.append(text) or put(img, text, *a, **k))
    rng = np.random.default_rng(0)
    for _ in range(60):
        ne.font_ink(rng)
    dates = [t for t in texts if t.split()[0].rstrip(".").isdigit()]
    assert 8 <= len(dates) <= 30  # about DATES of them
    assert all(1 <= int(t.split()[0].rstrip(".")) <= 31 and t.split()[1] in ne.MONTHS for t in dates)


@pytest.mark.parametrize("seed", range(5))
def test_a_font_word_has_ink(seed):
    word = ne.font_ink(np.random.default_rng(seed))
    assert word.ndim == 2 and (word > 128).sum() > 20


def test_words_are_laid_clear_of_the_numbers_and_add_no_box():
    rng = np.random.default_rng(2)
    page = np.full((200, 300), 230, np.uint8)
    page[80:120, 100:200] = 40  # a number's ink
    boxes = [(100, 80, 100, 40)]
    before = page.copy()
    for _ in range(5):
        ne._paste_ink(page, boxes, ne.font_ink(rng), 30, rng)
    assert boxes == [(100, 80, 100, 40)]
    assert (page[78:122, 98:202] == before[78:122, 98:202]).all()  # the number and a margin round it untouched
    assert (page < 200).sum() > (before < 200).sum()  # ink added elsewhere
    assert page.min() >= 0 and page[page < 230].max() <= 230  # only darker: ink on paper


def test_no_room_leaves_the_page_as_it_was():
    page = np.full((40, 60), 230, np.uint8)
    before = page.copy()
    ne._paste_ink(page, [(0, 0, 60, 40)], ne.font_ink(np.random.default_rng(3)), 20, np.random.default_rng(3))
    assert (page == before).all()
