"""Training digits as the preprocessing pipeline delivers them.

At prediction time the model never sees a clean MNIST digit: it sees what
:func:`digitrec.reading.normalize.normalize` makes of a photo, a scan or a canvas, with grainy
chalk, thinned pencil, redrawn pen strokes and the odd remnant of a ruled line. Training
on such images closes that gap. Each image here is a *training* digit rendered by
:func:`digitrec.training.synth.render_digit` into one of its conditions and sizes, then read back
through ``normalize`` (``to_gray`` -> ``ink_mask`` -> ``to_mnist``).

    pipeline_digits(x28, y, n, seed, workers=None) -> PipelineDigits
    number_digits(x28, y, n, seed, workers=None) -> NumberDigits  (digits cut out of numbers)

This module imports no TensorFlow, so the worker processes start quickly.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

CHUNK = 250  # images per task: big enough to amortise the transfer, small enough to balance


@dataclass
class PipelineDigits:
    x: np.ndarray  # (n, 28, 28) uint8: what normalize() made of the rendered digits
    y: np.ndarray  # (n,) labels
    source: np.ndarray  # (n,) index of each image's digit in the x28 it was rendered from
    conditions: np.ndarray  # (n,) the synth condition of each image
    sizes: np.ndarray  # (n,) the 28-box side asked of render_digit
    dropped: int  # renders where normalize found no digit (never shown to the model either)
    seconds: float


def _map(fn, tasks: list, workers: int | None) -> list:
    """``fn`` over ``tasks``, in order, in ``workers`` processes (default: one per CPU)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        return [fn(t) for t in tasks]
    # spawn, not fork: the parent may hold TensorFlow's and OpenCV's threads
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, tasks))


