"""digitrec.reading.recognize: the strip, the CTC post-processor, the digits' boxes, and the
shipped recognizer on separators, touching digits and long numbers."""
from __future__ import annotations

import numpy as np
import pytest

from digitrec.reading import ink, recognize
from digitrec.reading.recognize import ALPHABET, BLANK, FRAMES, HEIGHT, WIDTH, ctc_decode, number_from, strip
from digitrec.training import synth


def columns(path: str) -> np.ndarray:
    """Per-frame probabilities spelling ``path``: one character (or ``_`` for blank) a frame."""
    probs = np.full((FRAMES, BLANK + 1), 0.01, np.float32)
    for t, c in enumerate(path.ljust(FRAMES, "_")):
        probs[t, BLANK if c == "_" else ALPHABET.index(c)] = 0.9
    return probs


@pytest.mark.parametrize("path, text", [
    ("__11__2__", "12"),  # repeats collapse
    ("_1_1_", "11"),  # a blank between two of a kind keeps both
    ("___", ""),
    ("1.5_00", "1.50"),  # 0 then 0 without a blank is one 0
    ("12-05", "12-05"),
])
def test_ctc_decode_collapses_repeats_and_drops_blanks(path, text):
    assert "".join(c.char for c in ctc_decode(columns(path))) == text


def test_ctc_decode_gives_each_character_its_frames_and_probability():
    probs = columns("_77__3")
    probs[2, ALPHABET.index("7")] = 0.95
    first, second = ctc_decode(probs)
    assert (first.char, first.frames, first.probability) == ("7", (1, 2), pytest.approx(0.95))
    assert (second.char, second.frames) == ("3", (5, 5))


def brute_force_likelihood(probs: np.ndarray, text: str) -> float:
    """P(text) summed over every path of frames that collapses to it (small cases only)."""
    import itertools

    total = 0.0
    for path in itertools.product(range(probs.shape[1]), repeat=len(probs)):
        collapsed = [k for i, k in enumerate(path) if k != BLANK and (i == 0 or path[i - 1] != k)]
        if "".join(ALPHABET[k] for k in collapsed) == text:
            total += float(np.prod([probs[t, k] for t, k in enumerate(path)]))
    return total


@pytest.mark.parametrize("text", ["", "7", "77", "70", "707"])
def test_log_likelihood_sums_every_path_of_the_text(text):
    rng = np.random.default_rng(len(text))
    probs = rng.dirichlet(np.ones(BLANK + 1), size=5)
    expected = np.log(brute_force_likelihood(probs, text))
    assert recognize.log_likelihood(probs, text) == pytest.approx(expected, abs=1e-4)  # PROB_FLOOR's share


def test_several_networks_read_the_candidate_they_find_likeliest_together():
    sure_7 = columns("_7_3")  # one network reads 73, sure of its 7
    sure_1 = columns("_1_3")  # another reads 13
    sure_1[1, ALPHABET.index("7")] = 0.6  # ... but finds a 7 there likely too
    sure_1[1, ALPHABET.index("1")] = 0.7
    for first, second in ((sure_7, sure_1), (sure_1, sure_7)):
        chars = recognize.best_reading(np.stack([first, second]))
        assert "".join(c.char for c in chars) == "73"
        assert chars[0].probability == pytest.approx(0.9)  # as the network that read it decoded it
    agreeing = recognize.best_reading(np.stack([sure_7, columns("__7__3")]))
    assert "".join(c.char for c in agreeing) == "73" and agreeing[0].frames == (1, 1)
    assert recognize.best_reading(sure_1) == ctc_decode(sure_1)  # one network: its best path


