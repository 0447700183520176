"""Where numbers are written in a picture: the detector network's map -> one box each.

    picture -> gray, shrunk to SIDE on its long side, ink (ink.py)   the detector's input
            -> detector (a small fully-convolutional network)         per cell of STRIDE px:
               P(the cell lies in a number's core), and the distances from the cell's
               centre to the number's four edges
            -> cores                                                  cells above THRESHOLD,
               joined into connected pieces: one piece, one number
            -> boxes                                                  each piece's box: the
               median of what its cells say of the number's edges, and across at least the
               core grown back by CORE_INSET, in the picture's pixels

A number's *core* is its box shrunk to the middle CORE_HEIGHT of its height and inset
CORE_INSET x its height at either end, so two numbers one above the other, or side by
side, leave cells between their cores. The same geometry makes the training targets
(:func:`targets`) and reads the map back (:func:`boxes`), so the two cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitrec.reading import ink as inkmod

SIDE = 256  # the picture is read at this many pixels on its long side
STRIDE = 4  # one map cell per this many pixels of the detector's input
CELLS = SIDE // STRIDE
CORE_HEIGHT = 0.5  # a number's core: the middle half of its height...
CORE_INSET = 0.2  # ...inset this much of its height from either end
THRESHOLD = 0.5  # cells more likely than this to lie in a core are a number's
MIN_SCORE = 0.6  # a piece of core whose cells average less than this is dropped
DISTANCE_SCALE = 16.0  # the edge distances are learnt as log(1 + d / this), d in input pixels
OVERLAP = 0.5  # two numbers' boxes never share ink: boxes sharing this much of the smaller one are one number


@dataclass
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in the picture's pixels
    score: float  # the mean core probability of its cells


def prepare(g: np.ndarray) -> tuple[np.ndarray, float]:
    """A picture in grey with dark ink (:func:`ink.gray`) -> (the detector's (SIDE, SIDE)
    ink input, pixels of it per picture pixel). The picture is scaled to SIDE on its long
    side and laid in the top-left corner; the rest is paper (0)."""
    h, w = g.shape
    scale = SIDE / max(h, w)
    small = inkmod.ink(inkmod.resize(g, round(w * scale), round(h * scale)))
    x = np.zeros((SIDE, SIDE), np.float32)
    x[: small.shape[0], : small.shape[1]] = small[:SIDE, :SIDE]
    return x, scale


def targets(boxes, scale: float) -> np.ndarray:
    """Training targets for numbers at ``boxes`` (x, y, w, h in picture pixels) of a
    picture read at ``scale``: (CELLS, CELLS, 5), the core (0/1) and the four edge
    distances (top, bottom, left, right; :data:`DISTANCE_SCALE`) at each core cell. Where
    two cores overlap the smaller number wins."""
    out = np.zeros((CELLS, CELLS, 5), np.float32)
    centres = (np.arange(CELLS, dtype=np.float32) + 0.5) * STRIDE
    for x, y, w, h in sorted(boxes, key=lambda b: -b[2] * b[3]):
        x0, y0, x1, y1 = x * scale, y * scale, (x + w) * scale, (y + h) * scale
        hh = y1 - y0
        cy0, cy1 = y0 + (1 - CORE_HEIGHT) / 2 * hh, y1 - (1 - CORE_HEIGHT) / 2 * hh
        cx0, cx1 = x0 + CORE_INSET * hh, x1 - CORE_INSET * hh
        if cx1 - cx0 < STRIDE:  # a narrow number (one digit): its middle column at least
            mid = (x0 + x1) / 2
            cx0, cx1 = mid - STRIDE / 2, mid + STRIDE / 2
        if cy1 - cy0 < STRIDE:
            mid = (y0 + y1) / 2
            cy0, cy1 = mid - STRIDE / 2, mid + STRIDE / 2
        rows = np.nonzero((centres >= cy0) & (centres <= cy1))[0]
        cols = np.nonzero((centres >= cx0) & (centres <= cx1))[0]
        if not len(rows):
            rows = np.array([min(CELLS - 1, int((cy0 + cy1) / 2 // STRIDE))])
        if not len(cols):
            cols = np.array([min(CELLS - 1, int((cx0 + cx1) / 2 // STRIDE))])
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        cy, cx = np.meshgrid(centres[r0:r1], centres[c0:c1], indexing="ij")
        out[r0:r1, c0:c1, 0] = 1.0
        for k, d in enumerate((cy - y0, y1 - cy, cx - x0, x1 - cx)):
            out[r0:r1, c0:c1, k + 1] = np.log1p(np.maximum(d, 0) / DISTANCE_SCALE)
    return out


def boxes(out: np.ndarray, scale: float, shape: tuple[int, int]) -> list[Detection]:
    """The detector's output (CELLS, CELLS, 5) for a picture of ``shape`` (h, w) read at
    ``scale`` -> a Detection per piece of core, in the picture's pixels."""
    core = out[..., 0]
    count, labels = cv2.connectedComponents((core > THRESHOLD).astype(np.uint8), connectivity=8)
    found = []
    h, w = shape
    for k in range(1, count):
        ys, xs = np.nonzero(labels == k)
        score = float(core[ys, xs].mean())
        if score < MIN_SCORE:
            continue
        d = np.expm1(np.maximum(out[ys, xs, 1:], 0)) * DISTANCE_SCALE
        cy, cx = (ys + 0.5) * STRIDE, (xs + 0.5) * STRIDE
        top, bottom = np.median(cy - d[:, 0]), np.median(cy + d[:, 1])
        # Across, the number reaches at least as far as its core (grown back by CORE_INSET x
        # its height): cells a number's strokes hold say so even where their distances
        # fall short (a plain 1 beside a 0 reads as much like a box's edge as a digit).
        inset = CORE_INSET * (bottom - top)
        left = min(np.median(cx - d[:, 2]), cx.min() - STRIDE / 2 - inset)
        right = max(np.median(cx + d[:, 3]), cx.max() + STRIDE / 2 + inset)
        x0, y0 = max(0, int(np.floor(left / scale))), max(0, int(np.floor(top / scale)))
        x1, y1 = min(w, int(np.ceil(right / scale))), min(h, int(np.ceil(bottom / scale)))
        if x1 > x0 and y1 > y0:
            found.append(Detection((x0, y0, x1 - x0, y1 - y0), score))
    return found


