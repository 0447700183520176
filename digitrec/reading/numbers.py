"""Reading a number: one row of handwritten digits -> a :class:`Number`.

    image -> ink_mask(number=True)   the row's ink (normalize.py): lines, specks gone
          -> _groups                 the ink grouped into digits' pieces; marks that are
                                     no digit (. , - =) set apart by size and place
          -> row reader              a CTC network reads row_strip(image) whole; a reading
                                     it is sure of (ROW_LEAD) is the reading, and its CTC
                                     alignment gives each digit its ink and box (_aligned)
    otherwise:
          -> number_candidates       over-segmentation: groups cut where touching digits
                                     may meet, every run of pieces that could be one digit
                                     normalized to 28x28
          -> digit model             P(digit) for every candidate, in one batch
          -> verifier                P(one whole digit) for every candidate (its crop
                                     and candidate_features)
          -> best_path               dynamic programming: the reading the model is surest
                                     of, with priors on width, height, cuts and joins;
                                     where the row reader reads otherwise, the better of
                                     the two readings wins
    and then:
          -> marks                   a dot, comma or dash between two digits kept in the
                                     text (1.500, 12-05); a closing dash left out

Every tuning constant of the reader sits at the top of this module. The networks are
exported ``.tflite`` files run by :mod:`digitrec.reading.engine`; how they are trained
lives in :mod:`digitrec.training` (``verifier``, ``row_reader``, ``number_data``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitrec.reading.normalize import Ink, NoDigit, Normalized, _components, _stroke_width, ink_mask, to_mnist
from digitrec.reading.results import LOW_CONFIDENCE, Number, Prediction

NUM_CLASSES = 10
DIGIT_ASPECT = 0.75  # a typical handwritten digit's width / height
GROUP_CLOSE = 0.08  # gaps this much of the digit height are closed when grouping ink
PIECE_MIN = 0.08  # a cut leaves at least this much of the row's height on either side
PIECE_SPACING = 0.15  # cuts inside a group are at least this far apart (x row height)
MAX_DIGIT_WIDTH = 1.3  # a candidate digit's ink is at most this wide (x row height)
MAX_PIECES = 6  # ...and made of at most this many pieces
MAX_JOIN_GAP = 0.5  # groups further apart than this (x row height) are never one digit
DIGIT_BONUS = 0.3  # read_number: log-probability credited per digit (a sum of logs favours few)
CUT_COST = 0.4  # per edge of a digit cut through ink, plus CUT_STROKE_COST per stroke beyond one
CUT_STROKE_COST = 0.25
JOIN_COST = 0.3  # per extra group of ink a digit joins, plus JOIN_GAP_COST x gap / height
JOIN_GAP_COST = 2.0
SHORT = 0.75  # a digit shorter than this x the row's height is suspect (a fragment)
NARROW = 0.3  # a digit other than 1 narrower than this x the row's height is suspect
WIDE = 1.0  # any digit wider than this x the row's height is suspect
WHOLE_WEIGHT = 0.25  # x the verifier's log-odds that a candidate is one whole digit
WHOLE_CLIP = 1e-4  # its probabilities are kept within [this, 1 - this]
ROW_READER_WEIGHT = 1.0  # x the row reader's log P(digits | row), beside a path's score
ROW_LEAD = 0.8  # the row reader's reading is taken, with boxes from its alignment, when it finds it this likely
SKIP_HEIGHT = 0.5  # a group of ink shorter than this x the row's height may be no digit...
SKIP_COST = 1.0  # ...at this cost
MARK_HEIGHT = 0.45  # a group of ink at most this tall (x the row's digit height) may be a mark...
DOT_SIZE = 0.35  # ...a dot or a comma when no wider than this, low in the row
DASH_WIDTH = 0.25  # ...a dash when at least this wide and 1.8 times as wide as tall, mid-row
STANDING = 0.4  # ...two dashes ("=") when no stroke in it stands this much of its height tall...
FLAT = 1.5  # ...nor this many times the pen's stroke width (a thick dash is no upright stroke)...
FLAT_MOST = 0.75  # ...counted at most as this much of its height (a thick pen's small digit still stands)
KEPT = ".,-"  # marks kept in a number's text when between two digits (1.500, 3,25, 12-05)

# The row reader's columns (CTC): 10 digits and a blank.
ROW_HEIGHT, ROW_WIDTH = 32, 256  # row_strip: the row reader's input, in pixels
ROW_MARGIN = 2  # pixels left empty above, below and left of the ink
BLANK = 10  # CTC's "no digit in this column" class
FRAMES = ROW_WIDTH // 4  # columns the row reader reads the row as
MAX_DIGITS = 8  # the longest row the row reader was trained on
PROB_FLOOR = 1e-7  # added to column probabilities before their log, in training and reading alike

# The verifier's geometry of a candidate, in this order (its second input).
FEATURES = ("width", "height", "joined_groups", "gap", "cut_left", "cut_right")


def candidate_features(candidates) -> np.ndarray:
    """The geometry of each candidate (:data:`FEATURES`), in row heights and stroke counts."""
    return np.array([[c.width, c.height, c.groups - 1, c.gap, c.cut_left, c.cut_right]
                     for c in candidates], np.float32).reshape(-1, len(FEATURES))


# --- a row's ink, grouped --------------------------------------------------------------------

def _split_points(cols: np.ndarray, parts: int, spread: float = 3.0) -> list[int]:
    """Where to cut a run of touching digits: the columns with the least ink near the
    evenly spaced guesses (within w / (spread * parts) of them)."""
    w = len(cols)
    cuts = [0]
    for k in range(1, parts):
        guess = int(k * w / parts)
        reach = max(1, int(w / (spread * parts)))
        lo, hi = max(cuts[-1] + 1, guess - reach), min(w - 1, guess + reach)
        if hi > lo:
            window = cols[lo: hi + 1]
            best = np.flatnonzero(window == window.min())
            cuts.append(lo + int(best[np.argmin(np.abs(best + lo - guess))]))
        else:
            cuts.append(guess)
    cuts.append(w)
    return cuts


def _row_height(stats: np.ndarray) -> float:
    """A row's digit height: the median height of its tall pieces."""
    heights = stats[:, 3].astype(float)
    tall = heights[heights >= 0.5 * heights.max()]
    return float(np.median(tall))


