""""Not a digit" and calibrated confidence: the letters' writers split apart, scribbles
rendered, temperature scaling, the reliability figures, and the shipped model telling
letters and scribbles from digits while it keeps reading digits."""
from __future__ import annotations

import numpy as np
import pytest

from digitrec.reading.calibration import temperature_of, tempered
from digitrec.reading.results import LOW_CONFIDENCE, NOT_A_DIGIT, Prediction
from digitrec.training import nondigits
from digitrec.training.evaluate import expected_calibration_error, fit_temperature, reliability, scores
from tests.conftest import data_dir, paper_digit

needs_data = pytest.mark.skipif(data_dir() is None, reason="needs $DIGITREC_DATA")


# --- calibration -------------------------------------------------------------------------

def test_tempering_keeps_the_winner_and_sharpens_or_softens():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_allclose(tempered(p, 1.0), p)
    sharp, soft = tempered(p, 0.5), tempered(p, 2.0)
    for q in (sharp, soft):
        np.testing.assert_allclose(q.sum(1), 1.0)
        assert (q.argmax(1) == p.argmax(1)).all()
    assert (sharp.max(1) > p.max(1)).all() and (soft.max(1) < p.max(1)).all()
    np.testing.assert_allclose(tempered(p, 0.5)[0], np.array([49, 4, 1]) / 54)  # p ** 2, renormalised


def test_fit_temperature_recovers_the_temperature_that_made_the_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(6000, 10))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in truth])  # labels drawn from the true probabilities
    overconfident = tempered(truth, 0.5)  # what a network sure beyond its worth would say
    t = fit_temperature(overconfident, y)
    assert 1.8 < t < 2.2  # undoes the 0.5
    assert expected_calibration_error(tempered(overconfident, t), y) < expected_calibration_error(overconfident, y) / 3
    assert expected_calibration_error(truth, y) < 0.02


def test_reliability_counts_the_confident_readings():
    probs = np.array([[0.95, 0.05], [0.92, 0.08], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([0, 1, 0, 1])
    r = reliability(probs, y)
    assert r["share_at_90"] == 0.75 and r["right_at_90"] == pytest.approx(2 / 3, abs=1e-4)


def test_a_card_without_a_temperature_reads_as_the_network_says():
    assert temperature_of({}) == 1.0 and temperature_of(None) == 1.0
    assert temperature_of({"calibration": None}) == 1.0
    assert temperature_of({"calibration": {"temperature": 0.7}}) == 0.7


def test_scores_count_a_digit_read_as_not_a_digit_as_an_error():
    probs = np.eye(11)[[3, 10, 5]]
    report = scores(probs, np.array([3, 4, 5]))
    assert report["errors"] == 1 and report["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert np.array(report["confusion"]).shape == (10, 11) and report["confusion"][4][10] == 1


# --- what reading says ---------------------------------------------------------------------

def test_a_prediction_of_not_a_digit_says_so_in_its_json():
    p = np.zeros(11, np.float32)
    p[10], p[4] = 0.9, 0.1
    out = Prediction(None, 0.0, p, reason=NOT_A_DIGIT).to_dict()
    assert out["digit"] is None and out["reason"] == "not a digit" and out["not_a_digit"] == 0.9
    assert len(out["probabilities"]) == 10 and "low_confidence" not in out
    digit = Prediction(4, 0.9, p[[0, 1, 2, 3, 10, 5, 6, 7, 8, 9, 4]]).to_dict()  # 0.9 on 4, 0.1 not a digit
    assert digit["not_a_digit"] == pytest.approx(0.1) and digit["low_confidence"] is False
    assert "not_a_digit" not in Prediction(4, 0.9, np.eye(10)[4]).to_dict()  # a model of ten digits


# --- the data ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", nondigits.KINDS)
def test_every_scribble_kind_draws_ink(kind):
    rng = np.random.default_rng(3)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    picture = nondigits.scribble(kind, rng, digit)
    assert picture.shape == (nondigits.SIDE, nondigits.SIDE) and (picture < 128).mean() > 0.01


def test_held_out_writers_are_a_fixed_part():
    writers = [str(w) for w in range(1, 31)]
    held = [w for w in writers if nondigits.held_out_writer(w)]
    assert 2 <= len(held) <= 12 and held == [w for w in writers if nondigits.held_out_writer(w)]


@needs_data
def test_letters_split_by_writer_and_lookalikes_apart():
    letters = nondigits.load_letters(data_dir())
    assert len(letters.x) == 1560 and letters.found.all()
    train, held = letters.part(held_out=False), letters.part(held_out=True)
    assert not set(train.writers) & set(held.writers)
    assert not set(train.chars) & nondigits.LOOKALIKES
    assert set(letters.part(held_out=True, lookalikes=True).chars) <= nondigits.LOOKALIKES


@needs_data
def test_training_set_repeats_the_real_letters_and_no_held_out_writer():
    letters = nondigits.load_letters(data_dir())
    train = letters.part(held_out=False)
    digits = np.zeros((4, 28, 28), np.uint8)
    once, info = nondigits.training_set(data_dir(), digits, 12, seed=0)
    thrice, info3 = nondigits.training_set(data_dir(), digits, 12, seed=0, letter_copies=3)
    assert info["letters"] == info3["letters"] == int(train.found.sum()) and info3["letter_copies"] == 3
    assert len(thrice) - len(once) == 2 * info["letters"]
    assert (thrice[: 3 * info["letters"]: 3] == train.x[train.found]).all()  # each letter, then its copies
    held = letters.part(held_out=True).x
    assert not any((held[:, None] == thrice[None, : 3 * info["letters"]]).all(axis=(2, 3)).any(axis=1))
    with pytest.raises(ValueError):
        nondigits.training_set(data_dir(), digits, 12, seed=0, letter_copies=0)


# --- the shipped model ---------------------------------------------------------------------

@needs_data
def test_shipped_model_is_calibrated_and_says_not_a_digit(recognizer):
    card = recognizer.card
    assert recognizer.temperature == card["calibration"]["temperature"] != 1.0
    for name, figures in card["calibration"]["measured"].items():
        assert figures["after"]["ece"] <= figures["before"]["ece"], name
    assert "not_a_digit" in card and card["not_a_digit"]["letters"] > 500


@needs_data
def test_shipped_model_rejects_held_out_letters_and_scribbles(recognizer):
    """Most of them are told apart (a model of ten digits gave 64% and 61% a confident digit)."""
    letters = nondigits.letters_report(recognizer.probabilities, data_dir())
    assert letters["given_a_confident_digit"] <= 0.3, letters
    drawn = nondigits.scribbles_report(recognizer.probabilities, data_dir(), n=200)
    assert drawn["given_a_confident_digit"] <= 0.15, drawn


@needs_data
def test_shipped_model_says_a_letter_is_not_a_digit_and_digits_stay_digits(recognizer, mnist):
    import cv2

    held = [w for w in map(str, range(1, 31)) if nondigits.held_out_writer(w)]
    letter = cv2.imread(str(nondigits.letters_dir(data_dir()) / f"images/upper-A-{int(held[0]):02d}.png"),
                        cv2.IMREAD_GRAYSCALE)
    said = recognizer.predict(letter)
    assert said.digit is None or said.confidence < LOW_CONFIDENCE, said.to_dict()
    digits = recognizer.predict_batch([paper_digit(mnist.x_test[i]) for i in range(100)])
    assert sum(p.digit == mnist.y_test[i] for i, p in enumerate(digits)) >= 98
