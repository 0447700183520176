"""The number reader's row reader (digitrec.training.row_reader): its input strip, its training
rows, CTC decoding and likelihood, the constrained path search, and what the shipped
reader does for read_number on rows of MNIST *test* digits."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import data_dir

from digitrec import cli, preprocess, row_reader, synth
from digitrec.reading.digits import Recognizer, best_path
from digitrec.training.number_data import row_examples
from digitrec.training.row_reader import (
    BLANK,
    FRAMES,
    SHIPPED_ROW_READER,
    RowReader,
    RowReaderConfig,
    greedy_text,
    log_likelihood,
    train_row_reader,
)


def _rows(mnist, count, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(count):
        idx = rng.choice(len(mnist.x_test), 2 + j % 7, replace=False)
        image, _, _ = synth.render_number([mnist.x_test[i] for i in idx], rng)
        rows.append((image, "".join(str(int(mnist.y_test[i])) for i in idx)))
    return rows


def test_row_strip_holds_the_row_left_aligned_and_refuses_blank_paper(mnist):
    image, _ = _rows(mnist, 1, seed=21)[0]
    strip = preprocess.row_strip(image)
    assert strip.shape == (preprocess.ROW_HEIGHT, preprocess.ROW_WIDTH) and strip.dtype == np.uint8
    rows, cols = np.nonzero(strip > 127)
    assert cols.min() <= preprocess.ROW_MARGIN + 1  # starts at the left margin
    assert rows.max() - rows.min() >= preprocess.ROW_HEIGHT - 2 * preprocess.ROW_MARGIN - 3  # fills the height
    with pytest.raises(preprocess.NoDigit):
        preprocess.row_strip(np.full((80, 300), 245, np.uint8))


def test_row_examples_are_labelled_and_reproducible(mnist):
    a = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=8, seed=2, workers=1)
    b = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=8, seed=2, workers=1)
    assert a.x.shape == (8, preprocess.ROW_HEIGHT, preprocess.ROW_WIDTH) and a.labels.shape == (8, 8)
    lengths = (a.labels >= 0).sum(1)
    assert list(lengths) == [2, 3, 4, 5, 6, 7, 8, 2]  # render_number's lengths in turn
    assert set(np.unique(a.labels[a.labels >= 0])) <= set(range(10))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.labels, b.labels)


def test_rows_can_be_rendered_in_chosen_conditions(mnist):
    """--conditions: the conditions come in turn (a name given twice, twice as often);
    an unknown one is refused before anything is rendered."""
    from digitrec.training.number_data import _rows

    _, conditions, _, _ = _rows(mnist.x_train[:300], 6, seed=2, stream=8, conditions=["chalk", "pencil", "chalk"])
    assert list(conditions) == ["chalk", "pencil", "chalk"] * 2
    chalk = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=3, seed=2, workers=1,
                         conditions=["chalk"])
    scan = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=3, seed=2, workers=1,
                        conditions=["scan"])
    assert np.array_equal(chalk.labels, scan.labels) and not np.array_equal(chalk.x, scan.x)
    with pytest.raises(ValueError, match="crayon"):
        row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=3, seed=2, conditions=["crayon"])


@pytest.mark.skipif(not SHIPPED_ROW_READER.exists(), reason="no shipped row reader")
def test_a_larger_reader_grown_from_a_smaller_one_reads_as_it_did(mnist, tmp_path):
    """--blocks / --rnn-layers with --init: the added layers start at zero, so the grown
    reader's columns are the smaller reader's until it trains; a smaller reader cannot
    take a larger one's weights."""
    strip = preprocess.row_strip(_rows(mnist, 1, seed=26)[0][0])
    small = RowReader.load()
    big = row_reader.build(blocks=1, rnn_layers=2)
    assert big.count_params() > small.model.count_params()
    row_reader.grow(big, str(SHIPPED_ROW_READER))
    np.testing.assert_allclose(RowReader(big)(strip), small(strip), atol=1e-5)
    big.save(tmp_path / "big.keras")
    with pytest.raises(ValueError, match="grow"):
        row_reader.grow(row_reader.build(rnn_layers=2), str(tmp_path / "big.keras"))


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


def test_log_likelihood_is_the_training_loss_negated():
    """The NumPy forward pass used at reading time gives what TensorFlow's CTC loss, the
    training objective, gives: repeated digits (which need a blank between them) included."""
    rng = np.random.default_rng(3)
    columns = rng.dirichlet(np.full(BLANK + 1, 0.3), size=FRAMES).astype(np.float32)
    for digits in ([4, 2], [7], [3, 3, 3], [1, 2, 1, 2, 0, 0, 9, 8]):
        labels = np.full((1, row_reader.MAX_DIGITS), -1, np.int32)
        labels[0, : len(digits)] = digits
        loss = float(row_reader.ctc_loss(labels, columns[None])[0])
        assert abs(log_likelihood(columns, digits) + loss) < 1e-3 * max(1.0, loss), digits


def test_best_path_can_be_held_to_given_digits(mnist, recognizer):
    image, truth = _rows(mnist, 1, seed=22)[0]
    candidates, pieces, _, _ = preprocess.number_candidates(image)
    probs = recognizer.probabilities(np.stack([c.digit.x28 for c in candidates]))
    free = best_path(candidates, probs, len(pieces))
    read = [int(probs[k].argmax()) for k in free]
    assert best_path(candidates, probs, len(pieces), digits=read) == free
    held = best_path(candidates, probs, len(pieces), digits=[int(d) for d in truth])
    assert len(held) == len(truth)
    assert [candidates[k].first for k in held] == sorted(candidates[k].first for k in held)
    assert best_path(candidates, probs, len(pieces), digits=[1] * (len(pieces) + 1)) == []


