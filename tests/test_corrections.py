"""A number's correction kept as digit samples (digitrec.server.corrections), and readings as
records to download (digitrec.reading.records)."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from digitrec.reading import records
from digitrec.server.corrections import Mismatch, digit_samples, save_number, typed_digits
from digitrec.server.samples import SampleStore
from tests.conftest import readable_digits


@pytest.fixture(scope="module")
def row(mnist, recognizer):
    pages = readable_digits(mnist, recognizer, {1, 4, 7})
    return np.concatenate([pages[d][:, 90:300] for d in (4, 1, 7)], axis=1)


@pytest.mark.parametrize("text, digits", [("417", "417"), (" 1.500 ", "1500"), ("12-05", "1205"), ("3/4", "34")])
def test_typed_numbers_keep_their_digits(text, digits):
    assert typed_digits(text) == digits


@pytest.mark.parametrize("text", ["", "  ", "4l7", "abc", "12e3"])
def test_a_typed_number_must_be_digits(text):
    with pytest.raises(ValueError):
        typed_digits(text)


def test_each_digit_of_a_corrected_number_becomes_a_sample(row, recognizer):
    number = recognizer.read_number(row)
    assert number.text == "417"
    samples = digit_samples(row, number, "427")
    assert [(s["true_digit"], s["read_digit"]) for s in samples] == [(4, 4), (2, 1), (7, 7)]
    # each sample is the digit itself, as the digit model reads single digits
    assert list(recognizer.probabilities(np.stack([s["x28"] for s in samples])).argmax(1)) == [4, 1, 7]


def test_a_correction_with_other_digits_than_were_read_saves_nothing(row, recognizer, tmp_path):
    db = SampleStore(tmp_path / "samples.sqlite3")
    number = recognizer.read_number(row)
    with pytest.raises(Mismatch, match="4 digits typed, 3 read"):
        save_number(db, row, number, "4177", "upload")
    assert db.count() == 0
    assert save_number(db, row, number, "417", "upload", model="digitrec.keras") == 3
    saved = sorted(db.samples(), key=lambda s: s.id)
    assert [(s.true_digit, s.read_digit, s.source) for s in saved] == [(4, 4, "upload"), (1, 1, "upload"),
                                                                       (7, 7, "upload")]
    assert db.picture(saved[0].id).startswith(b"\x89PNG")


def test_records_hold_each_reading_and_its_correction(row, recognizer):
    digit = recognizer.predict(row)
    count = recognizer.count_digits(row)
    reading = recognizer.read(row)
    recs = [records.record("row.png", records.DIGIT, digit, count),
            records.record("row.png", records.NUMBERS, reading, correction="427"),
            records.record("broken.png", records.NUMBERS, "not an image")]
    assert recs[0]["digits_in_picture"] == {"digits": 3, "several": True, "number": "417",
                                            "confidence": round(count.number.confidence, 4)}
    assert recs[0]["digit"] == digit.digit and recs[0]["box"] == list(digit.box)
    assert recs[1]["text"] == "417" and recs[1]["correction"] == "427"
    assert json.loads(records.to_json(recs)) == recs
    table = list(csv.DictReader(io.StringIO(records.to_csv(recs))))
    assert [(r["file"], r["mode"], r["text"], r["digits_in_picture"], r["correction"], r["error"]) for r in table] == [
        # one digit's reading of a row: a digit, or "not a digit", in the column of what went wrong
        ("row.png", "one digit", "" if digit.digit is None else str(digit.digit), "3", "",
         digit.reason if digit.digit is None else ""),
        ("row.png", "numbers", "417", "", "427", ""),
        ("broken.png", "numbers", "", "", "", "not an image")]
    assert float(table[1]["confidence"]) == round(reading.numbers[0].confidence, 4)


def test_each_number_of_a_page_has_its_own_row_and_correction(row, recognizer):
    page = np.concatenate([row, np.full((120, row.shape[1]), 235, np.uint8), row], axis=0)
    reading = recognizer.read(page)
    assert reading.text == "417 417"
    rec = records.record("page.png", records.NUMBERS, reading, correction=[None, "427"])
    table = list(csv.DictReader(io.StringIO(records.to_csv([rec]))))
    assert [(r["number"], r["text"], r["correction"]) for r in table] == [("1", "417", ""), ("2", "417", "427")]
    assert records.record("page.png", records.NUMBERS, reading, correction=[None, None]).get("correction") is None


def test_a_picture_without_a_number_has_one_row_saying_so(recognizer):
    blank = np.full((100, 200), 240, np.uint8)
    rec = records.record("blank.png", records.NUMBERS, recognizer.read(blank))
    (only,) = list(csv.DictReader(io.StringIO(records.to_csv([rec]))))
    assert only["text"] == "" and only["error"] == "blank image: no ink found"
    rec = records.record("blank.png", records.NUMBERS, recognizer.read_number(blank))
    assert rec["numbers"] == [] and rec["reason"] == "blank image: no ink found"