def plan(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Condition and size of the ``n`` renders: every (condition, size) pair equally often."""
    from digitrec.training.synth import CONDITIONS, SIZES

    i = np.arange(n)
    return (np.asarray(CONDITIONS)[i % len(CONDITIONS)],
            np.asarray(SIZES)[(i // len(CONDITIONS)) % len(SIZES)])


def _render_chunk(task) -> tuple[np.ndarray, np.ndarray]:
    """One worker's share: render each digit, normalize it; (uint8 images, ok flags)."""
    import cv2

    from digitrec.reading.normalize import NoDigit, normalize
    from digitrec.training import synth

    cv2.setNumThreads(1)  # the processes are the parallelism
    digits, conditions, sizes, seed = task
    rng = np.random.default_rng(seed)
    out = np.zeros((len(digits), 28, 28), np.uint8)
    ok = np.zeros(len(digits), bool)
    for k, (d28, cond, size) in enumerate(zip(digits, conditions, sizes)):
        image = synth.render_digit(d28, str(cond), rng, size=int(size))
        try:
            out[k] = np.round(normalize(image).x28 * 255)
            ok[k] = True
        except NoDigit:
            pass
    return out, ok


def pipeline_digits(x28: np.ndarray, y: np.ndarray, n: int, seed: int,
                    workers: int | None = None) -> PipelineDigits:
    """``n`` digits drawn at random from ``x28`` (with their labels ``y``), rendered in
    every condition and size and read back through the preprocessing pipeline.

    Deterministic for a given ``seed`` whatever the number of ``workers`` (processes;
    default: one per CPU): each chunk of :data:`CHUNK` images has its own generator."""
    start = time.time()
    rng = np.random.default_rng([seed, 4])
    source = rng.choice(len(x28), size=n, replace=n > len(x28))
    conditions, sizes = plan(n)
    tasks = [(x28[source[i: i + CHUNK]], conditions[i: i + CHUNK], sizes[i: i + CHUNK], [seed, 4, i])
             for i in range(0, n, CHUNK)]
    results = _map(_render_chunk, tasks, workers)
    x = np.concatenate([r[0] for r in results]) if results else np.zeros((0, 28, 28), np.uint8)
    ok = np.concatenate([r[1] for r in results]) if results else np.zeros(0, bool)
    return PipelineDigits(x=x[ok], y=np.asarray(y)[source][ok], source=source[ok],
                          conditions=conditions[ok], sizes=sizes[ok], dropped=int((~ok).sum()),
                          seconds=round(time.time() - start, 1))


# --- digits cut out of rendered numbers -------------------------------------------------
# read_number feeds the model candidate crops of a row (number_candidates): digits cut at
# a valley through a touching stroke, with a neighbour's fragment at an edge, scaled by
# the row. These are such crops of rendered rows of training digits, each labelled with
# the digit whose true box it overlaps most.

NUMBER_LENGTHS = tuple(range(2, 9))  # digits per rendered number (as benchmarks/realworld.py)
NUMBER_CHUNK = 40  # numbers per task
MIN_OVERLAP = 0.5  # a digit whose best candidate overlaps its true box less is dropped


@dataclass
class NumberDigits:
    x: np.ndarray  # (n, 28, 28) uint8: the candidate crops read_number would show the model
    y: np.ndarray  # (n,) labels
    source: np.ndarray  # (n,) index of each digit in the x28 it was rendered from
    conditions: np.ndarray  # (n,) the synth number condition of its row
    number: np.ndarray  # (n,) which rendered number it was cut from
    dropped: int  # digits with no candidate overlapping their box by MIN_OVERLAP
    seconds: float


def _rows(x28: np.ndarray, count: int, seed: int, stream: int, conditions=None, lengths=NUMBER_LENGTHS):
    """``count`` rows of ``lengths`` digits in turn drawn at random from ``x28``, each with one of
    ``conditions`` in turn (default: all of render_number's; a name given twice comes twice
    as often): (lengths, conditions, source indices, tasks of :data:`NUMBER_CHUNK` rows,
    each with its own generator)."""
    from digitrec.training.synth import NUMBER_CONDITIONS, ROW_CONDITIONS

    cycle = tuple(conditions or NUMBER_CONDITIONS)
    unknown = sorted(set(cycle) - set(ROW_CONDITIONS))
    if unknown:
        raise ValueError(f"unknown number conditions {unknown}; choose from {sorted(set(ROW_CONDITIONS))}")
    lengths = np.asarray(lengths)[np.arange(count) % len(lengths)]
    conditions = np.asarray(cycle)[np.arange(count) % len(cycle)]
    rng = np.random.default_rng([seed, stream])
    source = rng.choice(len(x28), size=int(lengths.sum()), replace=lengths.sum() > len(x28))
    ends = np.cumsum(lengths)
    rows = [x28[source[e - k: e]] for e, k in zip(ends, lengths)]
    tasks = [(rows[i: i + NUMBER_CHUNK], conditions[i: i + NUMBER_CHUNK], [seed, stream, i])
             for i in range(0, count, NUMBER_CHUNK)]
    return lengths, conditions, source, tasks


def _overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, iw) * max(0, ih)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _number_chunk(task) -> tuple[np.ndarray, np.ndarray]:
    """One worker's share: render each number, over-segment it as read_number does, keep
    for each true digit the candidate nearest its box; (uint8 images, ok flags)."""
    import cv2

    from digitrec.reading.numbers import NoDigit, number_candidates
    from digitrec.training import synth

    cv2.setNumThreads(1)
    numbers, conditions, seed = task
    rng = np.random.default_rng(seed)
    out = np.zeros((sum(len(d) for d in numbers), 28, 28), np.uint8)
    ok = np.zeros(len(out), bool)
    k = 0
    for digits, cond in zip(numbers, conditions):
        image, _, boxes = synth.render_number(list(digits), rng, condition=str(cond))
        try:
            candidates = number_candidates(image)[0]
        except NoDigit:
            candidates = []
        for box in boxes:  # render_number skips no digit of MNIST's: one box per digit
            overlaps = [_overlap(c.digit.box, box) for c in candidates]
            if overlaps and max(overlaps) >= MIN_OVERLAP:
                out[k] = np.round(candidates[int(np.argmax(overlaps))].digit.x28 * 255)
                ok[k] = True
            k += 1
    return out, ok


def number_digits(x28: np.ndarray, y: np.ndarray, n: int, seed: int,
                  workers: int | None = None) -> NumberDigits:
    """About ``n`` digits drawn at random from ``x28`` (labels ``y``), written as numbers of
    2 to 8 digits by :func:`digitrec.training.synth.render_number` in each of its conditions, and
    cut out again as :meth:`digitrec.reading.digits.Recognizer.read_number` cuts them: the
    candidate of :func:`digitrec.reading.normalize.number_candidates` whose box overlaps the
    digit's true box most, normalized as the reader normalizes it.

    Deterministic for a given ``seed`` whatever the number of ``workers``."""
    start = time.time()
    count = int(np.ceil(n / np.mean(NUMBER_LENGTHS)))
    lengths, conditions, source, tasks = _rows(x28, count, seed, 5)
    results = _map(_number_chunk, tasks, workers)
    x = np.concatenate([r[0] for r in results]) if results else np.zeros((0, 28, 28), np.uint8)
    ok = np.concatenate([r[1] for r in results]) if results else np.zeros(0, bool)
    number = np.repeat(np.arange(count), lengths)
    return NumberDigits(x=x[ok], y=np.asarray(y)[source][ok], source=source[ok],
                        conditions=conditions[number][ok], number=number[ok],
                        dropped=int((~ok).sum()), seconds=round(time.time() - start, 1))


