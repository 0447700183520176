"""Training examples for the two number networks, from real handwriting and rendered.

    strips(...)   -> Strips     what the recognizer learns from: boxes of real numbers
                                 (orand-train, danish-rows: the training parts) cut as
                                 reading cuts a detected box, each several times with its
                                 box's edges moved a little; and numbers rendered from the
                                 training digits of MNIST (each number in one writer's
                                 hand), ARDIS and USPS, as amounts on cheques and forms
                                 and plainly as on a page

Real labels are digits only (a cheque's ``18.014`` is labelled ``18014``); rendered ones
also hold the marks written between digits. The recognizer's loss takes a label of
digits only as saying nothing about marks (:func:`digitrec.training.recognizer.ctc_loss`).

Rendering runs in worker processes; this module imports no TensorFlow.
"""
from __future__ import annotations

import csv
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

from digitrec.reading import ink as inkmod
from digitrec.reading.recognize import ALPHABET, HEIGHT, MARGIN, WIDTH, strip

MAX_CHARS = 16  # the longest label a strip may have
JITTER = 0.12  # a real box's edges move up to this x its height either way (a detector's error)
LENGTHS = (1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8)  # digits in a rendered number, drawn from these
PLAIN = 0.3  # rendered numbers written plainly, as on a page (no marks, slant, baseline or box edge)
HANDS = {"mnist": 0.6, "ardis": 0.2, "usps": 0.2}  # whose digits write a rendered number
CHUNK = 50  # numbers rendered per worker task
KEPT_MARKS = ".,-/"


@dataclass
class Strips:
    x: np.ndarray  # (n, HEIGHT, WIDTH) uint8: the strip's ink x 255
    labels: np.ndarray  # (n, MAX_CHARS + 1) int32: characters (ALPHABET indices) padded with -1, and
    #                     in the last column 1 where the label is digits only (a real number's)
    source: np.ndarray  # (n,) str: where each strip came from ("orand-train", "danish-rows", "rendered")
    seconds: float


def encode(text: str, digits_only: bool) -> np.ndarray:
    out = np.full(MAX_CHARS + 1, -1, np.int32)
    codes = [ALPHABET.index(c) for c in text][:MAX_CHARS]
    out[: len(codes)] = codes
    out[-1] = int(digits_only)
    return out


def _workers(workers: int | None) -> int:
    return max(1, workers or len(os.sched_getaffinity(0)))


def _map(fn, tasks: list, workers: int | None) -> list:
    n = _workers(workers)
    if n == 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(n, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, tasks))


# --- real numbers -------------------------------------------------------------------------

def jittered(box, rng: np.random.Generator, jitter: float = JITTER):
    """``box`` with each edge moved by up to ``jitter`` x its height, in or out."""
    x, y, w, h = box
    d = rng.uniform(-jitter, jitter, 4) * h
    x0, y0, x1, y1 = x + d[0], y + d[1], x + w + d[2], y + h + d[3]
    return (x0, y0, max(1.0, x1 - x0), max(1.0, y1 - y0))


def _real_chunk(task):
    import cv2

    from digitrec.reading.decode import load_image

    cv2.setNumThreads(1)
    numbers, copies, jitter, seed = task
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for path, text, box in numbers:
        g = inkmod.gray(load_image(path))
        for k in range(copies):
            s = strip(g, jittered(box, rng, jitter), MARGIN)
            x = s.x if k == 0 or not jitter else varied(s.x, s.width, rng)
            xs.append(np.round(x * 255).astype(np.uint8))
            ys.append(encode(text, True))
    return xs, ys


SHEAR = 0.25  # a real strip's copies lean up to this x their height either way...
STRETCH = (0.85, 1.15)  # ...are this many times as wide...
PEN = 0.3  # ...and with this probability written with a pen a pixel thicker or thinner


