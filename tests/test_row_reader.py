"""Training the number reader's row reader (digitrec.training.row_reader): its training
rows, growing a larger reader from a smaller one, CTC's loss against the reader's NumPy
likelihood, brief trainings and the command line. What the shipped row reader does for
reading: tests/test_numbers.py."""
from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from digitrec import cli, store
from digitrec.reading import engine
from digitrec.reading.numbers import BLANK, FRAMES, MAX_DIGITS, ROW_HEIGHT, ROW_WIDTH, log_likelihood, row_strip
from digitrec.training import export, row_reader
from digitrec.training.number_data import mnist_box, row_examples
from digitrec.training.recipes import RowReaderConfig
from tests.conftest import data_dir, number_rows


def _strip(mnist, seed: int) -> np.ndarray:
    """A row of test digits as the row reader takes it: (1, ROW_HEIGHT, ROW_WIDTH, 1) in [0, 1]."""
    return row_strip(number_rows(mnist, 1, seed=seed)[0][0])[None, ..., None].astype(np.float32) / 255.0


def _pieces(image: np.ndarray, level: float) -> int:
    """How many 8-connected pieces of ink (pixels above ``level``) ``image`` holds."""
    import cv2

    return cv2.connectedComponents((image > level).astype(np.uint8), connectivity=8)[0] - 1


def test_row_examples_are_labelled_and_reproducible(mnist):
    a = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=16, seed=2, workers=1)
    b = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=16, seed=2, workers=1)
    assert a.x.shape[1:] == (ROW_HEIGHT, ROW_WIDTH) and a.labels.shape == (len(a.x), MAX_DIGITS)
    assert len(a.x) >= 13  # a row the finder does not find as one number is left out, rarely
    lengths = (a.labels >= 0).sum(1)
    assert set(lengths) <= set(range(1, 9)) and len(set(lengths)) >= 6  # 1 to 8 digits in turn
    assert all((row[:n] >= 0).all() and (row[n:] == -1).all() for row, n in zip(a.labels, lengths))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.labels, b.labels)


def test_some_rows_are_written_plainly_as_on_a_page(mnist, monkeypatch):
    """PLAIN_ROWS of the rows are written by synth.render_number (no marks, slant, baseline
    or box edge), the others as amounts (synth.render_amount)."""
    from digitrec.training import number_data, synth

    written = []
    for name in ("render_number", "render_amount"):
        real = getattr(synth, name)
        monkeypatch.setattr(synth, name,
                            lambda *a, _real=real, _name=name, **k: written.append(_name) or _real(*a, **k))
    row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=40, seed=2, workers=1)
    assert len(written) == 40 and 4 <= written.count("render_number") <= 18
    written.clear()
    monkeypatch.setattr(number_data, "PLAIN_ROWS", 0.0)
    row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=10, seed=2, workers=1)
    assert written == ["render_amount"] * 10


def test_rows_can_be_rendered_in_chosen_conditions(mnist):
    """--conditions: the conditions come in turn (a name given twice, twice as often);
    an unknown one is refused before anything is rendered."""
    from digitrec.training.number_data import _rows

    _, conditions, _, _ = _rows(mnist.x_train[:300], 6, seed=2, stream=8, conditions=["chalk", "printed", "chalk"])
    assert list(conditions) == ["chalk", "printed", "chalk"] * 2
    chalk = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=3, seed=2, workers=1,
                         conditions=["chalk"])
    scan = row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=3, seed=2, workers=1,
                        conditions=["scan"])
    assert len(scan.x) == 3 and not np.array_equal(chalk.x, scan.x[: len(chalk.x)])
    with pytest.raises(ValueError, match="crayon"):
        row_examples(mnist.x_train[:300], mnist.y_train[:300], numbers=3, seed=2, conditions=["crayon"])


def test_the_rows_are_written_by_three_populations_in_one_size():
    """digit_pool: MNIST, ARDIS and USPS training digits, each set equally often, all in
    MNIST's box (USPS's 16x16 digits, which fill their box, scaled to MNIST's 20 pixels)."""
    from digitrec.training.datasets import load

    x, y = row_reader.digit_pool(("mnist", "ardis", "usps"), data_dir())
    assert x.shape == (180000, 28, 28) and len(y) == len(x)
    usps = x[120000:]
    assert np.array_equal(usps[:10], mnist_box(load("usps", data_dir()).x_train[:10]))
    for part in (x[:1000], x[60000:61000], usps[:1000]):
        tall = [np.ptp(np.nonzero(d.max(1) > 60)[0]) + 1 for d in part]
        wide = [np.ptp(np.nonzero(d.max(0) > 60)[0]) + 1 for d in part]
        assert 18 <= np.median(np.maximum(tall, wide)) <= 21
    for part in (x[60000:61000], usps[:1000]):  # MNIST's margin around the others' digits
        assert all(d[:3].max() == 0 and d[-3:].max() == 0 and d[:, :3].max() == 0 for d in part)