@pytest.fixture(scope="module")
def read_rows(mnist, recognizer):
    """The 60 rows of seed 23 read by the shipped recognizer, (image, Number, truth) each:
    rendered and read once for the tests that look at them."""
    return [(image, recognizer.read_number(image), truth) for image, truth in _rows(mnist, 60, seed=23)]


@pytest.mark.skipif(not SHIPPED_ROW_READER.exists(), reason="no shipped row reader")
def test_the_row_reader_reads_more_numbers_exactly(recognizer, read_rows):
    """Rows of test digits (touching, broken: render_number's defaults), read with the
    shipped row reader and without it (both with the verifier)."""
    assert recognizer.row_reader is not None and recognizer.verifier is not None
    without = Recognizer(recognizer.model, recognizer.path, recognizer.card, runtime="tf",
                         verifier=recognizer.verifier)
    alone = sum(greedy_text(recognizer.row_reader(preprocess.row_strip(image))) == [int(d) for d in truth]
                for image, _, truth in read_rows)
    with_it = sum(number.text == truth for _, number, truth in read_rows)
    base = sum(without.read_number(image).text == truth for image, _, truth in read_rows)
    assert alone >= 36, alone  # the network by itself reads most rows
    assert with_it >= base + 2, (with_it, base)


@pytest.mark.skipif(not SHIPPED_ROW_READER.exists(), reason="no shipped row reader")
def test_numbers_marked_unsure_hold_most_misread_ones(read_rows):
    """Number.low_confidence (a digit the model is unsure of, or a reading the row reader
    finds less likely than not) on rows of test digits: the numbers it marks are read
    wrong far more often than those it leaves unmarked, and it marks most misread ones."""
    read = [(number, truth) for _, number, truth in read_rows]
    marked = [n.text == truth for n, truth in read if n.low_confidence]
    unmarked = [n.text == truth for n, truth in read if not n.low_confidence]
    misread = sum(n.text != truth for n, truth in read)
    assert misread >= 2, misread  # render_number's defaults are hard enough to misread some
    assert marked.count(False) >= misread / 2, (marked.count(False), misread)
    assert np.mean(unmarked) > np.mean(marked) + 0.2, (np.mean(unmarked), np.mean(marked))
    assert len(marked) < len(read) / 2  # it does not mark everything
    assert all(n.row_probability is not None and 0 <= n.row_probability <= 1 for n, _ in read)


@pytest.mark.skipif(not SHIPPED_ROW_READER.exists(), reason="no shipped row reader")
def test_a_reading_from_the_row_reader_keeps_a_box_per_digit(mnist, recognizer):
    for image, truth in _rows(mnist, 12, seed=24):
        number = recognizer.read_number(image)
        assert len(number.digits) == len(number.text)
        xs = [d.box[0] for d in number.digits]
        assert xs == sorted(xs)
        h, w = image.shape[:2]
        assert all(0 <= d.box[0] < w and 0 <= d.box[1] < h for d in number.digits)


@pytest.mark.slow
def test_a_brief_training_saves_a_row_reader_and_its_card(mnist, tmp_path):
    out = tmp_path / "r.keras"
    cfg = RowReaderConfig(numbers=60, epochs=1, held_out=10, out=str(out), workers=1, data=str(data_dir()))
    path, card = train_row_reader(cfg, verbose=0)
    assert path == out and out.exists() and out.with_suffix(".json").exists()
    assert card["format"] == "digitrec-row-reader-card/1"
    assert card["examples"]["rows"] == 60 and card["examples"]["source"] == "MNIST training digits only"
    assert 0.0 <= card["held_out"]["read_exactly"] <= 1.0
    columns = RowReader.load(out)(preprocess.row_strip(_rows(mnist, 1, seed=25)[0][0]))
    assert columns.shape == (FRAMES, BLANK + 1)
    np.testing.assert_allclose(columns.sum(1), 1.0, atol=1e-4)


@pytest.mark.slow
def test_training_can_start_from_a_trained_reader(mnist, tmp_path):
    """--init: the run starts from the shipped reader's weights (a tiny learning rate keeps
    them), where a run from scratch reads nothing after one epoch on 50 rows."""
    out = tmp_path / "r.keras"
    cfg = RowReaderConfig(numbers=60, epochs=1, held_out=10, out=str(out), workers=1, seed=7,
                          data=str(data_dir()), init=str(SHIPPED_ROW_READER), learning_rate=1e-9)
    _, card = train_row_reader(cfg, verbose=0)
    assert card["held_out"]["read_exactly"] >= 0.7
    assert card["init"]["path"] == str(SHIPPED_ROW_READER) and len(card["init"]["sha256"]) == 64
    assert card["init"]["rows"] > 1000  # what the shipped reader was trained on


def test_train_row_reader_command_line_defaults():
    args = cli.build_parser().parse_args(["train-row-reader"])
    assert args.func is cli._cmd_train_row_reader
    assert (args.numbers, args.epochs, args.out) == (RowReaderConfig.numbers, RowReaderConfig.epochs, None)
    assert (args.conditions, args.blocks, args.rnn_layers) == (None, 0, 1)


def test_a_missing_row_reader_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="row reader file"):
        RowReader.load(tmp_path / "nothing.keras")


@pytest.mark.skipif(not SHIPPED_ROW_READER.exists(), reason="no shipped row reader")
def test_every_recognizer_shares_one_loaded_row_reader(recognizer):
    assert row_reader.shipped() is row_reader.shipped() is recognizer.row_reader
