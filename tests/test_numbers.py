"""digitrec.reading.numbers: a row of handwritten digits read as a number. Rows rendered
from MNIST *test* digits read through the shipped networks (digit model, verifier, row
reader), the over-segmentation, the search over groupings, the row reader's CTC decoding,
and when a number is marked unsure."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.reading.digits import Recognizer
from digitrec.reading.normalize import NoDigit, Normalized
from digitrec.reading.numbers import (
    BLANK,
    FRAMES,
    ROW_HEIGHT,
    ROW_MARGIN,
    ROW_WIDTH,
    Candidate,
    best_path,
    candidate_features,
    greedy_text,
    log_likelihood,
    number_candidates,
    row_strip,
)
from digitrec.reading.results import LOW_CONFIDENCE, ROW_LOW_CONFIDENCE, Number, Prediction
from digitrec.training import synth
from digitrec.training.number_data import whole_label
from tests.conftest import number_rows, picks


def _read(mnist, recognizer, digits, seed, **kw) -> str:
    """A scanned row of the picked test digits ``digits``, as the recognizer reads it."""
    idx = picks(mnist, recognizer)
    image, _, _ = synth.render_number([mnist.x_test[idx[d]] for d in digits], np.random.default_rng([9, seed]),
                                      condition="scan", **kw)
    return recognizer.read_number(image).text


# --- the row's ink, cut into candidate digits --------------------------------------------------

def test_separate_digits_are_separate_groups_left_to_right(mnist):
    image, _, boxes = synth.render_number([mnist.x_test[i] for i in (0, 1, 2, 3)], np.random.default_rng(3),
                                          condition="scan", touching=0, broken=0)
    candidates, pieces, height, _ = number_candidates(image)
    assert len({group for group, _, _ in pieces}) == 4
    assert [p[1] for p in pieces] == sorted(p[1] for p in pieces)
    assert abs(height - np.median([h for _, _, _, h in boxes])) < 0.25 * height


def test_row_strip_holds_the_row_left_aligned_and_refuses_blank_paper(mnist):
    image, _, _ = number_rows(mnist, 1, seed=21)[0]
    strip = row_strip(image)
    assert strip.shape == (ROW_HEIGHT, ROW_WIDTH) and strip.dtype == np.uint8
    rows, cols = np.nonzero(strip > 127)
    assert cols.min() <= ROW_MARGIN + 1  # starts at the left margin
    assert rows.max() - rows.min() >= ROW_HEIGHT - 2 * ROW_MARGIN - 3  # fills the height
    with pytest.raises(NoDigit):
        row_strip(np.full((80, 300), 245, np.uint8))


# --- the search over groupings ------------------------------------------------------------------

def _candidate(first, last, height=1.0, cut=0.0):
    return Candidate(first, last, Normalized(np.zeros((28, 28), np.float32), (0, 0, 1, 1)),
                     width=0.6, height=height, groups=1, gap=0.0, cut_left=cut, cut_right=cut)


def test_best_path_prefers_the_surest_grouping():
    sure, unsure = np.eye(10)[3] * 0.98 + 0.002, np.full(10, 0.1)
    cands = [_candidate(0, 0, cut=1), _candidate(1, 1, cut=1), _candidate(0, 1), _candidate(2, 2, height=0.2)]
    probs = np.stack([unsure, unsure, sure, unsure])
    assert best_path(cands, probs, 3) == [2]  # pieces 0-1 as one digit, the speck left out
    probs = np.stack([sure, sure, unsure, unsure])
    assert best_path(cands, probs, 3) == [0, 1]


def test_best_path_can_be_held_to_given_digits(mnist, recognizer):
    image, truth, _ = number_rows(mnist, 1, seed=22)[0]
    candidates, pieces, _, _ = number_candidates(image)
    probs = recognizer.probabilities(np.stack([c.digit.x28 for c in candidates]))
    free = best_path(candidates, probs, len(pieces))
    read = [int(probs[k].argmax()) for k in free]
    assert best_path(candidates, probs, len(pieces), digits=read) == free
    held = best_path(candidates, probs, len(pieces), digits=[int(d) for d in truth])
    assert len(held) == len(truth)
    assert [candidates[k].first for k in held] == sorted(candidates[k].first for k in held)
    assert best_path(candidates, probs, len(pieces), digits=[1] * (len(pieces) + 1)) == []


# --- the row reader's columns (CTC) -------------------------------------------------------------

def _columns(spelled):
    """Column probabilities that spell ``spelled`` (a list of classes, BLANK included)."""
    out = np.full((FRAMES, BLANK + 1), 1e-4, np.float32)
    classes = list(spelled) + [BLANK] * (FRAMES - len(spelled))
    out[np.arange(FRAMES), classes] = 1.0
    return out / out.sum(1, keepdims=True)


def test_greedy_text_merges_repeats_and_drops_blanks():
    assert greedy_text(_columns([1, 1, BLANK, 1, 2, 2, BLANK, BLANK, 0])) == [1, 1, 2, 0]
    assert greedy_text(_columns([])) == []


def test_log_likelihood_prefers_what_the_columns_spell():
    columns = _columns([BLANK, 4, 4, BLANK, 2, BLANK])
    spelled = log_likelihood(columns, [4, 2])
    assert -0.1 < spelled <= 0.0
    assert log_likelihood(columns, [2, 4]) < spelled - 5
    assert log_likelihood(columns, [4, 4, 2]) < spelled - 5
    assert log_likelihood(columns, []) == -np.inf


# --- numbers read by the shipped networks -------------------------------------------------------

def test_numbers_read_exactly(mnist, recognizer):
    idx = picks(mnist, recognizer)
    right = 0
    cases = [(0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 0, 2, 4, 6)]
    for n, digits in enumerate(cases):
        rng = np.random.default_rng([6, n])
        image, _, _ = synth.render_number([mnist.x_test[idx[d]] for d in digits], rng, condition="scan")
        number = recognizer.read_number(image)
        right += number.text == "".join(str(d) for d in digits)
        xs = [d.box[0] for d in number.digits]
        assert xs == sorted(xs)
    assert right >= 3


def test_touching_and_broken_number(mnist, recognizer):
    idx = picks(mnist, recognizer)
    rng = np.random.default_rng(8)
    image, _, _ = synth.render_number([mnist.x_test[idx[d]] for d in (3, 0, 4)], rng,
                                      condition="tablet_thin", touching=1.0, broken=1.0)
    assert len(recognizer.read_number(image).digits) == 3


def test_two_touching_zeros_are_two_digits_left_to_right(recognizer):
    page = np.full((200, 400), 235, np.uint8)
    cv2.ellipse(page, (110, 100), (45, 70), 0, 0, 360, 20, 8)  # a 0
    cv2.ellipse(page, (198, 100), (45, 70), 0, 0, 360, 20, 8)  # another 0, touching it
    number = recognizer.read_number(page)
    assert number.text == "00"
    left, right = (d.box for d in number.digits)
    assert left[0] < 110 < left[0] + left[2] <= right[0] + 10 and right[0] < 198 < right[0] + right[2]


@pytest.mark.parametrize("digits", [(5, 1), (2, 1, 8)])
def test_narrow_one_touching_its_neighbour_is_its_own_digit(digits, mnist, recognizer):
    texts = [_read(mnist, recognizer, digits, s, touching=1.0) for s in range(6)]
    assert sum(t == "".join(map(str, digits)) for t in texts) >= 5, texts


def test_eight_digit_numbers_read_exactly(mnist, recognizer):
    cases = [(3, 1, 4, 1, 5, 9, 2, 6), (8, 6, 7, 5, 3, 0, 9, 1)]
    texts = [(_read(mnist, recognizer, d, s), "".join(map(str, d))) for d in cases for s in range(6)]
    assert sum(t == truth for t, truth in texts) >= 9, texts  # before the search: 5 of 12


def test_blank_paper_is_no_number(recognizer):
    number = recognizer.read_number(np.full((80, 300), 240, np.uint8))
    assert number.text == "" and number.digits == [] and number.reason
    assert number.to_dict() == {"text": None, "digits": [], "reason": number.reason}


# --- the verifier: is a candidate one whole digit? ----------------------------------------------

def test_the_shipped_verifier_tells_whole_digits_from_pieces(mnist, recognizer):
    whole, pieces = [], []
    for image, _, boxes in number_rows(mnist, 30, seed=11):
        candidates = number_candidates(image)[0]
        labels = np.array([whole_label(c.digit.box, boxes) for c in candidates])
        crops = np.stack([c.digit.x28 for c in candidates])[..., None]
        p = recognizer.verifier(crop=crops, geometry=candidate_features(candidates)).reshape(-1)
        assert p.shape == (len(candidates),)
        whole += list(p[labels == 1])
        pieces += list(p[labels == 0])
    whole, pieces = np.array(whole), np.array(pieces)
    assert len(whole) >= 60 and len(pieces) >= 300
    assert np.mean(whole > 0.5) >= 0.9, np.mean(whole > 0.5)
    assert np.mean(pieces < 0.5) >= 0.95, np.mean(pieces < 0.5)


def test_the_verifier_reads_more_numbers_exactly(mnist):
    """Rows of test digits read with the shipped verifier and without it (neither with
    the row reader); without it the reader still reads most rows."""
    verified = Recognizer.load(row_reader=False)
    alone = Recognizer.load(verifier=False, row_reader=False)
    rows = number_rows(mnist, 60, seed=12)
    with_it = sum(verified.read_number(image).text == truth for image, truth, _ in rows)
    without = sum(alone.read_number(image).text == truth for image, truth, _ in rows)
    assert without >= 30, without
    assert with_it >= without + 3, (with_it, without)


# --- the row reader: the whole row read at once -------------------------------------------------

@pytest.fixture(scope="module")
def read_rows(mnist, recognizer):
    """The 60 rows of seed 23 read by the shipped recognizer, (image, Number, truth) each:
    rendered and read once for the tests that look at them."""
    return [(image, recognizer.read_number(image), truth) for image, truth, _ in number_rows(mnist, 60, seed=23)]


def test_the_row_reader_reads_more_numbers_exactly(recognizer, read_rows):
    """Rows of test digits read with the shipped row reader and without it (both with the
    verifier), and by the row reader alone. (With the digit model trained on three
    populations the path alone reads more rows, and the row reader's gain here is 54 against
    53 of 60.)"""
    without = Recognizer.load(row_reader=False)
    alone = sum(greedy_text(recognizer.row_reader(row_strip(image)[None, ..., None] / 255.0)[0])
                == [int(d) for d in truth] for image, _, truth in read_rows)
    with_it = sum(number.text == truth for _, number, truth in read_rows)
    base = sum(without.read_number(image).text == truth for image, _, truth in read_rows)
    assert alone >= 36, alone  # the network by itself reads most rows
    assert with_it > base, (with_it, base)


def test_numbers_marked_unsure_hold_most_misread_ones(read_rows):
    """Number.low_confidence (a digit the model is unsure of, or a reading the row reader
    finds less likely than not) on rows of test digits: the numbers it marks are read
    wrong far more often than those it leaves unmarked, and it marks most misread ones."""
    read = [(number, truth) for _, number, truth in read_rows]
    assert all(n.row_probability is not None for n, _ in read)  # the row reader read every row
    marked = [n.text == truth for n, truth in read if n.low_confidence]
    unmarked = [n.text == truth for n, truth in read if not n.low_confidence]
    misread = sum(n.text != truth for n, truth in read)
    assert misread >= 2, misread  # render_number's defaults are hard enough to misread some
    assert marked.count(False) >= misread / 2, (marked.count(False), misread)
    assert np.mean(unmarked) > np.mean(marked) + 0.2, (np.mean(unmarked), np.mean(marked))
    assert len(marked) < len(read) / 2  # it does not mark everything


def test_a_reading_from_the_row_reader_keeps_a_box_per_digit(mnist, recognizer):
    for image, _, _ in number_rows(mnist, 12, seed=24):
        number = recognizer.read_number(image)
        assert len(number.digits) == len(number.text)
        xs = [d.box[0] for d in number.digits]
        assert xs == sorted(xs)
        h, w = image.shape[:2]
        assert all(0 <= d.box[0] < w and 0 <= d.box[1] < h for d in number.digits)


# --- when a number is marked unsure -------------------------------------------------------------

def test_a_number_is_marked_unsure_by_its_digits_or_by_the_row_reader():
    sure = [Prediction(d, 0.98, np.full(10, 0.1), box=(10 * i, 0, 8, 10)) for i, d in enumerate((4, 2))]
    assert not Number(sure, row_probability=0.9).low_confidence
    assert not Number(sure).low_confidence  # no row reader: the digits alone decide
    doubted = Number(sure, row_probability=ROW_LOW_CONFIDENCE / 2)
    assert doubted.low_confidence and "row reader" in doubted.doubts[0]
    assert doubted.to_dict()["low_confidence"] is True and doubted.to_dict()["row_probability"] < 0.5
    unsure_digit = Number([sure[0], Prediction(7, LOW_CONFIDENCE / 2, np.full(10, 0.1), box=(20, 0, 8, 10))],
                          row_probability=0.9)
    assert unsure_digit.doubts == [f"digit 2 (7) read at {LOW_CONFIDENCE / 2:.0%}"]
    assert "low_confidence" not in Number(reason="blank").to_dict()


def test_the_row_readers_alignment_gives_each_digit_its_ink(mnist, recognizer):
    """Where no path through the candidates reads what the row reader reads, its digits
    get their boxes from the CTC alignment: columns spelling 3 digits at each digit's
    place in the strip share the row's ink out digit by digit, and the digit model reads
    each share."""
    from digitrec.reading.normalize import ink_mask
    from digitrec.reading.numbers import _aligned, _groups, _strip, align

    idx = picks(mnist, recognizer)
    image, _, boxes = synth.render_number([mnist.x_test[idx[d]] for d in (4, 0, 7)], np.random.default_rng(5),
                                          condition="scan", touching=0, broken=0)
    ink = ink_mask(image, number=True)
    labels = _groups(ink.mask)[2]
    strip, (first, k) = _strip(labels)
    columns = np.full((FRAMES, BLANK + 1), 0.01, np.float32)
    columns[:, BLANK] = 0.9
    frames = []
    for digit, (x, _, w, _) in zip((4, 0, 7), boxes):  # each digit's middle, in the strip's columns
        frame = int((ROW_MARGIN + ((x + w / 2) * ink.scale - first) * k) / (ROW_WIDTH / FRAMES))
        columns[frame] = 0.01
        columns[frame, digit] = 0.9
        frames.append((frame, frame))
    assert align(columns, [4, 0, 7]) == frames
    digits = _aligned(columns, [4, 0, 7], labels, ink, (first, k), recognizer.probabilities)
    assert [d.digit for d in digits] == [4, 0, 7]
    for d, (x, y, w, h) in zip(digits, boxes):
        bx, by, bw, bh = d.box
        cover = max(0, min(bx + bw, x + w) - max(bx, x)) / w
        assert cover >= 0.9 and bw <= 1.2 * w, (d.box, (x, y, w, h))
        assert d.confidence >= LOW_CONFIDENCE  # the digit model reads each share as the row reader does


def test_a_row_the_row_reader_is_sure_of_is_read_without_cutting_it(mnist, recognizer, monkeypatch):
    """The row reader leads: a clear row it reads at ROW_LEAD or more is read from its CTC
    alignment alone (the over-segmentation never runs), each digit boxed around its own ink
    and read by the digit model as the row reader reads it; a row it is unsure of (here
    one it never sees: the row reader left out) still goes through the candidates."""
    from digitrec.reading import numbers

    idx = picks(mnist, recognizer)
    image, _, boxes = synth.render_number([mnist.x_test[idx[d]] for d in (2, 7, 0, 4)], np.random.default_rng(4),
                                          condition="scan", touching=0, broken=0)

    def no_cutting(*args, **kwargs):
        raise AssertionError("the row was over-segmented")

    monkeypatch.setattr(numbers, "_over_segment", no_cutting)
    number = recognizer.read_number(image)
    assert number.text == "2704" and number.row_probability >= numbers.ROW_LEAD
    for d, (x, y, w, h) in zip(number.digits, boxes):
        bx, by, bw, bh = d.box
        assert abs(bx - x) <= 0.15 * w + 2 and abs(bx + bw - x - w) <= 0.15 * w + 2, (d.box, (x, y, w, h))
        assert d.confidence >= LOW_CONFIDENCE
    with pytest.raises(AssertionError, match="over-segmented"):
        Recognizer.load(row_reader=False).read_number(image)
