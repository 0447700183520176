"""Finding the writing: every handwritten number in a picture, each cut out on its own.

    image -> gray, shrunk to FIND_LONG on its long side
          -> ink_map       polarity (normalize's); the paper's light from a quarter-size
                           copy, the higher of an opening (it follows a shadow's edge) and
                           a wide median (it follows a vignette or a shadow's blot), so
                           grain and a printed background's fine lines average out; ink
                           measured above it, and the paper's own grain (a robust spread)
          -> ink_pieces    strokes as strong as the picture's ink, grown into their
                           fainter edges; ruled / squared lines (normalize's) gone, and
                           what reaches the picture's edge and is no writing
          -> rows          pieces a digit tall (FIND_MIN of the picture's height or more),
                           side by side at one height, linked into rows; smaller rows beside
                           taller ones and smaller pieces (a dot, a dash, a digit's broken
                           stroke) join the row they lie by
          -> regions       in reading order, each the picture of its ink alone on white,
                           which the number reader (:mod:`digitrec.reading.numbers`) reads

:func:`read` finds and reads them all: a :class:`~digitrec.reading.results.Reading`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitrec.reading.decode import check_array
from digitrec.reading.normalize import (
    FLATTEN_MIN,
    MIN_CONTRAST,
    NoDigit,
    _components,
    _drop_soft,
    _hairline,
    _polarity,
    _remove_lines,
    _solid,
    _stroke_width,
    to_gray,
)
from digitrec.reading.results import Reading

FIND_LONG = 1024  # pictures are searched at most this many pixels on their long side
QUARTER = 128  # pictures this many pixels or more on their short side find their paper at quarter size...
PAPER_WINDOW = 0.2  # ...by an opening this much of the short side wide (wider than a stroke filling it)...
MEDIAN_WINDOW = 0.6  # ...where its median is taken over this much of the short side...
STROKE_MAX = 0.15  # ...without the strokes: ink narrower than this x the short side
GRAIN_STRONG, GRAIN_WEAK = 4.0, 2.5  # strokes stand this many times the paper's grain above it, their edges...
STRONG, WEAK = 0.45, 0.25  # ...and reach this much of the picture's ink level
EDGE_GROW = 5  # a stroke's faint edge is this wide (pixels), at most
LINE_LONGER = 2.0  # a line found is ruling when the picture is longer than this x the writing's height
EDGE_SMALL = 0.3  # a piece touching the picture's edge is no writing when shorter than this x the picture...
CORNER_SMALL = 0.5  # ...or, in a corner (two edges), shorter than this: a neighbour's stroke the crop cut
BLOT = 0.33  # pieces with strokes wider than this x their extent are blots, not writing
FIND_MIN = 1 / 32  # the least ink height looked for, of the picture's height (a digit written 1/20 tall may leave
# ink a third shorter: a flat 5; and a margin)...
SEED_MIN = 8  # ...and never below this many pixels (in a tight crop: a speck of grain)
LINK_GAP = 1.5  # pieces of one number lie at most this far apart (x the taller one's height; real
# amounts leave up to about 1.25 of it blank at a thousands separator)...
LINK_OVERLAP = 0.4  # ...and share this much of the shorter one's height...
LINK_RATIO = 2.5  # ...and the taller is at most this many times the shorter
STACK_GAP = 0.15  # pieces one above the other this near (x the taller) are one digit broken across...
STACK_PART = 0.3  # ...each at least this x the least digit height
BESIDE = (1.5, 0.5)  # a row less than SMALLER x as tall as one it lies this near (x that one's height)...
SMALLER = 0.6  # ...is part of it (a closing dash, a flourish, a separator, digits written smaller)
ATTACH = (0.6, 0.3)  # a smaller piece joins a row this near it (x the row's height), across and up or down...
ATTACH_PASSES = 3  # ...in as many passes, a piece joining through one that joined before
MARGIN = 0.3  # a region's picture has this much paper around its ink (x its digits' height)...
MARGIN_ALL = 0.15  # ...and this much of its ink's height and width: no stroke runs edge to edge like a ruled line


@dataclass
class Region:
    """One number's ink, cut out of a picture."""

    box: tuple[int, int, int, int]  # x, y, w, h in the original picture's pixels
    picture: np.ndarray  # uint8 gray: the region's ink alone, dark on white
    origin: tuple[int, int]  # where ``picture`` lies in the working copy (x, y)...
    scale: float  # ...that has this many pixels per original pixel

    def to_original(self, box) -> tuple[int, int, int, int]:
        """A box in ``picture``'s pixels -> the same box in the original picture's."""
        x, y, w, h = box
        s = self.scale
        return (int((x + self.origin[0]) / s), int((y + self.origin[1]) / s),
                int(np.ceil(w / s)), int(np.ceil(h / s)))