def _groups(mask: np.ndarray):
    """The ink of a row of digits grouped into pieces that belong together, left to right,
    and the row's digit height.

    Fragments (pencil grain, chalk, a skipped stroke) are joined by a small closing; a
    piece shorter than a digit joins the digit it overlaps horizontally (a 5 whose top
    stroke is apart, the dot of a broken stroke). Two full-height pieces stay apart even
    when they overlap a little (a slanted 1 under a 7's bar).

    Marks that are not digits (:func:`_marks`) are set apart, so that neither the digit
    model nor the row reader sees them.

    Returns (boxes, height, groups, marks): ``groups`` labels each ink pixel of ``mask``
    with its group's index + 1 (0 where there is no ink, or the ink was dropped as a speck
    or a mark); ``marks`` are (mark, box), left to right."""
    n, _, stats = _components(mask)
    if n <= 1:
        return [], 0.0, np.zeros(mask.shape, np.int32), []
    height = _row_height(stats[1:])
    k = max(3, int(round(GROUP_CLOSE * height)) | 1)
    joined = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats = _components(joined)
    order = sorted(range(1, n), key=lambda i: stats[i, 0] + stats[i, 2] / 2)
    boxes = [list(map(int, stats[i, :4])) for i in order]
    height = _row_height(stats[1:])
    merged: list[list[int]] = []
    members: list[list[int]] = []
    for label, box in zip(order, boxes):
        x, y, w, h = box
        best, best_overlap = None, 0.0
        for j in range(max(0, len(merged) - 2), len(merged)):
            mx, my, mw, mh = merged[j]
            overlap = (min(mx + mw, x + w) - max(mx, x)) / max(1, min(w, mw))
            both_tall = h >= 0.7 * height and mh >= 0.7 * height
            # a blot low in the row and clear of a digit's strokes is a separator ("7.5"),
            # whatever the digit's box spans; one just under a stroke is that stroke's end
            reach = (max(2, int(0.1 * height)), int(0.3 * height))
            if ((_blot(box, merged[j], height) and not _near(labels, box, members[j], reach))
                    or (len(members[j]) == 1 and _blot(merged[j], box, height)
                        and not _near(labels, merged[j], [label], reach))):
                continue
            if overlap > (0.75 if both_tall else 0.3) and overlap > best_overlap:
                best, best_overlap = j, overlap
            # Two short pieces one above the other, side by side within a stroke or two:
            # a digit broken across (a 1 or a 7 whose pen skipped).
            gap_x = max(mx, x) - min(mx + mw, x + w)
            union_h = max(my + mh, y + h) - min(my, y)
            if (not both_tall and gap_x < 0.15 * height and union_h <= 1.25 * height
                    and (y >= my + 0.6 * mh or my >= y + 0.6 * h) and best is None):
                best, best_overlap = j, 0.01
        if best is not None:
            mx, my, mw, mh = merged[best]
            nx, ny = min(mx, x), min(my, y)
            merged[best] = [nx, ny, max(mx + mw, x + w) - nx, max(my + mh, y + h) - ny]
            members[best].append(label)
        else:
            merged.append(box)
            members.append([label])
    stroke = _stroke_width(mask)
    marks = _marks(merged, height, stroke, [_runs(mask, b, stroke) for b in merged])
    keep = [i for i, b in enumerate(merged)
            if i not in marks and max(b[2], b[3]) >= 0.3 * height]  # specks between digits
    lut = np.zeros(n, np.int32)
    for g, i in enumerate(keep):
        lut[members[i]] = g + 1
    groups = lut[labels] * (mask > 0)
    return [tuple(merged[i]) for i in keep], height, groups, [(marks[i], tuple(merged[i])) for i in sorted(marks)]