def test_amounts_close_with_small_zeros_and_european_ones_as_cheques_do(mnist):
    """synth.small_zeros: an amount's closing run of zeros written at 50-80% of its height,
    on the line the full-size zero stood on, its other digits untouched; an amount not
    ending in two zeros, or all zeros, unchanged. synth.european: a 1 gains a flag to its
    left, a 7 a bar; other digits unchanged."""
    from digitrec.training import synth

    x, y = mnist.x_test, mnist.y_test
    pick = {d: x[np.flatnonzero(y == d)[0]] for d in range(10)}
    rng = np.random.default_rng(0)

    def rows(d):
        r = np.flatnonzero(d.max(1) > 30)
        return r[0], r[-1]

    digits = [pick[3], pick[0], pick[0], pick[0]]
    out = synth.small_zeros(digits, [3, 0, 0, 0], rng)
    assert out[0] is digits[0]
    for before, after in zip(digits[1:], out[1:]):
        (t0, b0), (t1, b1) = rows(before), rows(after)
        assert 0.45 <= (b1 - t1 + 1) / (b0 - t0 + 1) <= 0.9 and b1 == b0
    for label in ([3, 0, 5], [0, 0], [4, 0]):
        same = synth.small_zeros([pick[d] for d in label], label, rng)
        assert all(a is pick[d] for a, d in zip(same, label))

    left = lambda d: np.flatnonzero(d.max(0) > 100)[0]  # noqa: E731
    for style in ("straight", "arc"):
        one = synth.european(pick[1], 1, rng, style)
        assert left(one) < left(pick[1]) and (one > 100).sum() > (pick[1] > 100).sum()
    with pytest.raises(ValueError, match="unknown style"):
        synth.european(pick[1], 1, rng, "Arc")
    seven = synth.european(pick[7], 7, rng)
    assert (seven > 100).sum() > (pick[7] > 100).sum()
    assert synth.european(pick[4], 4, rng) is pick[4]



def test_amounts_are_written_with_the_pen_lifted_as_people_write_them(mnist, monkeypatch):
    """synth.pen_lift: a digit in two strokes that do not meet (more pieces of ink, a
    little ink gone, none added); synth.european with LIFTED_FLAG: a 1's flag stands
    apart from its stem (two pieces), as real cheques' 1s read as "11" showed."""
    from digitrec.training import synth

    x, y = mnist.x_test, mnist.y_test
    rng = np.random.default_rng(3)

    def pieces(d):
        return _pieces(d, 127)

    split = 0
    for five in x[np.flatnonzero(y == 5)[:20]]:
        lifted = synth.pen_lift(five, rng)
        assert lifted.shape == five.shape and lifted.dtype == np.uint8
        assert (lifted <= five).all() and (lifted > 100).sum() < (five > 100).sum()
        split += pieces(lifted) > pieces(five)
    assert split >= 10  # most cuts leave the digit in two strokes

    ones = [d for d in x[np.flatnonzero(y == 1)[:40]] if pieces(d) == 1]
    flags = itertools.cycle(("straight", "arc"))
    monkeypatch.setattr(synth, "LIFTED_FLAG", 1.0)
    assert np.mean([pieces(synth.european(d, 1, rng, s)) == 2 for d, s in zip(ones, flags)]) >= 0.75
    monkeypatch.setattr(synth, "LIFTED_FLAG", 0.0)
    assert np.mean([pieces(synth.european(d, 1, rng, s)) == 1 for d, s in zip(ones, flags)]) >= 0.9

    # the same flag (same draws) straight and bowed: what the bow adds lies above what it leaves
    higher = []
    for i, d in enumerate(ones):
        straight, arc = (synth.european(d, 1, np.random.default_rng([5, i]), s) > 100 for s in ("straight", "arc"))
        added, left_out = np.nonzero(arc & ~straight)[0], np.nonzero(straight & ~arc)[0]
        higher.append(len(added) > 0 and (len(left_out) == 0 or added.mean() < left_out.mean()))
    assert np.mean(higher) >= 0.85