# --- ink -------------------------------------------------------------------------------------

def ink_map(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The picture's ink, bright on dark, at working size (at most FIND_LONG on its long
    side): (ink in [0, 1] above the paper, scale, the paper's grain: the spread of its
    faint side, where there is no ink, robustly).

    The paper is found on a copy shrunk to a quarter by averaging: the average takes the
    grain and a printed pattern's fine lines to their mean, where an opening at full size
    would take the paper to its brightest speck and leave all the grain as faint ink."""
    image = check_array(image)
    h, w = image.shape[:2]
    scale = min(1.0, FIND_LONG / max(h, w))
    if scale < 1.0:  # shrunk before anything else: a phone photo is 12 megapixels
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # to_gray's own conversion, on one channel
        image = _shrink(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    gray = to_gray(image)
    ink = 1.0 - gray if _polarity(gray) else gray
    hh, ww = ink.shape
    f = 4 if min(hh, ww) >= QUARTER else 1
    small = cv2.resize(ink, (max(1, ww // f), max(1, hh // f)), interpolation=cv2.INTER_AREA) if f > 1 else ink
    small8 = np.round(small * 255).astype(np.uint8)
    k = max(9, int(PAPER_WINDOW * min(small.shape)) | 1)
    # an opening (a window wider than any stroke) of the copy cleared of specks...
    paper = cv2.morphologyEx(cv2.medianBlur(small8, 5).astype(np.float32) / 255, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    # ...or, where the light changes within that window (a vignette's corner, a shadow's
    # blot), the paper's median over a wider one, its clear strokes taken for paper first
    # (thick strokes can be most of a window in a tight crop): what stands out of the
    # opening and is narrow (a shadow is broad)
    above = small - paper
    k2 = max(5, int(STROKE_MAX * min(small.shape)) | 1)
    thin = above - cv2.morphologyEx(above, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k2, k2)))
    clear = thin > max(MIN_CONTRAST, 0.5 * float(np.percentile(thin, 99.5)))
    filled = np.round(np.where(clear, paper, small) * 255).astype(np.uint8)
    wide = max(9, int(MEDIAN_WINDOW * min(small.shape)) | 1)
    paper = np.maximum(paper, cv2.medianBlur(filled, min(wide, 255)).astype(np.float32) / 255)
    if f > 1:
        paper = cv2.resize(paper, (ww, hh), interpolation=cv2.INTER_LINEAR)
    ink = (ink - paper) / np.maximum(1.0 - paper, 0.25)
    # Smoothed a little: pencil grain, chalk and JPEG noise hold together as strokes.
    ink = cv2.GaussianBlur(ink, (3, 3), 0.8) if min(ink.shape) >= 48 else ink
    sample = ink[::2, ::2] if ink.size > 40000 else ink
    level = float(np.median(sample))  # the paper: most of the picture
    faint = sample[sample < level]
    grain = 1.4826 * float(np.median(level - faint)) if faint.size else 0.0
    return np.clip(ink - level, 0, 1).astype(np.float32), scale, grain


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` averaged down to ``size`` (w, h): halved while it is twice as large (an
    exact 2x2 average is several times faster than one to an odd ratio), then the rest."""
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def ink_pieces(ink: np.ndarray, grain: float):
    """The strokes of ``ink`` (:func:`ink_map`), lines and page edges removed, labelled:
    (mask uint8 {0, 1}, n, labels, stats) as ``cv2.connectedComponentsWithStats`` gives
    them (the background's stats row aside). Raises NoDigit when there is no ink."""
    candidates = ink[ink > max(GRAIN_STRONG * grain, MIN_CONTRAST)]
    if candidates.size < 6:
        raise NoDigit("blank image: no ink found")
    level = float(np.percentile(candidates, 90))  # how dark the picture's strokes are
    weak = (ink > max(WEAK * level, GRAIN_WEAK * grain, MIN_CONTRAST / 2)).astype(np.uint8)
    strong = (ink > max(STRONG * level, GRAIN_STRONG * grain)).astype(np.uint8)
    # the strokes' fainter edges, a few pixels round them only: a faint shadow or stain
    # touching a stroke stays out
    mask = strong | (weak & cv2.dilate(strong, np.ones((EDGE_GROW, EDGE_GROW), np.uint8)))
    if mask.mean() > 0.35:
        raise NoDigit("no clear writing: the picture is mostly ink or noise")
    ruled = None
    if min(mask.shape) >= 40:
        mask, ruled = _put_back(mask, *_remove_lines(mask, weak))
    return _drop_edges(mask, ruled, ink)