def varied(x: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """Another hand's copy of a real number's strip (ink, ``width`` columns of it used):
    leant, stretched across, and its pen made thicker or thinner."""
    import cv2

    shear = float(rng.uniform(-SHEAR, SHEAR))
    stretch = float(rng.uniform(*STRETCH))
    m = np.float32([[stretch, -shear, max(0.0, shear) * HEIGHT], [0, 1, 0]])
    out = cv2.warpAffine(x, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderValue=0)
    if rng.random() < PEN:
        kernel = np.ones((2, 2), np.uint8)
        out = cv2.dilate(out, kernel) if rng.random() < 0.5 else cv2.erode(out, kernel)
    return out


def real_strips(numbers, copies: int, seed: int, workers: int | None = None, jitter: float = JITTER):
    """Strips of ``numbers`` (:class:`real_numbers.RealNumber` with a box), ``copies`` of
    each, the box's edges moved by up to ``jitter`` x its height."""
    with_box = [(str(n.path), n.text, n.box) for n in numbers if n.box]
    tasks = [(with_box[i: i + 200], copies, jitter, [seed, i]) for i in range(0, len(with_box), 200)]
    results = _map(_real_chunk, tasks, workers)
    return [x for r in results for x in r[0]], [y for r in results for y in r[1]]


# --- rendered numbers ---------------------------------------------------------------------

def mnist_box(x: np.ndarray) -> np.ndarray:
    """Digits of any set and size (ink bright on dark) as MNIST holds them: the ink's box
    scaled to 20 pixels on its long side and centred in 28x28, so that digits from
    several populations written side by side are one size."""
    import cv2

    out = np.zeros((len(x), 28, 28), np.uint8)
    for i, d in enumerate(x):
        ys, xs = np.nonzero(d > 60)
        if len(ys) == 0:
            continue
        ink = d[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        h, w = ink.shape
        k = 20.0 / max(h, w)
        nh, nw = max(1, round(h * k)), max(1, round(w * k))
        small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        top, left = (28 - nh) // 2, (28 - nw) // 2
        out[i, top: top + nh, left: left + nw] = small
    return out


@dataclass
class Hands:
    """Training digits grouped by who wrote them: ``hands[k][d]`` are the indices in ``x``
    of digit ``d`` by hand ``k``; ``sets[k]`` names the set a hand belongs to."""

    x: np.ndarray  # (n, 28, 28) uint8 in the MNIST box
    hands: list
    sets: list


def hands(data=None) -> Hands:
    """MNIST's training digits by writer (``mnist-writers``), and ARDIS's and USPS's
    training digits as one hand each (their writers are not known)."""
    from digitrec.training.datasets import DataError, find_data_dir, load

    xs, groups, sets = [], [], []
    offset = 0
    for name in HANDS:
        s = load(name, data)
        x = s.x_train if name == "mnist" else mnist_box(s.x_train)
        y = s.y_train
        if name == "mnist":
            path = find_data_dir(data, "mnist-writers") / "mnist-train-writers.csv"
            if not path.exists():
                raise DataError(f"{path} is missing: who wrote each MNIST training digit")
            with open(path, newline="") as f:
                writers = [r["writer"] for r in csv.DictReader(f)]
            if len(writers) != len(x):
                raise DataError(f"{path}: {len(writers)} writers for {len(x)} digits")
            by: dict[str, list] = {}
            for i, w in enumerate(writers):
                by.setdefault(w, []).append(i)
            members = list(by.values())
        else:
            members = [list(range(len(x)))]
        for m in members:
            m = np.asarray(m)
            groups.append([offset + m[y[m] == d] for d in range(10)])
            sets.append(name)
        xs.append(x)
        offset += len(x)
    return Hands(np.concatenate(xs), groups, sets)


def _items_text(items, labels) -> str:
    """The text of a rendered amount: its digits, and the marks between them."""
    last = max(i for i, it in enumerate(items) if not isinstance(it, str))
    out, k = [], 0
    for i, it in enumerate(items):
        if isinstance(it, str):
            if it in KEPT_MARKS and 0 < i < last:
                out.append(it)
        else:
            out.append(str(labels[k]))
            k += 1
    return "".join(out)


def _rendered_chunk(task):
    import cv2

    from digitrec.training import synth

    cv2.setNumThreads(1)
    numbers, seed = task
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for digits, labels in numbers:
        digits = [synth.european(d, int(k), rng) if rng.random() < synth.EUROPEAN else d
                  for d, k in zip(digits, labels)]
        digits = [synth.pen_lift(d, rng) if rng.random() < synth.PEN_LIFT else d for d in digits]
        if rng.random() < synth.SMALL_ZEROS:
            digits = synth.small_zeros(digits, labels, rng)
        try:
            if rng.random() < PLAIN:
                image, _, _ = synth.render_number(digits, rng)
                text = "".join(map(str, labels))
            else:
                items = synth.amount_items(digits, rng)
                k = iter(labels)
                text = _items_text(items, [next(k) for it in items if not isinstance(it, str)])
                image, _, _ = synth.render_amount(items, rng, joined=synth.JOINED, wide=synth.WIDE)
        except ValueError:  # faint digits written too small to leave any ink
            continue
        g = inkmod.gray(image)
        h, w = g.shape
        box = jittered((0, 0, w, h), rng, 0.05)  # a tight crop already: its edges moved a little
        xs.append(np.round(strip(g, box, 0.0).x * 255).astype(np.uint8))
        ys.append(encode(text, False))
    return xs, ys


def rendered_strips(h: Hands, count: int, seed: int, workers: int | None = None):
    """``count`` numbers written by the hands of ``h``, one hand a number."""
    rng = np.random.default_rng([seed, 31])
    names = list(HANDS)
    p = np.array([HANDS[n] for n in names])
    by_set = {n: [k for k, s in enumerate(h.sets) if s == n] for n in names}
    numbers = []
    for _ in range(count):
        hand = h.hands[int(rng.choice(by_set[str(rng.choice(names, p=p))]))]
        n = int(rng.choice(LENGTHS))
        labels = []
        idx = []
        for _ in range(n):
            d = int(rng.integers(10))
            if not len(hand[d]):  # a writer who never wrote this digit: another one
                d = int(rng.choice([k for k in range(10) if len(hand[k])]))
            labels.append(d)
            idx.append(int(rng.choice(hand[d])))
        numbers.append((h.x[idx], labels))
    tasks = [(numbers[i: i + CHUNK], [seed, i]) for i in range(0, count, CHUNK)]
    results = _map(_rendered_chunk, tasks, workers)
    return [x for r in results for x in r[0]], [y for r in results for y in r[1]]


def strips(real: dict, rendered: int, seed: int, data=None, workers: int | None = None) -> Strips:
    """The recognizer's examples: ``real`` maps a set's name to (numbers, copies); and
    ``rendered`` numbers written by the training digits' hands."""
    start = time.time()
    xs, ys, src = [], [], []
    for k, (name, (numbers, copies)) in enumerate(real.items()):
        x, y = real_strips(numbers, copies, seed + 1000 * k, workers)
        xs += x
        ys += y
        src += [name] * len(x)
    if rendered:
        x, y = rendered_strips(hands(data), rendered, seed, workers)
        xs += x
        ys += y
        src += ["rendered"] * len(x)
    return Strips(np.stack(xs) if xs else np.zeros((0, HEIGHT, WIDTH), np.uint8),
                  np.stack(ys) if ys else np.zeros((0, MAX_CHARS + 1), np.int32),
                  np.asarray(src), round(time.time() - start, 1))


__all__ = ["Strips", "strips", "real_strips", "rendered_strips", "hands", "Hands", "mnist_box", "encode",
           "jittered", "MAX_CHARS"]


# --- the detector's pictures ----------------------------------------------------------------

@dataclass
class Pictures:
    x: np.ndarray  # (n, SIDE, SIDE) uint8: the detector's input (detect.prepare) x 255
    y: np.ndarray  # (n, CELLS, CELLS, 5) float16: its targets (detect.targets)
    kinds: np.ndarray  # (n,) str: what each picture is (see MIX)
    seconds: float


MIX = {  # what the detector's training pictures are, and their shares
    "page": 0.30,  # rendered pages of 1-4 numbers, a real amount laid on some
    "amount": 0.20,  # a real cheque amount's field, as cut from the cheque
    "cell": 0.25,  # a real register cell
    "column": 0.10,  # register cells stacked, as the column of a page
    "large": 0.08,  # one number filling most of the picture (a canvas, a close photo)
    "blank": 0.07,  # paper, boards, noise: nothing written
}


WORDS = 0.4  # pages, register cells and blanks with handwritten or printed words on them: no number
# what words say when they are set in a font (a register's dates and notes, a form's print)
FONT_WORDS = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
              "november", "december", "sept", "den", "dito", "født", "døbt", "gift", "Trykt for Kirkeministeriet",
              "Navn", "Dato", "Sum", "Kroner", "pesos", "total", "Name", "Date", "Amount", "Signature")
HANDWRITTEN_WORDS = 0.5  # ...written with the letters of letters/' training writers, the rest in a font
# Of the words, those that are a date with its month's name ("16 april"): a number is a
# number written on its own; a day written before its month is part of a date, which is
# text (a register's cell holds its row number, and often a date below it).
DATES = 0.3
MONTHS = FONT_WORDS[:13]


def date_ink(day: list, word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A handwritten date: ``day`` (one or two digits of a hand, 28x28 ink bright on
    dark), a space, then ``word`` (a word's ink, :func:`word_ink`). Returns its ink."""
    parts = []
    for digit in day:
        cols = np.nonzero(digit.max(axis=0) > 60)[0]
        if len(cols):
            parts += [digit[:, cols[0]: cols[-1] + 1], np.zeros((28, int(rng.integers(1, 4))), np.uint8)]
    if word.shape[0] != 28:
        import cv2

        word = cv2.resize(word, (max(1, round(word.shape[1] * 28 / word.shape[0])), 28), interpolation=cv2.INTER_AREA)
    parts += [np.zeros((28, int(rng.integers(6, 16))), np.uint8), word]
    return np.concatenate(parts, 1)


def word_ink(letters: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A word written with ``letters`` (one writer's letters, 28x28 ink bright on dark, as
    :func:`digitrec.training.nondigits.load_letters` holds them): 3-8 of them side by side
    at 1-4 pixels apart, each a little up or down. Returns the word's ink (uint8, bright)."""
    parts = []
    for k in rng.integers(0, len(letters), int(rng.integers(3, 9))):
        cols = np.nonzero(letters[k].max(axis=0) > 60)[0]
        if not len(cols):
            continue
        letter = np.roll(letters[k][:, cols[0]: cols[-1] + 1], int(rng.integers(-2, 3)), axis=0)
        parts += [letter, np.zeros((28, int(rng.integers(1, 5))), np.uint8)]
    return np.concatenate(parts, 1) if parts else np.zeros((28, 28), np.uint8)


def font_ink(rng: np.random.Generator) -> np.ndarray:
    """A word of :data:`FONT_WORDS` (or random lower-case letters, or a date with its
    month's name) in one of OpenCV's Hershey fonts, any pen, maybe italic. Returns its
    ink (uint8, bright on dark)."""
    import cv2

    from digitrec.training.nondigits import FONTS

    if rng.random() < DATES:
        text = f"{int(rng.integers(1, 32))}{'.' if rng.random() < 0.3 else ''} {rng.choice(MONTHS)}"
    elif rng.random() < 0.7:
        text = str(rng.choice(FONT_WORDS)).replace("ø", "o")  # the Hershey fonts are ASCII
    else:
        text = "".join(rng.choice(list("abcdefghijkmnoprstuvy"), int(rng.integers(3, 9))))
    font = getattr(cv2, str(rng.choice(FONTS))) | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    pen = int(rng.integers(1, 4))
    (w, h), base = cv2.getTextSize(text, font, 1.0, pen)
    canvas = np.zeros((h + base + 2 * pen + 4, w + 2 * pen + 4), np.uint8)
    cv2.putText(canvas, text, (pen + 2, h + pen + 2), font, 1.0, 255, pen, cv2.LINE_AA)
    return canvas


def _paste_ink(page: np.ndarray, boxes: list, ink: np.ndarray, height: float, rng: np.random.Generator) -> None:
    """Write ``ink`` (bright on dark) on ``page`` (grey, dark ink) at about ``height``
    pixels tall, in the page's own ink tone, where it keeps clear of ``boxes`` (the
    numbers, which it must not touch); nowhere if there is no room. It is no number: no box."""
    import cv2

    H, W = page.shape
    k = max(0.05, height / max(1, ink.shape[0]))
    h, w = max(2, int(ink.shape[0] * k)), max(2, int(ink.shape[1] * k))
    if w >= W - 2 or h >= H - 2:
        k = min((W - 3) / ink.shape[1], (H - 3) / ink.shape[0])
        h, w = max(2, int(ink.shape[0] * k)), max(2, int(ink.shape[1] * k))
        if w < 4 or h < 2:
            return
    tone = float(np.percentile(page, 1)) if boxes else float(rng.uniform(20, 90))
    tone = min(tone, float(np.median(page)) - 60)
    alpha = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    for _ in range(10):
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        if all(x + w + 2 < bx or bx + bw + 2 < x or y + h + 2 < by or by + bh + 2 < y for bx, by, bw, bh in boxes):
            region = page[y: y + h, x: x + w].astype(np.float32)
            page[y: y + h, x: x + w] = np.round(region * (1 - alpha) + tone * alpha).clip(0, 255).astype(np.uint8)
            return


def _paste(page: np.ndarray, boxes: list, crop: np.ndarray, box, rng: np.random.Generator) -> None:
    """Lay ``crop`` (a real number's picture, its number at ``box``) on ``page`` where it
    keeps clear of ``boxes``, at a size for the page; the number's box joins ``boxes``."""
    import cv2

    H, W = page.shape[:2]
    for _ in range(10):
        k = rng.uniform(1 / 16, 1 / 5) * H / max(1, box[3])
        h, w = max(2, int(crop.shape[0] * k)), max(2, int(crop.shape[1] * k))
        if w >= W - 2 or h >= H - 2:
            continue
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        bx, by, bw, bh = int(x + box[0] * k), int(y + box[1] * k), max(1, int(box[2] * k)), max(1, int(box[3] * k))
        if all(bx + bw + bh < ox or ox + ow + bh < bx or by + bh + bh // 2 < oy or oy + oh + bh // 2 < by
               for ox, oy, ow, oh in boxes) and all(x + w < ox or ox + ow < x or y + h < oy or oy + oh < y
                                                   for ox, oy, ow, oh in boxes):
            page[y: y + h, x: x + w] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
            boxes.append((bx, by, bw, bh))
            return


def _gray_u8(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    return image


def _picture_chunk(task):
    import cv2

    from digitrec.reading.decode import load_image
    from digitrec.reading.detect import prepare, targets
    from digitrec.training import synth

    cv2.setNumThreads(1)
    kinds, numbers, amounts, cells, words, seed = task
    rng = np.random.default_rng(seed)
    xs, ys, out_kinds = [], [], []
    amounts_i, cells_i, numbers_i, words_i = iter(amounts), iter(cells), iter(numbers), iter(words)
    for kind in kinds:
        try:
            if kind in ("page", "large"):
                many = [next(numbers_i) for _ in range(int(rng.integers(1, 5)) if kind == "page" else 1)]
                items = [synth.amount_items(list(d), rng) if rng.random() < 0.5 else list(d) for d in many]
                tall = (1 / 20, 1 / 6) if kind == "page" else (1 / 4, 1 / 2)
                image, _, boxes, _ = synth.render_page(items, rng, height=int(rng.integers(300, 700)),
                                                        digit_height=tall)
                image, boxes = _gray_u8(image), list(boxes)
                if kind == "page" and rng.random() < 0.4:
                    path, box = next(amounts_i)
                    _paste(image, boxes, _gray_u8(load_image(path)), box, rng)
            elif kind == "amount":
                path, box = next(amounts_i)
                image, boxes = load_image(path), [box]
            elif kind == "cell":
                path, box = next(cells_i)
                image, boxes = load_image(path), [box]
            elif kind == "column":
                parts, boxes, y0 = [], [], 0
                width = None
                for _ in range(int(rng.integers(2, 6))):
                    path, box = next(cells_i)
                    cell = _gray_u8(load_image(path))
                    width = width or cell.shape[1]
                    k = width / cell.shape[1]
                    cell = cv2.resize(cell, (width, max(1, int(cell.shape[0] * k))), interpolation=cv2.INTER_AREA)
                    parts.append(cell)
                    boxes.append((int(box[0] * k), int(y0 + box[1] * k), max(1, int(box[2] * k)),
                                  max(1, int(box[3] * k))))
                    y0 += cell.shape[0]
                image = np.concatenate(parts, 0)
            else:
                kind_of_blank = str(rng.choice(synth.BLANKS))
                image, boxes = synth.render_blank(kind_of_blank, rng, int(rng.choice((60, 160, 400)))), []
            if kind in ("page", "cell", "column", "blank") and rng.random() < WORDS:
                # words beside the numbers, or on their own: writing that is no number
                image = _gray_u8(image)
                heights = [b[3] for b in boxes] or [image.shape[0] * rng.uniform(1 / 20, 1 / 6)]
                for _ in range(int(rng.integers(1, 4))):
                    word = next(words_i, None) if rng.random() < HANDWRITTEN_WORDS else None
                    word = font_ink(rng) if word is None else word
                    _paste_ink(image, boxes, word, float(rng.choice(heights)) * rng.uniform(0.6, 1.1), rng)
        except (ValueError, StopIteration):
            continue
        x, scale = prepare(inkmod.gray(image))
        xs.append(np.round(x * 255).astype(np.uint8))
        ys.append(targets(boxes, scale).astype(np.float16))
        out_kinds.append(kind)
    return xs, ys, out_kinds


def pictures(count: int, amounts, cells, seed: int, data=None, workers: int | None = None) -> Pictures:
    """``count`` training pictures for the detector (:data:`MIX`): ``amounts`` and ``cells``
    are real numbers with boxes (orand-train's and danish-rows' training parts)."""
    from digitrec.reading.detect import CELLS, SIDE
    from digitrec.training import nondigits

    start = time.time()
    rng = np.random.default_rng([seed, 47])
    names = list(MIX)
    kinds = rng.choice(names, size=count, p=np.array([MIX[k] for k in names]))
    h = hands(data)
    letters = nondigits.load_letters(data).part(held_out=False)  # the training writers' only
    writers = [np.nonzero(letters.writers == w)[0] for w in sorted(set(letters.writers))]
    amounts = [(str(n.path), n.box) for n in amounts if n.box]
    cells = [(str(n.path), n.box) for n in cells if n.box]
    tasks = []
    for i in range(0, count, CHUNK):
        part = kinds[i: i + CHUNK]
        need_numbers = int(sum(4 if k == "page" else 1 for k in part if k in ("page", "large")))
        numbers = []
        for _ in range(need_numbers):
            hand = h.hands[int(rng.integers(len(h.hands)))]
            n = int(rng.choice(LENGTHS))
            idx = [int(rng.choice(hand[d])) for d in rng.integers(0, 10, n) if len(hand[d])]
            numbers.append(h.x[idx] if idx else h.x[:1])
        need_amounts = int(sum(k in ("page", "amount") for k in part))
        need_cells = int(sum(5 if k == "column" else 1 for k in part if k in ("cell", "column")))
        words = []
        for _ in range(int(sum(k in ("page", "cell", "column", "blank") for k in part))):
            word = word_ink(letters.x[writers[int(rng.integers(len(writers)))]], rng)
            if rng.random() < DATES:  # the day in a hand of the numbers' own
                hand = h.hands[int(rng.integers(len(h.hands)))]
                day = str(int(rng.integers(1, 32)))
                word = date_ink([h.x[int(rng.choice(hand[int(c)]))] for c in day if len(hand[int(c)])], word, rng)
            words.append(word)
        tasks.append((part, numbers,
                      [amounts[j] for j in rng.integers(0, len(amounts), need_amounts)] if amounts else [],
                      [cells[j] for j in rng.integers(0, len(cells), need_cells)] if cells else [],
                      words, [seed, i]))
    results = _map(_picture_chunk, tasks, workers)
    xs = [x for r in results for x in r[0]]
    ys = [y for r in results for y in r[1]]
    return Pictures(np.stack(xs) if xs else np.zeros((0, SIDE, SIDE), np.uint8),
                    np.stack(ys) if ys else np.zeros((0, CELLS, CELLS, 5), np.float16),
                    np.asarray([k for r in results for k in r[2]]), round(time.time() - start, 1))