def test_a_cursive_one_closes_a_loop_right_of_its_stem(mnist):
    """synth.european's "loop" 1 (a cursive l, as real cheques' 1s read as 4 or 8 showed):
    a stroke crosses the stem, bulges right of it and ends on its top, so most such 1s hold
    a hole (which no MNIST 1 does) right of the stem and reach further right than the stem
    did; no more pieces of ink than before."""
    import cv2

    from digitrec.training import synth

    x, y = mnist.x_test, mnist.y_test
    ones = x[np.flatnonzero(y == 1)[:40]]
    rng = np.random.default_rng(0)

    def holes(d):  # mean columns of the paper pieces (4-connected) not touching the border
        n, labels = cv2.connectedComponents((d <= 100).astype(np.uint8), connectivity=4)
        border = set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist())
        return [np.nonzero(labels == k)[1].mean() for k in range(1, n) if k not in border]

    def right(d):
        return np.flatnonzero(d.max(0) > 100)[-1]

    assert all(not holes(d) for d in ones)
    loops = [synth.european(d, 1, rng, "loop") for d in ones]
    looped = [(paper, d) for a, d in zip(loops, ones) if (paper := holes(a))]
    assert len(looped) >= 0.6 * len(ones)
    stem = lambda d: np.nonzero(d > 100)[1].mean()  # noqa: E731
    assert np.mean([min(paper) > stem(d) for paper, d in looped]) >= 0.9
    assert np.mean([right(a) > right(d) for a, d in zip(loops, ones)]) >= 0.75
    assert all(_pieces(a, 100) <= _pieces(d, 100) for a, d in zip(loops, ones))



def test_digits_of_an_amount_can_be_joined_by_cursive_strokes(mnist):
    """synth.number_coverage with ``joined``: each digit not touching the one before is
    tied to it by a thin stroke (the row's ink in one piece, as cheques' "000" are
    written), each digit written at its own size."""
    from digitrec.training import synth

    x, y = mnist.x_test, mnist.y_test
    digits = [x[np.flatnonzero(y == d)[0]] for d in (2, 3, 0, 0)]

    def pieces(a):
        return _pieces(a, 0.5)

    apart, boxes = synth.number_coverage(digits, np.random.default_rng(1), 56, touching=0, broken=0)
    tied, tied_boxes = synth.number_coverage(digits, np.random.default_rng(1), 56, touching=0, broken=0,
                                             joined=1.0)
    assert pieces(apart) >= 4 and pieces(tied) == 1
    assert [b[2:] for b in tied_boxes] == [b[2:] for b in boxes]  # the same digits, each its size


