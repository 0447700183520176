"""Reading one number's box: the recognizer network and its CTC post-processor.

    picture, box -> strip          the box with MARGIN of paper round it, as ink (ink.py),
                                   HEIGHT pixels tall, left-aligned in WIDTH (squeezed
                                   to fit when longer)
                 -> recognizer     a CNN and bidirectional GRUs: for each of FRAMES
                                   columns, P(each character of ALPHABET, or blank)
                 -> ctc_decode     the best path: one character per run of frames,
                                   blanks and repeats collapsed, each with its probability
                                   and the frames it holds; where the recognizer is several
                                   networks trained apart, each one's best path is a
                                   candidate, and the one they find likeliest together is
                                   read (best_reading)
                 -> Number         digits with their boxes (the strip split between the
                                   characters' frames, each share's ink measured), the
                                   marks between digits kept in the text

The recognizer reads marks as well as digits (``1.500``, ``12-05``, ``12/05``); a closing
dash or ``=`` is no character of a number, and it learnt to leave it out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.reading import ink as inkmod
from digitrec.reading.results import Number, Prediction

HEIGHT, WIDTH = 32, 256  # the strip the recognizer reads, in pixels
FRAMES = WIDTH // 4  # columns of the recognizer's output
ALPHABET = "0123456789.,-/"  # what the recognizer writes; index len(ALPHABET) is CTC's blank
BLANK = len(ALPHABET)
MARKS = ".,-/"
MARGIN = 0.15  # paper kept round a detected box on every side, x the box's height
INK_ROW = 0.35  # a digit's box spans the strip's rows and columns of its share whose ink reaches this
PROB_FLOOR = 1e-7  # added to the column probabilities before their log (in training's CTC loss too)


@dataclass
class Strip:
    """A box of a picture as the recognizer reads it, and the way back to the picture."""

    x: np.ndarray  # (HEIGHT, WIDTH) float32 ink
    origin: tuple[int, int]  # the picture pixel at the strip's top-left corner (x, y)
    scale: tuple[float, float]  # strip pixels per picture pixel (x, y)
    width: int  # strip columns that hold the picture (the rest is padding)


def strip(g: np.ndarray, box, margin: float = MARGIN) -> Strip:
    """The strip of ``box`` (x, y, w, h) in ``g`` (grey, dark ink: :func:`ink.gray`) with
    ``margin`` x its height of the picture round it on every side."""
    H, W = g.shape
    x, y, w, h = box
    m = margin * h
    x0, y0 = max(0, int(round(x - m))), max(0, int(round(y - m)))
    x1, y1 = min(W, int(round(x + w + m))), min(H, int(round(y + h + m)))
    crop = g[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    ch, cw = crop.shape
    width = min(WIDTH, max(1, int(round(cw * HEIGHT / ch))))
    out = np.zeros((HEIGHT, WIDTH), np.float32)
    out[:, :width] = inkmod.ink(inkmod.resize(crop, width, HEIGHT))
    return Strip(out, (x0, y0), (width / cw, HEIGHT / ch), width)


@dataclass
class Character:
    char: str
    probability: float  # its best frame's probability
    frames: tuple[int, int]  # first and last frame of its run


def ctc_decode(probs: np.ndarray) -> list[Character]:
    """Best-path CTC decoding of (FRAMES, len(ALPHABET) + 1) probabilities: the most
    likely class of each frame, runs of one class collapsed, blanks dropped."""
    best = probs.argmax(axis=1)
    out: list[Character] = []
    start = 0
    for t in range(1, len(best) + 1):
        if t == len(best) or best[t] != best[start]:
            k = int(best[start])
            if k != BLANK:
                out.append(Character(ALPHABET[k], float(probs[start:t, k].max()), (start, t - 1)))
            start = t
    return out


def log_likelihood(probs: np.ndarray, text: str) -> float:
    """log P(``text`` | ``probs``) under CTC: summed over every way of laying ``text``'s
    characters, blanks between and repeats, along the frames (the forward algorithm)."""
    logp = np.log(np.asarray(probs, np.float64) + PROB_FLOOR)
    ext = np.full(2 * len(text) + 1, BLANK)
    ext[1::2] = [ALPHABET.index(c) for c in text]
    # a character may follow the one two states back (skipping the blank) unless they are the same
    skip = np.zeros(len(ext), bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    alpha = np.full(len(ext), -np.inf)
    alpha[: min(2, len(ext))] = logp[0, ext[:2]]
    for t in range(1, len(logp)):
        before = np.concatenate(([-np.inf, -np.inf], alpha))  # state s at [s + 2]
        alpha = np.logaddexp(np.logaddexp(alpha, before[1:-1]), np.where(skip, before[:-2], -np.inf)) + logp[t, ext]
    return float(np.logaddexp.reduce(alpha[-2:]))


def best_reading(probs: np.ndarray) -> list[Character]:
    """The characters of one strip: its best path (:func:`ctc_decode`) for one network's
    (FRAMES, classes) probabilities. For several networks' (K, FRAMES, classes), each
    network's best path is a candidate, and the one with the highest log-likelihood
    summed over the networks is read, as its network decoded it (frames, probabilities).
    Networks trained apart err apart: where one misreads a digit, the others seldom find
    its reading likely."""
    if probs.ndim == 2:
        return ctc_decode(probs)
    candidates = [ctc_decode(p) for p in probs]
    texts = ["".join(c.char for c in chars) for chars in candidates]
    if len(set(texts)) == 1:
        return candidates[0]
    scores = [sum(log_likelihood(p, text) for p in probs) for text in texts]
    return candidates[int(np.argmax(scores))]


def _ink_run(share: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """The columns of a digit's share (columns ``a`` to ``b`` of the strip, ``share`` their
    ink) that hold it: the run of inked columns with the most ink (a neighbour's stroke
    that crosses the split is another run); the whole share where it has no ink."""
    inked = share.any(axis=0)
    best, start, mass = None, None, share.sum(axis=0)
    for i, on in enumerate(np.append(inked, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            if best is None or mass[start:i].sum() > mass[best[0]:best[1]].sum():
                best = (start, i)
            start = None
    return (a + best[0], a + best[1]) if best else (a, b)


def number_from(chars: list[Character], s: Strip) -> Number:
    """The Number that ``chars`` (decoded from strip ``s``) spell, each digit boxed in the
    picture's pixels: the strip is split between neighbouring characters halfway between
    their frames, and a digit's box is its share's ink."""
    frame_px = WIDTH / FRAMES
    centres = [(c.frames[0] + c.frames[1] + 1) / 2 * frame_px for c in chars]
    cols = np.nonzero(s.x[:, : s.width].max(axis=0) >= INK_ROW)[0]
    left_ink, right_ink = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, s.width)
    digits, marks = [], []
    for i, c in enumerate(chars):
        if c.char in MARKS:
            # a mark between digits (one at either end is none), where its frames hold ink
            a, b = int(c.frames[0] * frame_px) - 1, int((c.frames[1] + 1) * frame_px) + 1
            if digits and i < len(chars) - 1 and s.x[:, max(0, a): b].max(initial=0) >= INK_ROW:
                marks.append((len(digits), c.char))
            continue
        a = left_ink if i == 0 else int((centres[i - 1] + centres[i]) / 2)
        b = right_ink if i == len(chars) - 1 else int((centres[i] + centres[i + 1]) / 2)
        a, b = max(0, min(a, s.width - 1)), max(a + 1, min(b, s.width))
        a, b = _ink_run(s.x[:, a:b] >= INK_ROW, a, b)
        rows = np.nonzero((s.x[:, a:b] >= INK_ROW).any(axis=1))[0]
        top, bottom = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, HEIGHT)
        sx, sy = s.scale
        box = (int(s.origin[0] + a / sx), int(s.origin[1] + top / sy),
               max(1, int(np.ceil((b - a) / sx))), max(1, int(np.ceil((bottom - top) / sy))))
        digits.append(Prediction(int(c.char), c.probability, box=box))
    # a mark after the last digit (a closing dash) is no part of the number's text
    marks = [(before, m) for before, m in marks if before < len(digits)]
    return Number(digits=digits, marks=marks, probability=float(np.prod([c.probability for c in chars]))
                  if chars else 0.0)


def recognize(network, g: np.ndarray, boxes) -> list[Number]:
    """Each box of ``g`` (grey, dark ink) read by ``network`` (the exported recognizer:
    one network's columns, or several networks' stacked), in one batch; a box read as
    nothing gives a Number without digits."""
    strips = [strip(g, b) for b in boxes]
    if not strips:
        return []
    probs = network(np.stack([s.x for s in strips])[..., None])
    numbers = []
    for s, p, b in zip(strips, probs, boxes):
        number = number_from(best_reading(p), s)
        # the detected box, grown to hold every digit's ink (the strip's margin may show more of it)
        corners = [(int(b[0]), int(b[1]), int(b[0] + b[2]), int(b[1] + b[3]))]
        corners += [(x, y, x + w, y + h) for x, y, w, h in (d.box for d in number.digits)]
        x0, y0 = min(c[0] for c in corners), min(c[1] for c in corners)
        number.box = (x0, y0, max(c[2] for c in corners) - x0, max(c[3] for c in corners) - y0)
        if not number.digits:
            number.reason = "no digits read in this box"
        numbers.append(number)
    return numbers


__all__ = ["HEIGHT", "WIDTH", "FRAMES", "ALPHABET", "BLANK", "MARGIN", "Strip", "strip", "Character",
           "ctc_decode", "log_likelihood", "best_reading", "number_from", "recognize"]