# --- candidates labelled whole or not (for digitrec.training.verifier) -------------------------
# read_number's candidates are runs of pieces of a row; one is a whole digit when its ink
# spans one true digit and (almost) nothing of its neighbours. A narrow 1 merged into the
# 2 beside it barely changes the 2's box, so the label looks at how much of each true
# digit's width the candidate covers, not at box overlap alone.

WHOLE = (0.85, 0.8, 0.85, 0.25)  # covers >= this of the digit's width, is >= this its own,
#                                  is >= this of its height tall, covers < this of any other
FRAGMENT = (0.65, 0.6, 0.6)  # below any of these (same measures): not one whole digit


def whole_label(box, boxes) -> int:
    """1: ``box`` (a candidate's ink box) is one of the true digit ``boxes``; 0: it is a
    fragment of one, or holds most of two; -1: in between (not used for training)."""
    cx, cy, cw, ch = box
    cover = []
    for x, _, w, h in boxes:
        across = max(0, min(cx + cw, x + w) - max(cx, x))
        cover.append((across / max(w, 1), across / max(cw, 1), ch / max(h, 1)))
    if sum(c[0] >= 0.5 for c in cover) >= 2:
        return 0
    best = max(range(len(cover)), key=lambda i: cover[i][0])
    of_digit, own, tall = cover[best]
    others = max([c[0] for i, c in enumerate(cover) if i != best], default=0.0)
    if of_digit >= WHOLE[0] and own >= WHOLE[1] and tall >= WHOLE[2] and others < WHOLE[3]:
        return 1
    if of_digit < FRAGMENT[0] or own < FRAGMENT[1] or tall < FRAGMENT[2]:
        return 0
    return -1


@dataclass
class CandidateExamples:
    x: np.ndarray  # (n, 28, 28) uint8: candidate crops as the model sees them
    features: np.ndarray  # (n, len(verifier.FEATURES)) float32: the candidates' geometry
    whole: np.ndarray  # (n,) uint8: 1 whole digit, 0 fragment or merger
    numbers: int  # rows rendered
    seconds: float


def _candidate_chunk(task):
    import cv2

    from digitrec.reading.numbers import NoDigit, candidate_features, number_candidates
    from digitrec.training import synth

    cv2.setNumThreads(1)
    numbers, conditions, seed = task
    rng = np.random.default_rng(seed)
    xs, fs, ys = [], [], []
    for digits, cond in zip(numbers, conditions):
        image, _, boxes = synth.render_number(list(digits), rng, condition=str(cond))
        try:
            candidates = number_candidates(image)[0]
        except NoDigit:
            continue
        labels = np.array([whole_label(c.digit.box, boxes) for c in candidates])
        keep = np.flatnonzero(labels >= 0)
        xs += [np.round(candidates[i].digit.x28 * 255).astype(np.uint8) for i in keep]
        fs.append(candidate_features([candidates[i] for i in keep]))
        ys.append(labels[keep].astype(np.uint8))
    x = np.stack(xs) if xs else np.zeros((0, 28, 28), np.uint8)
    return x, np.concatenate(fs) if fs else np.zeros((0, 6), np.float32), \
        np.concatenate(ys) if ys else np.zeros(0, np.uint8)


def candidate_examples(x28: np.ndarray, numbers: int, seed: int,
                       workers: int | None = None) -> CandidateExamples:
    """``numbers`` rows of 2 to 8 digits drawn at random from ``x28`` (training digits),
    rendered by :func:`digitrec.training.synth.render_number` in each of its conditions and
    over-segmented by :func:`digitrec.reading.normalize.number_candidates`: every candidate, with
    its geometry and :func:`whole_label` (candidates in between are left out).

    Deterministic for a given ``seed`` whatever the number of ``workers``."""
    start = time.time()
    results = _map(_candidate_chunk, _rows(x28, numbers, seed, 6)[3], workers)
    return CandidateExamples(
        x=np.concatenate([r[0] for r in results]) if results else np.zeros((0, 28, 28), np.uint8),
        features=np.concatenate([r[1] for r in results]) if results else np.zeros((0, 6), np.float32),
        whole=np.concatenate([r[2] for r in results]) if results else np.zeros(0, np.uint8),
        numbers=numbers, seconds=round(time.time() - start, 1))


# --- Whole rows for the row reader ------------------------------------------------------

@dataclass
class RowExamples:
    x: np.ndarray  # (n, ROW_HEIGHT, ROW_WIDTH) uint8: preprocess.row_strip of each rendered row
    labels: np.ndarray  # (n, 8) int32: the row's digits, padded with -1
    numbers: int  # rows asked for (a row where no ink was found is left out)
    seconds: float