def _put_back(before: np.ndarray, after: np.ndarray, ruled):
    """Undo what line removal took across a picture less than LINE_LONGER times as long
    as the writing left is tall: in a tight crop a "1" runs from edge to edge as a ruled
    line would (a ruled page is many times its writing's height)."""
    if ruled is None:
        return after, ruled
    heights = _components(after)[2][1:, 3]
    heights = heights[heights >= SEED_MIN]
    if not heights.size:
        return after, ruled
    typical = float(np.median(heights))
    h, w = after.shape
    n, labels, stats = _components(before & (1 - after))
    upright = stats[:, 3] > stats[:, 2]
    back = np.where(upright, h, w) <= LINE_LONGER * typical
    back[0] = False
    if not back.any():
        return after, ruled
    restored = back[labels].astype(np.uint8)
    ruled = ruled & (1 - cv2.dilate(restored, np.ones((5, 5), np.uint8)))
    return after | restored, ruled


def _drop_edges(mask: np.ndarray, ruled: np.ndarray | None, ink: np.ndarray):
    """Drop what is left of ruled lines, and what reaches the picture's edge and is no
    writing: a solid piece (the table around a page), a soft-edged one (a shadow), a
    straight hairline (a page's edge), one small beside the picture (EDGE_SMALL: a
    line's end, a corner of paper), or one in a corner of the picture and not much larger
    (CORNER_SMALL: a stroke of a neighbouring field that the crop cut off). A digit in a
    tight crop is large beside its picture: it may touch the edge. Returns the pieces
    kept, labelled (:func:`ink_pieces`)."""
    mask = _drop_soft(mask, ink)
    n, labels, stats = _components(mask)
    h, w = mask.shape
    keep = np.ones(n, bool)
    keep[0] = False
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        blob = labels[y: y + bh, x: x + bw] == i
        if ruled is not None and ruled[y: y + bh, x: x + bw][blob].mean() > 0.8:
            keep[i] = False
        else:
            across, along = (x == 0 or x + bw == w), (y == 0 or y + bh == h)  # edges it reaches
            small = (CORNER_SMALL if across and along else EDGE_SMALL) * min(h, w)
            if (across or along) and (_solid(blob) or _hairline(bw, bh) or max(bw, bh) < small):
                keep[i] = False
    # the pieces kept, labelled as a labelling of the kept mask would label them (dropping a
    # piece keeps the others' raster order): one labelling of the page fewer
    lut = np.where(keep, np.cumsum(keep), 0).astype(np.int32)
    labels = lut[labels]
    return (labels > 0).astype(np.uint8), int(keep.sum()) + 1, labels, np.vstack([stats[:1], stats[keep]])


# --- rows ------------------------------------------------------------------------------------

def _rows(stats: np.ndarray, least: float) -> list[list[int]]:
    """Pieces (rows of ``stats``: x, y, w, h, area) grouped into rows of writing: pieces at
    least ``least`` tall link when side by side at one height (:func:`_linked`); a
    smaller row beside a taller one is part of it (:func:`_absorb`); a smaller piece joins
    the row it lies in or next to (ATTACH); rows that are side by side then (a digit broken
    in two smaller pieces no longer leaves a gap) are one. Rows of pieces, left to right."""
    tall = [i for i in range(len(stats)) if stats[i, 3] >= least or i in _stacked(stats, least)]
    found = [[tall[k] for k in group] for group in _linked(stats[tall, :4].astype(np.float64))]
    found = _absorb(stats, found, least)
    heights = [_height(stats, r, least) for r in found]
    loose = [i for i in range(len(stats)) if stats[i, 3] < least]
    for _ in range(ATTACH_PASSES):  # a piece may join through another that joined (a 1 broken in two)
        boxes = [_union(stats, r) for r in found]
        joined = []
        for i in loose:
            px, py, pw, ph = stats[i, :4]
            best, best_d = None, np.inf
            for k, ((bx, by, bw, bh), rh) in enumerate(zip(boxes, heights)):
                dx = max(bx - (px + pw), px - (bx + bw), 0.0)  # the blank between the two boxes
                dy = max(by - (py + ph), py - (by + bh), 0.0)
                if dx <= ATTACH[0] * rh and dy <= ATTACH[1] * rh and dx + dy < best_d:
                    best, best_d = k, dx + dy
            if best is not None:
                found[best].append(i)
                joined.append(i)
        if not joined:
            break
        loose = [i for i in loose if i not in set(joined)]
    while len(found) > 1:
        boxes = np.array([_union(stats, r) for r in found], np.float64)
        # each row's box, with the height of its digits (its tall pieces) for the gap and ratio
        boxes = np.c_[boxes, [_height(stats, r, least) for r in found]]
        groups = _linked(boxes)
        if len(groups) == len(found):
            break
        found = [[i for k in group for i in found[k]] for group in groups]
    return [sorted(r, key=lambda i: stats[i, 0]) for r in found]