def _blot(box, beside, height: float) -> bool:
    """Whether ``box`` is small enough for a dot or a comma and low beside ``beside``."""
    x, y, w, h = box
    return h <= MARK_HEIGHT * height and w <= DOT_SIZE * height and y + h / 2 >= beside[1] + 0.6 * beside[3]


def _near(labels: np.ndarray, box, members, reach) -> bool:
    """Whether any of ``members`` (labels) has ink within ``reach`` (across, above) pixels
    of ``box`` (across beside it or below it, and above it)."""
    x, y, w, h = box
    across, above = reach
    around = labels[max(0, y - above): y + h + across, max(0, x - across): x + w + across]
    return bool(np.isin(around, members).any())


def _runs(mask: np.ndarray, box, stroke: float) -> int:
    """How many strokes a vertical line through the middle half of ``box`` crosses, mostly;
    0 where the ink in ``box`` closes a loop (an "o" is no "="), or holds a stroke standing
    up (STANDING x its height: the side of an o, a 3's back; the strokes of "=" lie flat).
    A stroke stands up only when taller than FLAT x the pen's ``stroke`` width (or FLAT_MOST
    x the box's height): a marker's dash is as thick as a fine pen's "=" is tall."""
    x, y, w, h = box
    middle = mask[y: y + h, x + w // 4: x + w - w // 4]
    if middle.size == 0:
        return 0
    ink = mask[y: y + h, x: x + w]
    # paper is 4-connected where ink is 8-connected: a loop closed at a corner holds its paper
    paper = cv2.copyMakeBorder(1 - ink, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1).astype(np.uint8)
    if cv2.connectedComponents(paper, connectivity=4)[0] > 2:  # paper enclosed by ink
        return 0
    flat = min(int(np.ceil(FLAT * stroke)), int(np.ceil(FLAT_MOST * h)))
    upright = np.ones((max(2, int(np.ceil(STANDING * h)), flat), 1), np.uint8)
    if cv2.erode(ink, upright, borderType=cv2.BORDER_CONSTANT, borderValue=0).any():
        return 0
    starts = np.count_nonzero(np.diff(middle.astype(np.int8), axis=0, prepend=0) > 0, axis=0)
    return int(np.median(starts))


def _marks(boxes, height: float, stroke: float, strokes) -> dict[int, str]:
    """The groups of ink (x, y, w, h boxes, ``strokes`` across each) that are marks, not
    digits: a dot or a comma (a blot a stroke or more across, or a short tick, on the
    row's baseline: a thousands separator, a decimal point), a dash (mid-row, wide and
    flat) or two ("="), told by their size and where they sit in the band of the row's
    full-height groups. {index: mark}."""
    tall = [b for b in boxes if b[3] >= 0.7 * height]
    if not tall:
        return {}
    top = float(np.median([b[1] for b in tall]))
    band = max(1.0, float(np.median([b[1] + b[3] for b in tall])) - top)
    found = {}
    for i, (_, y, w, h) in enumerate(boxes):
        if h > MARK_HEIGHT * height * (1.25 if strokes[i] == 2 else 1.0):  # "=" is two dashes' height
            continue
        low = (y + h / 2 - top) / band  # 0 at the top of the band, 1 at its bottom
        if w <= DOT_SIZE * height and low >= 0.8 and max(w, h) >= stroke and min(w, h) >= 0.5 * stroke:
            found[i] = "," if h >= 1.3 * w else "."
        elif w >= DASH_WIDTH * height and 0.25 <= low <= 0.8 and (w >= 1.8 * h or (strokes[i] == 2 and w >= 0.8 * h)):
            found[i] = "=" if strokes[i] == 2 else "-"
    return found


# --- over-segmentation: pieces and the digits they can make --------------------------

@dataclass
class Candidate:
    """Consecutive pieces ``first``..``last`` of a row read as one digit."""

    first: int
    last: int
    digit: Normalized
    width: float  # ink width / the row's digit height
    height: float  # ink height / the row's digit height
    groups: int  # how many groups of ink it takes pieces of
    gap: float  # the widest blank gap between those groups / the row's digit height
    cut_left: float  # strokes its left edge cuts through (0: a gap between groups)
    cut_right: float


def _cuts(cols: np.ndarray, height: float, extra: list[int]) -> list[int]:
    """Where a group of touching digits may be cut: the valleys of its column profile
    (where two digits meet one stroke crosses the column), at least PIECE_SPACING of the
    row height apart, the emptiest first, plus ``extra`` (cuts at even spacing)."""
    w = len(cols)
    lo = max(2, int(PIECE_MIN * height))
    if w < 2 * lo:
        return []
    smooth = np.convolve(cols, np.ones(3, np.float32) / 3, mode="same")
    r = max(1, int(0.04 * height))
    valleys = [i for i in range(lo, w - lo + 1) if smooth[i] <= smooth[max(0, i - r): i + r + 1].min() + 1e-6]
    valleys = sorted(set(valleys), key=lambda i: (smooth[i], i))
    spacing = max(2, PIECE_SPACING * height)
    chosen: list[int] = []
    for i in [e for e in extra if lo <= e <= w - lo] + valleys:
        if all(abs(i - c) >= spacing for c in chosen):
            chosen.append(i)
    limit = int(np.ceil(w / (0.12 * height))) + 1
    return sorted(chosen[:limit])


def number_candidates(image: np.ndarray):
    """A row of digits over-segmented: its groups of ink (:func:`digit_groups`) cut into
    pieces at every plausible place where touching digits meet, and every run of
    consecutive pieces that could be one digit (at most MAX_DIGIT_WIDTH row heights
    wide), each normalized for the model.

    Returns (candidates, pieces, height, ink); pieces are (group, x0, x1) in columns,
    left to right. :func:`read_number` scores every candidate with the model and picks
    the best path through the pieces."""
    return _over_segment(image)[:4]


def _over_segment(image: np.ndarray, ink: Ink | None = None, grouped=None):
    """:func:`number_candidates`, and the row's marks (:func:`_groups`). ``ink`` and
    ``grouped`` (its :func:`_groups`): what the caller already found, not found again."""
    ink = ink or ink_mask(image, number=True)
    mask = ink.mask
    boxes, height, labels, marks = grouped or _groups(mask)
    if not boxes:
        raise NoDigit("only specks or lines: no digit-sized stroke found")
    # The digit height from the groups (a digit's broken pieces are joined by now).
    height = _row_height(np.array(boxes, np.int64).reshape(-1, 4))
    ys, xs = np.nonzero(labels)
    gs = labels[ys, xs] - 1
    xp = (xs - xs.min()).astype(np.int64)  # columns from the row's left edge
    per_group = []
    for g in range(len(boxes)):
        sel = gs == g
        per_group.append((ys[sel], xs[sel], xp[sel]))
    pieces: list[tuple[int, int, int]] = []
    strokes: dict[tuple[int, int], float] = {}
    for g, (gy, _, gp) in enumerate(per_group):
        if len(gp) == 0:
            continue
        x0 = int(gp.min())
        cols = np.bincount(gp - x0).astype(np.float32)
        x1 = x0 + len(cols)
        parts = max(1, int(round((x1 - x0) / (DIGIT_ASPECT * height))))
        extra = [c for p in range(2, parts + 2) for c in _split_points(cols, p)[1:-1]]
        edges = [0] + _cuts(cols, height, extra) + [x1 - x0]
        pieces += [(g, x0 + a, x0 + b) for a, b in zip(edges, edges[1:])]
        for e in edges[1:-1]:  # how many strokes each cut crosses (2 or more: inside a digit)
            near = np.unique(gy[(gp >= x0 + e - 1) & (gp < x0 + e + 1)])
            # runs of ink down the cut, a gap of a few pixels (a ragged edge) closed
            strokes[(g, x0 + e)] = float(1 + np.count_nonzero(np.diff(near) > max(2.0, 0.06 * height)))
    candidates = []
    s = ink.scale
    for i in range(len(pieces)):
        for j in range(i, min(len(pieces), i + MAX_PIECES)):
            run = pieces[i: j + 1]
            xa, xb = min(p[1] for p in run), max(p[2] for p in run)
            if xb - xa > MAX_DIGIT_WIDTH * height and j > i:
                break
            groups = sorted({p[0] for p in run})
            gap = 0.0
            for g0, g1 in zip(groups, groups[1:]):
                a = max(p[2] for p in run if p[0] == g0)
                b = min(p[1] for p in run if p[0] == g1)
                gap = max(gap, (b - a) / height)
            if gap > MAX_JOIN_GAP:
                continue
            py, px, pp = [], [], []
            for g in groups:
                a = min(p[1] for p in run if p[0] == g)
                b = max(p[2] for p in run if p[0] == g)
                gy, gx, gp = per_group[g]
                sel = (gp >= a) & (gp < b)
                py.append(gy[sel])
                px.append(gx[sel])
                pp.append(gp[sel])
            py, px, pp = np.concatenate(py), np.concatenate(px), np.concatenate(pp)
            if len(py) == 0:
                continue
            ya, yb, bx, bx1 = int(py.min()), int(py.max()) + 1, int(px.min()), int(px.max()) + 1
            sub = np.zeros((yb - ya, bx1 - bx), np.uint8)
            sub[py - ya, px - bx] = 1
            box = (int(bx / s), int(ya / s), int(np.ceil(sub.shape[1] / s)), int(np.ceil(sub.shape[0] / s)))
            x28 = to_mnist(sub, ink.ink[ya: yb, bx: bx1])
            first, last = run[0], run[-1]
            candidates.append(Candidate(
                i, j, Normalized(x28=x28, box=box), (int(pp.max()) + 1 - int(pp.min())) / height,
                sub.shape[0] / height, len(groups), gap,
                cut_left=strokes.get((first[0], first[1]), 0.0),
                cut_right=strokes.get((last[0], last[2]), 0.0)))
    return candidates, pieces, height, ink, marks


def row_strip(image: np.ndarray, ink: Ink | None = None) -> np.ndarray:
    """A row of digits as the row reader (:func:`read_number`) sees it: the ink
    that :func:`number_candidates` groups into digits (specks, lines and paper edges
    dropped), cropped, scaled to fill ROW_HEIGHT less the margins (or narrower, when the
    row is longer than ROW_WIDTH allows), left-aligned on black: (ROW_HEIGHT, ROW_WIDTH)
    uint8, ink bright. Raises NoDigit as number_candidates does. ``ink``: the Ink that
    number_candidates already found in ``image`` (it is not found again)."""
    _, _, labels, _ = _groups((ink or ink_mask(image, number=True)).mask)
    return _strip(labels)[0]


def _strip(labels: np.ndarray) -> tuple[np.ndarray, tuple[int, float]]:
    """:func:`row_strip` of grouped ink, and where its columns lie in ``labels``: (strip,
    (the ink's first column, strip pixels per ink pixel))."""
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        raise NoDigit("only specks or lines: no digit-sized stroke found")
    crop = (labels[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] > 0).astype(np.float32)
    h, w = crop.shape
    scale = min((ROW_HEIGHT - 2 * ROW_MARGIN) / h, (ROW_WIDTH - 2 * ROW_MARGIN) / w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    small = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((ROW_HEIGHT, ROW_WIDTH), np.float32)
    top = (ROW_HEIGHT - nh) // 2
    out[top: top + nh, ROW_MARGIN: ROW_MARGIN + nw] = small
    return np.round(out * 255).astype(np.uint8), (int(xs.min()), scale)


# --- the reading ---------------------------------------------------------------------

def _only(p: np.ndarray, digit: int) -> np.ndarray:
    """Probabilities that allow ``digit`` only (the others nearly impossible)."""
    out = np.full_like(p, 1e-9)
    out[digit] = p[digit]
    return out


def best_path(candidates, probs: np.ndarray, n: int, whole: np.ndarray | None = None,
              digits: list[int] | None = None) -> list[int]:
    """Dynamic programming over ``n`` pieces: the indices of the candidates that cover
    them left to right with the highest total :func:`candidate_score` (``whole``: the
    verifier's P(whole digit) for each candidate, if there is one). A piece that is a
    whole group of ink much shorter than a digit (a speck, a stray mark) may be left out,
    at SKIP_COST.

    With ``digits``, only paths that read exactly these digits, in order, count: each
    candidate is scored as the digit it stands for. [] when no path reads them."""
    k = 0 if digits is None else len(digits)
    best = np.full((n + 1, k + 1), -np.inf)  # best[piece, digits read so far]
    best[0, 0] = 0.0
    back: dict = {}
    starts: dict = {}
    for i, c in enumerate(candidates):
        starts.setdefault(c.first, []).append(i)
    skippable = {c.first for c in candidates if c.first == c.last and not c.cut_left
                 and not c.cut_right and c.height < SKIP_HEIGHT}
    for f in range(n):
        for t in range(k + 1):
            here = best[f, t]
            if here == -np.inf:
                continue
            if f in skippable and here - SKIP_COST > best[f + 1, t]:
                best[f + 1, t], back[(f + 1, t)] = here - SKIP_COST, (f, t, None)
            if digits is not None and t == k:
                continue
            nt = t if digits is None else t + 1
            for i in starts.get(f, ()):
                c = candidates[i]
                p = probs[i] if digits is None else _only(probs[i], digits[t])
                score = here + candidate_score(c, p, None if whole is None else whole[i])
                if score > best[c.last + 1, nt]:
                    best[c.last + 1, nt], back[(c.last + 1, nt)] = score, (f, t, i)
    path, state = [], (n, k)
    while state in back:
        f, t, i = back[state]
        if i is not None:
            path.append(i)
        state = (f, t)
    return path[::-1]




def candidate_score(c, p: np.ndarray, whole: float | None = None) -> float:
    """How good ``c`` (a :class:`Candidate`) is as one digit of a
    path: the model's log-probability of its best class, given the class's width prior,
    plus the priors on cutting and joining ink, plus WHOLE_WEIGHT x the log-odds that it
    is one whole digit (``whole``, from the verifier) when there is one."""
    logp = np.log(np.maximum(p, 1e-9))
    width_cost = np.full(NUM_CLASSES, max(0.0, c.width - WIDE) * 10.0)
    width_cost[np.arange(NUM_CLASSES) != 1] += max(0.0, NARROW - c.width) * 20.0
    score = float((logp - width_cost).max()) + DIGIT_BONUS
    score -= max(0.0, SHORT - c.height) * 10.0
    for strokes in (c.cut_left, c.cut_right):  # each cut is shared by two digits
        if strokes:
            score -= (CUT_COST + CUT_STROKE_COST * max(0.0, strokes - 1)) / 2
    score -= (c.groups - 1) * JOIN_COST + JOIN_GAP_COST * c.gap
    if whole is not None:
        w = min(max(float(whole), WHOLE_CLIP), 1.0 - WHOLE_CLIP)
        score += WHOLE_WEIGHT * float(np.log(w / (1.0 - w)))
    return score


def greedy_text(probs: np.ndarray) -> list[int]:
    """The best class of each column, repeats merged, blanks dropped."""
    best = np.asarray(probs).argmax(-1)
    keep = (best != BLANK) & np.r_[True, best[1:] != best[:-1]]
    return [int(d) for d in best[keep]]


def _ctc_states(probs: np.ndarray, digits: list[int]):
    """CTC's view of ``digits`` over the columns: (log-probabilities, the states: a blank
    before, between and after the digits, and which states may be entered from two back:
    a digit unlike the one two back)."""
    logp = np.log(np.asarray(probs, np.float64) + PROB_FLOOR)
    states = np.full(2 * len(digits) + 1, BLANK)
    states[1::2] = digits
    skip = np.zeros(len(states), bool)
    skip[2:] = (states[2:] != BLANK) & (states[2:] != states[:-2])
    return logp, states, skip


def log_likelihood(probs: np.ndarray, digits: list[int]) -> float:
    """log P(digits | row) under the columns' probabilities: CTC's forward algorithm over
    the digits with a blank before, between and after them (NumPy, a few milliseconds;
    TensorFlow's ctc_loss costs hundreds of milliseconds a call in eager mode)."""
    if not digits or len(digits) > MAX_DIGITS:
        return -np.inf
    logp, states, skip = _ctc_states(probs, digits)
    n = len(states)
    emit = logp[:, states]  # (columns, states)
    alpha = np.full(n, -np.inf)
    alpha[:2] = emit[0, :2]
    one_back, two_back = np.full(n, -np.inf), np.full(n, -np.inf)
    for column in emit[1:]:
        one_back[1:] = alpha[:-1]
        two_back[2:] = np.where(skip[2:], alpha[:-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, one_back), two_back) + column
    return float(np.logaddexp(alpha[-1], alpha[-2]))


def align(probs: np.ndarray, digits: list[int]) -> list[tuple[int, int]]:
    """The columns each digit holds in the likeliest CTC path that spells ``digits``
    (Viterbi over the states of :func:`log_likelihood`): (first, last) per digit."""
    logp, states, skip = _ctc_states(probs, digits)
    n = len(states)
    emit = logp[:, states]
    score = np.full(n, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((len(logp), n), np.int64)
    index = np.arange(n)
    options = np.full((3, n), -np.inf)
    for t, column in enumerate(emit[1:], 1):
        options[0] = score
        options[1, 1:] = score[:-1]
        options[2, 2:] = np.where(skip[2:], score[:-2], -np.inf)
        step = options.argmax(0)
        back[t] = index - step
        score = options[step, index] + column
    state = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2
    path = [state]
    for t in range(len(logp) - 1, 0, -1):
        state = back[t, state]
        path.append(state)
    path = np.asarray(path[::-1])
    spans = []
    for k in range(len(digits)):
        held = np.flatnonzero(path == 2 * k + 1)
        spans.append((int(held[0]), int(held[-1])) if len(held) else (0, 0))
    return spans


def read_number(image: np.ndarray, digits, verifier=None, row_reader=None) -> Number:
    """The digits of a number written in one row, left to right.

    ``digits`` maps (N, 28, 28) images to (N, 10) probabilities (the digit model);
    ``verifier`` and ``row_reader`` are the companion networks
    (:class:`digitrec.reading.engine.Network`), each left out where None.

    The row reader reads the row whole first: where it finds its reading at least
    ROW_LEAD likely, that is the reading, and the CTC alignment gives each digit its ink
    (:func:`_aligned`); where the digit model doubts a digit's share of the ink, the
    candidates' best path that reads the same gives the digits' boxes instead.
    Otherwise the row is over-segmented into pieces; every run of
    consecutive pieces that could be one digit is read by the model (all in one batch),
    and :func:`best_path` picks the reading whose digits the model is surest of, with
    priors on each digit's width and height and on cutting or joining ink
    (:func:`candidate_score`), and the verifier's opinion of each candidate. Where the row
    reader reads the row otherwise, the best path that reads as it does competes with
    that reading (:func:`_second_reading`)."""
    try:
        ink = ink_mask(image, number=True)
        grouped = _groups(ink.mask)
        if not grouped[0]:
            raise NoDigit("only specks or lines: no digit-sized stroke found")
    except NoDigit as exc:
        return Number(reason=str(exc))
    labels, marks = grouped[2], grouped[3]
    columns, lead, lead_probability, sure, aligned = None, [], 0.0, False, []
    if row_reader is not None:
        strip, strip_at = _strip(labels)
        columns = row_reader(strip.astype(np.float32)[None, ..., None] / 255.0)[0]
        lead = greedy_text(columns)
        if lead and len(lead) <= MAX_DIGITS:
            lead_probability = float(np.exp(log_likelihood(columns, lead)))
        sure = ROW_LEAD is not None and lead_probability >= ROW_LEAD
        if sure:
            aligned = _aligned(columns, lead, labels, ink, strip_at, digits, grouped[1])
            # A row squeezed to fit the strip (longer than the rows it learnt), or a share
            # of ink the digit model doubts, is left to the candidates.
            squeezed = strip[:, ROW_WIDTH - ROW_MARGIN - 1].any()
            if aligned and not squeezed and min(d.confidence for d in aligned) >= LOW_CONFIDENCE:
                return Number(aligned, row_probability=lead_probability, marks=_between(marks, aligned, ink.scale))
    candidates, pieces, _, _, _ = _over_segment(image, ink, grouped)
    crops = np.stack([c.digit.x28 for c in candidates]).astype(np.float32)
    probs = digits(crops)
    whole = None
    if verifier is not None:
        whole = verifier(crop=crops[..., None], geometry=candidate_features(candidates)).reshape(-1)
    path = best_path(candidates, probs, len(pieces), whole)
    read = [int(probs[k].argmax()) for k in path]
    row_probability, out = None, None
    if columns is not None and path and len(read) <= MAX_DIGITS:
        # the best path that reads as the row reader does, where it reads otherwise
        lead_path = (best_path(candidates, probs, len(pieces), whole, digits=lead)
                     if lead and lead != read and len(lead) <= MAX_DIGITS else [])
        if sure and lead != read and (lead_path or aligned):
            path, read, row_probability = lead_path, lead, lead_probability
            out = None if lead_path else aligned  # no path reads it (touching digits): the alignment's shares
        else:
            path, read, row_probability = _second_reading(columns, candidates, probs, whole, (path, read),
                                                          (lead_path, lead))
    if out is None:
        out = [Prediction(d, float(probs[k][d]), probs[k], candidates[k].digit.x28, box=candidates[k].digit.box)
               for k, d in zip(path, read)]
    if not out:
        return Number(reason="only specks or lines: no digit-sized stroke found")
    return Number(out, row_probability=row_probability, marks=_between(marks, out, ink.scale))


def _aligned(columns, reading, labels, ink: Ink, strip_at, digits, height: float | None = None) -> list[Prediction]:
    """The row reader's ``reading`` as digits with boxes: each digit's place in the row is
    the middle of the columns it holds in the CTC alignment (:func:`align`), and each
    place falls in a group of ink (:func:`_groups`), or the nearest one. A group holding
    one place is that digit's; a group holding several (touching digits) is cut where
    touching digits are (:func:`_split_points`) into as many; a group holding none joins
    the nearest digit within ``height`` (a stroke the grouping left apart) or is left out
    (a stray mark the reader skipped). Each digit's ink is read by the digit model, whose
    confidence in the row reader's digit is the digit's. Empty when a digit gets no ink."""
    first, k = strip_at
    step = ROW_WIDTH / FRAMES
    centres = np.array([first + ((a + b + 1) / 2 * step - ROW_MARGIN) / k for a, b in align(columns, reading)])
    height = height or float(labels.shape[0])
    ys, xs = np.nonzero(labels)
    gs = labels[ys, xs]
    groups = np.unique(gs)
    spans = np.array([(xs[gs == g].min(), xs[gs == g].max() + 1) for g in groups], np.float64).reshape(-1, 2)
    # each digit's place in the group it lies in, or the nearest group
    gap = np.maximum(spans[None, :, 0] - centres[:, None], centres[:, None] - spans[None, :, 1] + 1)
    home = gap.argmin(1)
    owner = np.full(len(xs), -1)
    for i, g in enumerate(groups):
        sel = gs == g
        held = np.flatnonzero(home == i)
        if len(held) == 0:  # a piece no digit lies in: a digit's stroke, or a mark skipped
            near = gap[:, i]
            if near.min() <= height:
                owner[sel] = int(near.argmin())
            continue
        x0 = int(spans[i, 0])
        cuts = _split_points(np.bincount(xs[sel] - x0), len(held))[1:-1]
        owner[sel] = held[np.searchsorted(np.asarray(cuts) + x0, xs[sel], side="right")]
    crops, boxes = [], []
    s = ink.scale
    for d in range(len(reading)):
        sel = owner == d
        if not sel.any():
            return []
        py, px = ys[sel], xs[sel]
        ya, yb, xa, xb = int(py.min()), int(py.max()) + 1, int(px.min()), int(px.max()) + 1
        sub = np.zeros((yb - ya, xb - xa), np.uint8)
        sub[py - ya, px - xa] = 1
        crops.append(to_mnist(sub, ink.ink[ya: yb, xa: xb]))
        boxes.append((int(xa / s), int(ya / s), int(np.ceil((xb - xa) / s)), int(np.ceil((yb - ya) / s))))
    probs = digits(np.stack(crops).astype(np.float32))
    return [Prediction(d, float(p[d]), p, x28, box=box) for d, p, x28, box in zip(reading, probs, crops, boxes)]


def _between(marks, digits, scale: float) -> list[tuple[int, str]]:
    """The marks that stand between two digits, as (digits before it, mark): a separator
    or a decimal point people write. A mark before the first digit or after the last (a
    cheque's closing dash) is left out, and so is a second mark in the same gap."""
    centres = [d.box[0] + d.box[2] / 2 for d in digits]
    kept: dict[int, str] = {}
    for mark, (x, _, w, _) in marks:
        before = sum(c < (x + w / 2) / scale for c in centres)
        if 0 < before < len(digits) and mark in KEPT:
            kept.setdefault(before, mark)
    return sorted(kept.items())


def _second_reading(columns, candidates, probs, whole, reading, other):
    """(path, digits, P(digits | row)): ``reading`` (the best path and its digits), or
    ``other`` (the best path that reads as the row reader does, and its reading) where the
    two together prefer it, and the row reader's probability of the reading kept. Each
    reading is scored by its path's total :func:`candidate_score` plus ROW_READER_WEIGHT x
    the row reader's log P(digits | row); ``other`` counts only when its path is not empty
    (some path through the candidates reads it), so its digits keep boxes."""
    readings = [reading] + ([other] if other[0] else [])
    log_p = [log_likelihood(columns, d) for _, d in readings]

    def total(i):
        p, d = readings[i]
        return (sum(candidate_score(candidates[k], _only(probs[k], c), None if whole is None else whole[k])
                    for k, c in zip(p, d))
                + ROW_READER_WEIGHT * log_p[i])

    best = max(range(len(readings)), key=total)  # the path's reading on a tie
    return (*readings[best], float(np.exp(log_p[best])))
