"""Training the number reader's whole-digit verifier (digitrec.training.verifier): its
labels, its training data, a brief training and the command line. What the shipped
verifier does for reading: tests/test_numbers.py."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from digitrec import cli, store
from digitrec.reading import engine
from digitrec.reading.numbers import FEATURES, candidate_features, number_candidates
from digitrec.training.export import AGREEMENT
from digitrec.training.number_data import candidate_examples, whole_label
from digitrec.training.recipes import VerifierConfig
from digitrec.training.verifier import train_verifier
from tests.conftest import data_dir, number_rows

ROW = [(10, 5, 30, 40), (45, 6, 8, 40), (56, 4, 28, 41)]  # a digit, a narrow 1, a digit


def test_whole_label_tells_a_digit_from_fragments_and_mergers():
    assert whole_label((10, 5, 30, 40), ROW) == 1  # exactly the first digit
    assert whole_label((11, 6, 28, 38), ROW) == 1  # a pixel off at each edge
    assert whole_label((45, 6, 8, 40), ROW) == 1  # the 1 alone
    assert whole_label((10, 5, 14, 40), ROW) == 0  # the left half of the first digit
    assert whole_label((10, 20, 30, 20), ROW) == 0  # its lower half only
    assert whole_label((45, 4, 39, 41), ROW) == 0  # the 1 and the digit it touches: one box
    assert whole_label((10, 5, 81, 41), ROW) == 0  # the whole row
    assert whole_label((10, 5, 24, 40), ROW) == -1  # most of a digit: not used either way


def test_candidate_examples_come_labelled_and_reproducible(mnist):
    a = candidate_examples(mnist.x_train[:500], numbers=6, seed=3, workers=1)
    b = candidate_examples(mnist.x_train[:500], numbers=6, seed=3, workers=1)
    assert a.x.shape[1:] == (28, 28) and a.x.dtype == np.uint8
    assert a.features.shape == (len(a.x), len(FEATURES)) and len(a.whole) == len(a.x)
    assert set(np.unique(a.whole)) == {0, 1}
    # most candidates of an over-segmented row are not whole digits; every digit of a
    # row of 2-8 can be, so there are at least as many whole ones as rows
    assert 6 <= a.whole.sum() < len(a.whole) / 2
    assert np.array_equal(a.x, b.x) and np.array_equal(a.whole, b.whole)


@pytest.mark.slow
def test_a_brief_training_saves_a_verifier_its_export_and_its_card(mnist, tmp_path):
    out = tmp_path / "v.keras"
    cfg = VerifierConfig(numbers=40, epochs=1, held_out=0.1, out=str(out), workers=1, data=str(data_dir()))
    path, card = train_verifier(cfg, verbose=0)
    assert path == out and store.card_path(out).exists()
    assert card["format"] == "digitrec-verifier-card/1" and card["features"] == list(FEATURES)
    assert card["examples"]["numbers"] == 40 and card["examples"]["source"] == "MNIST training digits only"
    assert 0 < card["examples"]["whole"] < card["examples"]["candidates"]
    assert card["held_out"]["held_out"] == round(0.1 * card["examples"]["candidates"])
    # the export reading loads gives the saved model's judgement on candidates of test digits
    candidates = number_candidates(number_rows(mnist, 1, seed=13)[0][0])[0]
    crops, geometry = np.stack([c.digit.x28 for c in candidates])[..., None], candidate_features(candidates)
    saved = keras.models.load_model(out, compile=False)
    np.testing.assert_allclose(engine.load(store.lite_path(out))(crop=crops, geometry=geometry),
                               saved([crops, geometry]), atol=AGREEMENT)


def test_train_verifier_command_line_defaults():
    args = cli.build_parser().parse_args(["train-verifier"])
    assert args.func is cli._cmd_train_verifier
    assert (args.numbers, args.epochs, args.seed, args.out) == (
        VerifierConfig.numbers, VerifierConfig.epochs, VerifierConfig.seed, None)