def test_strip_keeps_the_aspect_and_maps_back_to_the_picture():
    g = np.full((200, 600), 0.9, np.float32)
    for x0 in range(100, 300, 40):  # the "number": five strokes
        g[80:120, x0: x0 + 8] = 0.1
    s = strip(g, (100, 80, 200, 40), margin=0.25)
    assert s.x.shape == (HEIGHT, WIDTH)
    assert s.origin == (90, 70) and s.width == round(220 * HEIGHT / 60)
    assert s.x[:, s.width:].max() == 0  # padding is paper
    column = int(round((104 - 90) * s.scale[0]))  # the middle of the first stroke
    assert s.x[HEIGHT // 2, column] > 0.9 and s.x[HEIGHT // 2, column + 6] < 0.1


def test_a_long_number_is_squeezed_into_the_strip():
    g = np.full((40, 2000), 0.9, np.float32)
    s = strip(g, (0, 0, 2000, 40), margin=0.0)
    assert s.width == WIDTH


def test_a_mark_read_where_there_is_no_ink_is_dropped():
    g = np.full((40, 320), 1.0, np.float32)
    for x0 in (10, 60, 180):
        g[5:35, x0: x0 + 20] = 0.0
    s = strip(g, (0, 0, 320, 40), margin=0.0)
    frame = lambda x: int(x * s.scale[0] * FRAMES / WIDTH)
    path = ["_"] * FRAMES
    for x, c in ((20, "9"), (70, "0"), (130, "."), (190, "4")):  # the dot over blank paper
        path[frame(x)] = c
    assert number_from(ctc_decode(columns("".join(path))), s).text == "904"


def test_number_from_boxes_digits_and_keeps_marks_between_them():
    g = np.full((40, 320), 1.0, np.float32)
    for x0 in (10, 60, 180, 240):  # four strokes, a dot between the second and third
        g[5:35, x0: x0 + 20] = 0.0
    g[30:35, 130:136] = 0.0
    s = strip(g, (0, 0, 320, 40), margin=0.0)
    frame = lambda x: int(x * s.scale[0] * FRAMES / WIDTH)
    path = ["_"] * FRAMES
    for x, c in ((20, "1"), (70, "5"), (133, "."), (190, "0"), (250, "0"), (300, "-")):
        path[frame(x)] = c
    number = number_from(ctc_decode(columns("".join(path))), s)
    assert number.text == "15.00"  # the closing dash is no part of the number
    xs = [d.box[0] for d in number.digits]
    assert xs == sorted(xs) and all(0 <= d.box[1] <= 5 and d.box[3] >= 28 for d in number.digits)


# --- the shipped recognizer -----------------------------------------------------------------

@pytest.fixture(scope="module")
def network():
    from digitrec import store
    from digitrec.reading import engine

    return engine.load(store.lite_path(store.RECOGNIZER))


def _amount(mnist, pattern, seed, touching=0.0):
    """``pattern`` ("1.500") written with MNIST test digits as an amount, and its text."""
    rng = np.random.default_rng(seed)
    order = iter(rng.permutation(len(mnist.y_test)))
    items, text = [], ""
    for c in pattern:
        if c.isdigit():
            i = next(order)
            items.append(mnist.x_test[i])
            text += str(int(mnist.y_test[i]))
        else:
            items.append(c)
            text += c if c in ".,-/" else ""
    image, _, _ = synth.render_amount(items, rng, condition="scan", touching=touching, broken=0.0)
    return image, text


def _read(network, image):
    g = ink.gray(image)
    return recognize.recognize(network, g, [(0, 0, g.shape[1], g.shape[0])])[0]


def _share_read(network, mnist, pattern, touching=0.0, seeds=range(10)):
    right = 0
    for seed in seeds:
        image, text = _amount(mnist, pattern, seed, touching)
        right += _read(network, image).text == text.rstrip("-")
    return right / len(seeds)


@pytest.mark.parametrize("pattern", ["1.500", "25.000", "3,25", "12/05", "12-05"])
def test_marks_between_digits_are_read(network, mnist, pattern):
    assert _share_read(network, mnist, pattern) >= 0.7


def test_touching_digits_are_read(network, mnist):
    """Every neighbour touching: most such rows of MNIST test digits are read whole."""
    assert _share_read(network, mnist, "38047", touching=1.0, seeds=range(20)) >= 0.6


def test_long_numbers_are_read(network, mnist):
    assert _share_read(network, mnist, "4096125387") >= 0.6


def test_a_closing_dash_is_left_out(network, mnist):
    assert _share_read(network, mnist, "2500-") >= 0.7