def _shared(a: tuple, b: tuple) -> bool:
    """Whether boxes ``a`` and ``b`` (x, y, w, h) share :data:`OVERLAP` of the smaller one."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return iw > 0 and ih > 0 and iw * ih >= OVERLAP * min(a[2] * a[3], b[2] * b[3])


def merged(found: list[Detection]) -> list[Detection]:
    """Boxes that overlap by :data:`OVERLAP` of the smaller one or more, as one box round
    both (the better score): a core broken in two pieces whose boxes both reach over the
    same digits would otherwise read those digits twice."""
    found = list(found)
    while True:
        pair = next(((i, j) for i in range(len(found)) for j in range(i + 1, len(found))
                     if _shared(found[i].box, found[j].box)), None)
        if pair is None:
            return found
        a, b = found[pair[0]], found.pop(pair[1])
        x0, y0 = min(a.box[0], b.box[0]), min(a.box[1], b.box[1])
        x1 = max(a.box[0] + a.box[2], b.box[0] + b.box[2])
        y1 = max(a.box[1] + a.box[3], b.box[1] + b.box[3])
        found[pair[0]] = Detection((x0, y0, x1 - x0, y1 - y0), max(a.score, b.score))


def reading_order(found: list[Detection]) -> list[Detection]:
    """Top to bottom, and left to right within a line: a number whose middle lies within
    the first one's height shares its line."""
    rest = sorted(found, key=lambda d: d.box[1])
    ordered = []
    while rest:
        first = rest[0]
        _, y, _, h = first.box
        line = [d for d in rest if y <= d.box[1] + d.box[3] / 2 <= y + h]
        line = line or [first]
        ordered += sorted(line, key=lambda d: d.box[0])
        rest = [d for d in rest if d not in line]
    return ordered


def detect(network, g: np.ndarray) -> list[Detection]:
    """Every number written in ``g`` (grey, dark ink: :func:`ink.gray`), in reading order
    (``network``: the exported detector, :class:`digitrec.reading.engine.Network`)."""
    x, scale = prepare(g)
    out = network(x[None, ..., None])[0]
    return reading_order(merged(boxes(out, scale, g.shape)))


__all__ = ["Detection", "SIDE", "STRIDE", "CELLS", "prepare", "targets", "boxes", "merged", "reading_order",
           "detect"]