ROW_LENGTHS = tuple(range(1, 9))  # digits per row the row reader learns to read (MAX_DIGITS)
PLAIN_ROWS = 0.25  # rows written plainly, as on a page (synth.render_number: no marks, slant, baseline or box edge)


def _row_chunk(task):
    """One worker's share: each row written as an amount (:func:`synth.amount_items`,
    :func:`synth.render_amount`) or, PLAIN_ROWS of them, plainly as on a page
    (:func:`synth.render_number`), found as :func:`digitrec.reading.find.read` finds it and
    stripped as the reader strips it; rows the finder does not find as one region are
    left out (the reader never sees such a strip either). A reader that learnt amounts
    alone read the plain rows of pages worse with every round."""
    import cv2

    from digitrec.reading.find import find_numbers
    from digitrec.reading.numbers import NoDigit, row_strip
    from digitrec.training import synth

    cv2.setNumThreads(1)
    numbers, labels, conditions, seed = task
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for digits, label, cond in zip(numbers, labels, conditions):
        digits = [synth.european(d, int(k), rng) if rng.random() < synth.EUROPEAN else d
                  for d, k in zip(digits, label)]
        digits = [synth.pen_lift(d, rng) if rng.random() < synth.PEN_LIFT else d for d in digits]
        if rng.random() < synth.SMALL_ZEROS:
            digits = synth.small_zeros(digits, label, rng)
        try:
            if rng.random() < PLAIN_ROWS:
                image, _, _ = synth.render_number(digits, rng, condition=str(cond))
            else:
                image, _, _ = synth.render_amount(synth.amount_items(digits, rng), rng, condition=str(cond),
                                                  joined=synth.JOINED, wide=synth.WIDE)
        except ValueError:  # faint digits written too small to leave any ink
            continue
        try:
            regions = find_numbers(image)
            if len(regions) != 1:
                continue
            xs.append(row_strip(regions[0].picture))
        except NoDigit:
            continue
        ys.append(np.pad(label, (0, max(ROW_LENGTHS) - len(label)), constant_values=-1))
    return xs, ys


def row_examples(x28: np.ndarray, y: np.ndarray, numbers: int, seed: int,
                 workers: int | None = None, conditions=None) -> RowExamples:
    """``numbers`` rows of 1 to 8 digits drawn at random from ``x28`` (training digits in
    the MNIST box, :func:`mnist_box`), written as amounts on forms and cheques by
    :func:`digitrec.training.synth.render_amount` (PLAIN_ROWS of them plainly, as on a
    page) in each of its conditions (or in ``conditions``, cycled), found and stripped as
    the reader does, with their digits.

    Deterministic for a given ``seed`` whatever the number of ``workers``."""
    from digitrec.training.synth import ROW_CONDITIONS

    start = time.time()
    lengths, _, source, tasks = _rows(x28, numbers, seed, 8, conditions or ROW_CONDITIONS, ROW_LENGTHS)
    ends = np.cumsum(lengths)
    labels = [np.asarray(y)[source[e - k: e]].astype(np.int32) for e, k in zip(ends, lengths)]
    tasks = [(rows, labels[i * NUMBER_CHUNK: i * NUMBER_CHUNK + len(rows)], conditions, s)
             for i, (rows, conditions, s) in enumerate(tasks)]
    results = _map(_row_chunk, tasks, workers)
    from digitrec.reading.numbers import ROW_HEIGHT, ROW_WIDTH

    xs = [x for r in results for x in r[0]]
    ys = [lab for r in results for lab in r[1]]
    return RowExamples(
        x=np.stack(xs) if xs else np.zeros((0, ROW_HEIGHT, ROW_WIDTH), np.uint8),
        labels=np.stack(ys).astype(np.int32) if ys else np.zeros((0, max(ROW_LENGTHS)), np.int32),
        numbers=numbers, seconds=round(time.time() - start, 1))


def mnist_box(x: np.ndarray) -> np.ndarray:
    """Digits of any set and size (ink bright on dark) as MNIST holds them: the ink's box
    scaled to 20 pixels on its long side and centred in 28x28, so that digits from
    several populations written side by side are one size."""
    out = np.zeros((len(x), 28, 28), np.uint8)
    for i, d in enumerate(x):
        ys, xs = np.nonzero(d > 60)
        if len(ys) == 0:
            continue
        ink = d[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        h, w = ink.shape
        k = 20.0 / max(h, w)
        nh, nw = max(1, round(h * k)), max(1, round(w * k))
        import cv2

        small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        top, left = (28 - nh) // 2, (28 - nw) // 2
        out[i, top: top + nh, left: left + nw] = small
    return out