def _stacked(stats: np.ndarray, least: float) -> set[int]:
    """Pieces shorter than ``least`` that, one above the other barely apart (STACK_GAP),
    are together at least ``least`` tall: a small digit whose pen skipped across it."""
    short = [i for i in range(len(stats)) if STACK_PART * least <= stats[i, 3] < least]
    if len(short) < 2:
        return set()
    x, y, w, h = (stats[short, k].astype(np.float64) for k in range(4))
    across = np.minimum.outer(x + w, x + w) - np.maximum.outer(x, x)
    apart = np.maximum(np.subtract.outer(y, y + h), np.subtract.outer(y, y + h).T)
    top = np.minimum.outer(y, y)
    bottom = np.maximum.outer(y + h, y + h)
    pairs = ((across >= 0.5 * np.minimum.outer(w, w)) & (apart <= STACK_GAP * np.maximum.outer(h, h))
             & (bottom - top >= least))
    np.fill_diagonal(pairs, False)
    return {short[k] for k in np.flatnonzero(pairs.any(axis=1))}


def _linked(boxes: np.ndarray) -> list[list[int]]:
    """Boxes (x, y, w, h[, height]) side by side at one height (LINK_*), or one above the
    other barely apart (STACK_GAP), grouped: the
    indices of each group. ``height``, where given, is what the gap and the ratio of
    heights go by (a row's digits), the box's own height otherwise."""
    n = len(boxes)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        x, y, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
        tall = boxes[:, 4] if boxes.shape[1] > 4 else h
        overlap = np.minimum.outer(y + h, y + h) - np.maximum.outer(y, y)
        gap = np.maximum(np.subtract.outer(x, x + w), np.subtract.outer(x, x + w).T)  # blank between them
        hi, lo = np.maximum.outer(tall, tall), np.minimum.outer(tall, tall)
        linked = (overlap >= LINK_OVERLAP * lo) & (gap <= LINK_GAP * hi) & (hi <= LINK_RATIO * lo)
        # ...or one above the other, barely apart: a digit whose pen skipped across it
        across = np.minimum.outer(x + w, x + w) - np.maximum.outer(x, x)
        linked |= (across >= 0.5 * np.minimum.outer(w, w)) & (-overlap <= STACK_GAP * np.maximum.outer(h, h))
        for a, b in zip(*np.nonzero(np.triu(linked, 1))):
            parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _height(stats: np.ndarray, row, least: float) -> float:
    """A row's digit height: the median height of its tall pieces (at least ``least``, and
    half the tallest: a digit's fragments that joined it do not count)."""
    h = stats[row, 3]
    h = h[h >= max(least, 0.5 * h.max())]
    return float(np.median(h)) if h.size else float(stats[row, 3].max())


def _absorb(stats: np.ndarray, rows: list[list[int]], least: float) -> list[list[int]]:
    """Rows merged into a taller row beside them (BESIDE, SMALLER): what a writer adds to
    a number is smaller than its digits and close to them."""
    rows = sorted(rows, key=lambda r: -_height(stats, r, least))
    out: list[list[int]] = []
    for r in rows:
        x, y, w, h = _union(stats, r)
        height = _height(stats, r, least)
        for big in out:
            bx, by, bw, bh = _union(stats, big)
            tall = _height(stats, big, least)
            dx = max(bx - (x + w), x - (bx + bw), 0)
            dy = max(by - (y + h), y - (by + bh), 0)
            if height < SMALLER * tall and dx <= BESIDE[0] * tall and dy <= BESIDE[1] * tall:
                big.extend(r)
                break
        else:
            out.append(list(r))
    return out


def _union(stats: np.ndarray, members) -> tuple[int, int, int, int]:
    x0 = int(stats[members, 0].min())
    y0 = int(stats[members, 1].min())
    x1 = int((stats[members, 0] + stats[members, 2]).max())
    y1 = int((stats[members, 1] + stats[members, 3]).max())
    return x0, y0, x1 - x0, y1 - y0


