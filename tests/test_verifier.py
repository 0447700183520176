"""The number reader's whole-digit verifier (digitrec.training.verifier): its labels, its training
data, the shipped verifier's judgement on rows of MNIST *test* digits, and what it does
for read_number."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import data_dir

from digitrec import cli, preprocess, synth
from digitrec.reading.digits import Recognizer
from digitrec.training.number_data import candidate_examples, whole_label
from digitrec.training.verifier import FEATURES, SHIPPED_VERIFIER, Verifier, VerifierConfig, train_verifier

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


def _test_rows(mnist, count, seed):
    """Rows of test digits, each with its candidates and their whole_label."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(count):
        idx = rng.choice(len(mnist.x_test), 2 + j % 7, replace=False)
        image, _, boxes = synth.render_number([mnist.x_test[i] for i in idx], rng)
        truth = "".join(str(int(mnist.y_test[i])) for i in idx)
        candidates = preprocess.number_candidates(image)[0]
        labels = np.array([whole_label(c.digit.box, boxes) for c in candidates])
        rows.append((image, truth, candidates, labels))
    return rows


@pytest.mark.skipif(not SHIPPED_VERIFIER.exists(), reason="no shipped verifier")
def test_shipped_verifier_tells_whole_digits_from_pieces(mnist):
    verifier = Verifier.load()
    whole, pieces = [], []
    for _, _, candidates, labels in _test_rows(mnist, 30, seed=11):
        p = verifier(candidates)
        assert p.shape == (len(candidates),) and np.all((p >= 0) & (p <= 1))
        whole += list(p[labels == 1])
        pieces += list(p[labels == 0])
    whole, pieces = np.array(whole), np.array(pieces)
    assert len(whole) >= 60 and len(pieces) >= 300
    assert np.mean(whole > 0.5) >= 0.9, np.mean(whole > 0.5)
    assert np.mean(pieces < 0.5) >= 0.95, np.mean(pieces < 0.5)


@pytest.mark.skipif(not SHIPPED_VERIFIER.exists(), reason="no shipped verifier")
def test_the_verifier_reads_more_numbers_exactly(mnist, recognizer):
    """Rows of test digits (touching, broken: render_number's defaults), read with the
    shipped verifier and without it."""
    assert recognizer.verifier is not None
    verified = Recognizer(recognizer.model, recognizer.path, recognizer.card, runtime="tf",
                          verifier=recognizer.verifier)  # without the row reader
    alone = Recognizer(recognizer.model, recognizer.path, recognizer.card, runtime="tf")
    assert alone.verifier is None and alone.row_reader is None
    rows = _test_rows(mnist, 60, seed=12)
    with_it = sum(verified.read_number(image).text == truth for image, truth, _, _ in rows)
    without = sum(alone.read_number(image).text == truth for image, truth, _, _ in rows)
    assert with_it >= without + 3, (with_it, without)


@pytest.mark.slow
def test_a_brief_training_saves_a_verifier_and_its_card(mnist, tmp_path):
    out = tmp_path / "v.keras"
    cfg = VerifierConfig(numbers=40, epochs=1, held_out=0.1, out=str(out), workers=1, data=str(data_dir()))
    path, card = train_verifier(cfg, verbose=0)
    assert path == out and out.exists() and out.with_suffix(".json").exists()
    assert card["format"] == "digitrec-verifier-card/1"
    assert card["examples"]["numbers"] == 40 and card["examples"]["source"] == "MNIST training digits only"
    assert 0 < card["examples"]["whole"] < card["examples"]["candidates"]
    assert 0.0 <= card["held_out"]["accuracy"] <= 1.0
    rows = _test_rows(mnist, 2, seed=13)
    p = Verifier.load(out)(rows[0][2])
    assert p.shape == (len(rows[0][2]),) and np.all((p >= 0) & (p <= 1))


def test_train_verifier_command_line_defaults():
    args = cli.build_parser().parse_args(["train-verifier"])
    assert args.func is cli._cmd_train_verifier
    assert (args.numbers, args.epochs, args.out) == (16000, 4, None)


def test_a_recognizer_without_a_verifier_still_reads_numbers(mnist, recognizer):
    alone = Recognizer(recognizer.model, recognizer.path, recognizer.card, runtime="tf")
    image, truth, _, _ = _test_rows(mnist, 1, seed=14)[0]
    number = alone.read_number(image)
    assert number.text and len(number.digits) == len(number.text)


def test_a_missing_verifier_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="verifier file"):
        Verifier.load(tmp_path / "nothing.keras")


@pytest.mark.skipif(not SHIPPED_VERIFIER.exists(), reason="no shipped verifier")
def test_every_recognizer_shares_one_loaded_verifier(recognizer):
    from digitrec import verifier

    assert verifier.shipped() is verifier.shipped() is recognizer.verifier