def test_a_thin_faint_stroke_keeps_its_ink():
    """synth.stroke_alpha: a 1-pixel stroke at two thirds of full ink (an ARDIS pen) is
    drawn along its whole length at every size, not cut away with the blur's faint edge."""
    import cv2

    from digitrec.training import synth

    d = np.zeros((28, 28), np.uint8)
    cv2.line(d, (9, 4), (18, 23), 170, 1)
    for size in (40, 56, 84):
        ink = cv2.dilate((synth.stroke_alpha(d, size, "normal") > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
        k = size / 28
        along = [(int((9 + t * 9 + 0.5) * k), int((4 + t * 19 + 0.5) * k)) for t in np.linspace(0.1, 0.9, 17)]
        assert np.mean([ink[y, x] for x, y in along]) >= 0.9, size


def test_a_hand_writes_its_digits_wide_or_narrow(mnist):
    """synth.number_coverage with ``wide``: every digit of the row keeps its height and is
    that many times wider for it (one factor a row); by default MNIST's shapes are kept."""
    from digitrec.training import synth

    x, y = mnist.x_test, mnist.y_test
    digits = [x[np.flatnonzero(y == d)[0]] for d in (5, 0, 2)]
    kw = dict(touching=0, broken=0)
    plain, boxes = synth.number_coverage(digits, np.random.default_rng(1), 56, **kw)
    same, same_boxes = synth.number_coverage(digits, np.random.default_rng(1), 56, wide=(1.0, 1.0), **kw)
    assert same_boxes == boxes and np.array_equal(same, plain)
    _, wide_boxes = synth.number_coverage(digits, np.random.default_rng(1), 56, wide=(1.5, 1.5), **kw)
    _, narrow_boxes = synth.number_coverage(digits, np.random.default_rng(1), 56, wide=(0.8, 0.8), **kw)
    for b, w, n in zip(boxes, wide_boxes, narrow_boxes):  # aspects: each digit's size varies a little
        aspect = b[2] / b[3]
        assert 1.35 * aspect <= w[2] / w[3] <= 1.65 * aspect and 0.7 * aspect <= n[2] / n[3] <= 0.9 * aspect


def test_a_larger_reader_grown_from_a_smaller_one_reads_as_it_did(mnist, tmp_path):
    """--blocks / --rnn-layers with --init: the added layers start at zero, so the grown
    reader's columns are the smaller reader's until it trains; a smaller reader cannot
    take a larger one's weights."""
    strip = _strip(mnist, seed=26)
    small = keras.models.load_model(store.ROW_READER, compile=False)
    big = row_reader.build(blocks=1, rnn_layers=2)
    assert big.count_params() > small.count_params()
    row_reader.grow(big, str(store.ROW_READER))
    np.testing.assert_allclose(big(strip), small(strip), atol=1e-5)
    big.save(tmp_path / "big.keras")
    with pytest.raises(ValueError, match="grow"):
        row_reader.grow(row_reader.build(rnn_layers=2), str(tmp_path / "big.keras"))


def test_log_likelihood_is_the_training_loss_negated():
    """The NumPy forward pass used at reading time gives what TensorFlow's CTC loss, the
    training objective, gives: repeated digits (which need a blank between them) included."""
    rng = np.random.default_rng(3)
    columns = rng.dirichlet(np.full(BLANK + 1, 0.3), size=FRAMES).astype(np.float32)
    for digits in ([4, 2], [7], [3, 3, 3], [1, 2, 1, 2, 0, 0, 9, 8]):
        labels = np.full((1, MAX_DIGITS), -1, np.int32)
        labels[0, : len(digits)] = digits
        loss = float(row_reader.ctc_loss(labels, columns[None])[0])
        assert abs(log_likelihood(columns, digits) + loss) < 1e-3 * max(1.0, loss), digits


@pytest.mark.slow
def test_a_brief_training_saves_a_row_reader_its_export_and_its_card(mnist, tmp_path):
    out = tmp_path / "r.keras"
    cfg = RowReaderConfig(numbers=60, epochs=1, held_out=10, out=str(out), workers=1, data=str(data_dir()))
    path, card = row_reader.train_row_reader(cfg, verbose=0)
    assert path == out and store.card_path(out).exists()
    assert card["format"] == "digitrec-row-reader-card/1"
    assert 54 <= card["examples"]["rows"] <= 60 and "mnist, ardis, usps" in card["examples"]["source"]
    assert card["held_out"]["rows"] == card["examples"]["rows"] // 10  # at most a tenth held out
    # the export reading loads (its GRU unrolled) gives the saved model's columns
    strip = _strip(mnist, seed=25)
    columns = engine.load(store.lite_path(out))(strip)
    assert columns.shape == (1, FRAMES, BLANK + 1)
    np.testing.assert_allclose(columns, keras.models.load_model(out, compile=False)(strip), atol=export.AGREEMENT)


@pytest.mark.slow
def test_training_can_start_from_a_trained_reader(mnist, tmp_path, monkeypatch):
    """--init: the run starts from the shipped reader's weights (a tiny learning rate keeps
    them), where a run from scratch reads nothing after one epoch on 50 rows."""
    # saving (and its export, tested above) is not what this test is about
    monkeypatch.setattr(export, "save_model", lambda model, path, card, reading_model=None: path)
    out = tmp_path / "r.keras"
    cfg = RowReaderConfig(numbers=60, epochs=1, held_out=10, out=str(out), workers=1, seed=7,
                          data=str(data_dir()), init=str(store.ROW_READER), learning_rate=1e-9)
    _, card = row_reader.train_row_reader(cfg, verbose=0)
    assert card["held_out"]["read_exactly"] >= 0.5
    assert card["init"]["path"] == str(store.ROW_READER) and len(card["init"]["sha256"]) == 64
    assert card["init"]["rows"] > 1000  # what the shipped reader was trained on


def test_train_row_reader_command_line_defaults():
    args = cli.build_parser().parse_args(["train-row-reader"])
    assert args.func is cli._cmd_train_row_reader
    assert (args.numbers, args.epochs, args.out) == (RowReaderConfig.numbers, RowReaderConfig.epochs, None)
    assert (args.conditions, args.blocks, args.rnn_layers) == (
        RowReaderConfig.conditions, RowReaderConfig.blocks, RowReaderConfig.rnn_layers)