def _reading_order(boxes) -> list[int]:
    """Indices of ``boxes`` in reading order: lines top to bottom (boxes sharing half the
    shorter one's height are on one line), left to right along each."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1])
    lines: list[list[int]] = []
    for i in order:
        x, y, w, h = boxes[i]
        for line in lines:
            ly0 = min(boxes[j][1] for j in line)
            ly1 = max(boxes[j][1] + boxes[j][3] for j in line)
            if min(ly1, y + h) - max(ly0, y) >= 0.5 * min(h, ly1 - ly0):
                line.append(i)
                break
        else:
            lines.append([i])
    return [i for line in lines for i in sorted(line, key=lambda j: boxes[j][0])]


# --- regions ---------------------------------------------------------------------------------

def find_numbers(image: np.ndarray) -> list[Region]:
    """Every number written in ``image``, in reading order. Raises NoDigit (with a
    reason) when there is none."""
    gray_shape = np.asarray(image).shape[:2]
    if min(gray_shape) < FLATTEN_MIN:  # a crop of one digit or a tiny row: all of it
        h, w = gray_shape
        return [Region((0, 0, w, h), np.asarray(image), (0, 0), 1.0)]
    ink, scale, grain = ink_map(image)
    mask, n, labels, stats = ink_pieces(ink, grain)
    if n <= 1:
        raise NoDigit("only specks or lines: no digit-sized stroke found")
    stats = stats[1:]
    least = max(SEED_MIN, FIND_MIN * ink.shape[0])
    rows = [r for r in _rows(stats, least) if _writing(stats, r, labels)]
    if not rows:
        raise NoDigit("only a speck: no digit-sized stroke found")
    level = float(np.percentile(ink[mask > 0], 90))
    regions = []
    for r in rows:
        x, y, w, h = _union(stats, r)
        m = max(4, int(MARGIN * float(np.median(stats[r, 3]))))
        mx, my = max(m, int(MARGIN_ALL * w)), max(m, int(MARGIN_ALL * h))
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(ink.shape[1], x + w + mx), min(ink.shape[0], y + h + my)
        own = np.isin(labels[y0: y1, x0: x1], np.asarray(r) + 1).astype(np.uint8)
        near = cv2.dilate(own, np.ones((3, 3), np.uint8))  # the strokes' soft edges too
        strokes = np.clip(ink[y0: y1, x0: x1] / max(level, 1e-3), 0, 1) * near
        # white all round, also where the ink reaches the picture's edge: the reader takes
        # strokes at its picture's edge for a page's edge
        pads = (my - (y - y0), my - (y1 - y - h), mx - (x - x0), mx - (x1 - x - w))
        picture = cv2.copyMakeBorder(np.round(255 * (1 - strokes)).astype(np.uint8), *pads,
                                     cv2.BORDER_CONSTANT, value=255)
        region = Region((0, 0, 0, 0), picture, (x0 - pads[2], y0 - pads[0]), scale)
        region.box = region.to_original((x - region.origin[0], y - region.origin[1], w, h))
        regions.append(region)
    return [regions[i] for i in _reading_order([r.box for r in regions])]


def _writing(stats: np.ndarray, row, labels: np.ndarray) -> bool:
    """A row of pen strokes, not blots: one of its pieces has strokes narrower than BLOT x
    its extent (a marker's digit has strokes a fifth of its height; a filled shape, half)."""
    for i in row:
        x, y, w, h = stats[i, :4]
        if _stroke_width((labels[y: y + h, x: x + w] == i + 1).astype(np.uint8)) <= BLOT * max(w, h):
            return True
    return False


def read(image: np.ndarray, read_number) -> Reading:
    """Every number in ``image`` found (:func:`find_numbers`) and read by ``read_number``
    (a picture of one row -> :class:`Number`), each number's and digit's box in the
    original picture's pixels."""
    try:
        regions = find_numbers(image)
    except NoDigit as exc:
        return Reading(reason=str(exc))
    numbers, reasons = [], []
    for region in regions:
        number = read_number(region.picture)
        if not number.digits:
            reasons.append(number.reason)
            continue
        for d in number.digits:
            d.box = region.to_original(d.box)
        number.box = region.box
        numbers.append(number)
    if not numbers:
        return Reading(reason=reasons[0] if reasons else "no digits found")
    return Reading(numbers)


__all__ = ["Region", "find_numbers", "ink_map", "ink_pieces", "read"]
