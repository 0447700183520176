"""Where a user's image becomes the 28x28 input MNIST was made of.

    image (gray / RGB / RGBA, any size, any polarity)
      -> to_gray     transparency composited (or the alpha channel itself taken as ink)
      -> ink_map     shrunk to working size, polarity found, light flattened (black-hat
                     with a window wider than any stroke): ink bright on dark in [0, 1];
                     a crop someone already made (MNIST's 28x28, a 16x16 scan, a 32x32
                     bitmap: is_crop) has no light to flatten, its paper is found from
                     its frame, and its digit may touch the frame and cover half of it
      -> ink_mask    a threshold set by the ink's own contrast and the image's noise;
                     ruled / squared lines and paper edges removed (Hough), specks dropped
      -> to_mnist    crop to the ink, strokes brought near MNIST's width (a small
                     picture's too, where they are very thick), fit 20x20
                     keeping the aspect ratio, centre of mass at the centre of 28x28
    normalize(image) does all of it for one digit; the number reader
    (:mod:`digitrec.reading.numbers`) finds a row's ink with ink_mask(image, number=True)
    and sends each candidate digit through the same to_mnist().

Anything that is not a digit raises :class:`NoDigit` with a reason a person can read.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitrec.reading.decode import check_array

WORK_SIZE = 160  # one digit: larger images are shrunk to this many pixels on their long side
NUMBER_LONG, NUMBER_SHORT = 1200, 160  # a row of digits: caps on the long and short side
BOX = 20  # MNIST digits are fitted in a 20x20 box...
SIZE = 28  # ...and centred by centre of mass in 28x28
MNIST_STROKE = 2.2  # median MNIST stroke width, in pixels of the 20x20 box (2*area/perimeter)
STROKE_RANGE = (1.5, 3.4)  # thinner strokes are redrawn, thicker ones thinned, to MNIST_STROKE
FLATTEN_MIN = 32  # pictures this many pixels or more on their short side get their light
# flattened (ink_map) and their polarity judged after it (_polarity); smaller ones are
# crops such as MNIST's own 28x28, where the digit is most of the picture
ACROSS = 0.8  # a ruled line runs across this much of the picture (at least one of them)
SOFT_EDGE = 0.2  # outline gradient / mean ink below this: a shadow's edge, not a stroke
MIN_CONTRAST = 0.08  # ink fainter than this (of full scale) is no ink
POLARITY_WINDOW = 0.5  # _polarity: the light is a median over this much of the short side
WEAK = 0.8  # lines are looked for in ink above this x the threshold (a faint line stays whole)
CROP_MAX, CROP_LEVELS = 48, 16  # a picture under CROP_MAX px on its short side with at most
# CROP_LEVELS grey levels is a crop someone made (a 32x32 bitmap), not a photo: no light to flatten
CROP_INK = 0.85  # a crop's digit may cover this much of it (a thick digit stretched to fill the box)
CROP_THICK = 5.0  # a crop's strokes wider than this (pixels of the 20x20 box) are thinned; MNIST's
# own reach it in fewer than 1 in 100


class NoDigit(ValueError):
    """The image holds no digit; ``str(exc)`` says why."""


@dataclass
class Ink:
    """An image's ink, bright on dark, at working resolution."""

    ink: np.ndarray  # float32 [0, 1], light flattened
    mask: np.ndarray  # uint8 {0, 1}: the digit's strokes (specks, lines, edges removed)
    scale: float  # working pixels per original pixel
    inverted: bool  # True when the original had dark ink on light paper


# --- gray and ink ----------------------------------------------------------------------

def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray/RGB/RGBA -> float32 gray in [0, 1].

    Transparency: where most of the picture is transparent (a web canvas), the alpha
    channel *is* the drawing, so it is returned as bright ink on black whatever colour
    the transparent pixels store. Otherwise transparent parts are filled with the colour
    of the opaque ones (a photo with transparent corners keeps one background)."""
    image = check_array(image)
    if image.ndim == 2:
        return image.astype(np.float32) / 255.0
    if image.shape[2] == 4:
        a8 = image[..., 3]
        opaque = a8 > 127
        frac = float(opaque.mean())
        if frac < 0.5:
            return a8.astype(np.float32) / 255.0  # the strokes are what is painted
        gray = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        if frac < 0.999:
            alpha = a8.astype(np.float32) / 255.0
            fill = float(np.median(gray[opaque]))
            gray = alpha * gray + (1.0 - alpha) * fill
        return gray
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def _shrink(gray: np.ndarray, scale: float) -> np.ndarray:
    h, w = gray.shape
    if scale >= 1.0:
        return gray
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def is_crop(gray: np.ndarray) -> bool:
    """A picture already cut to its digit by someone else (MNIST's 28x28, a 16x16 scan, a
    32x32 bitmap): the digit is most of it and may touch its edges, and no light varies."""
    short = min(gray.shape)
    if short < FLATTEN_MIN:
        return True
    return short < CROP_MAX and len(np.unique(np.round(gray * 255))) <= CROP_LEVELS


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]: the level that best splits them in two."""
    u8 = np.clip(np.asarray(values, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8).reshape(1, -1)
    return float(cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]) / 255


def _pieces(mask: np.ndarray) -> int:
    """Connected pieces of at least 3 pixels."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] >= 3).sum())


def _crop_polarity(gray: np.ndarray) -> bool | None:
    """A crop's polarity, whatever share of it the ink covers: split in two by Otsu, the
    paper is the side that holds most of the frame (the outermost pixels). Where the
    digit covers much of the frame too (stretched to fill its box), the ink is the side in
    fewer pieces: a digit is one or two strokes, and a digit that fills the box cuts the
    paper into corners and holes. None when neither tells."""
    bright = gray > _otsu(gray)
    frame = np.concatenate([bright[0], bright[-1], bright[1:-1, 0], bright[1:-1, -1]])
    share = float(frame.mean())
    if abs(share - 0.5) >= 0.25:
        return share > 0.5
    pieces_bright, pieces_dark = _pieces(bright), _pieces(~bright)
    if pieces_bright != pieces_dark:
        return pieces_bright > pieces_dark
    if abs(share - 0.5) >= 0.05:
        return share > 0.5
    return None


def _polarity(gray: np.ndarray, crop: bool = False) -> bool:
    """True when the ink is darker than the paper. A crop's is judged by its frame
    (:func:`_crop_polarity`); otherwise the paper is most of the picture, so the median
    is paper and the ink lies on the far side of it."""
    if crop:
        framed = _crop_polarity(gray)
        if framed is not None:
            return framed
    if min(gray.shape) >= FLATTEN_MIN:  # judge the tails after taking out slow light changes
        f = min(1.0, 96 / max(gray.shape))
        small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
        # The light is a median over half the picture: strokes are a minority in any such
        # window, and a shadow's edge stays sharp in it. (A blur smears that edge, and its
        # bright side then outweighs faint pencil: the paper was taken for the ink.)
        k = max(5, int(POLARITY_WINDOW * min(small.shape)) | 1)
        light = cv2.medianBlur(np.clip(small * 255 + 0.5, 0, 255).astype(np.uint8), k)
        detail = small - light.astype(np.float32) / 255
    else:
        detail = gray - float(np.median(gray))
    lo, hi = np.percentile(detail, (0.3, 99.7))
    dark, light = -lo, hi
    if abs(dark - light) < 0.05:  # no clear tail either way: go by the paper's brightness
        return float(np.median(gray)) > 0.5
    return dark > light


def ink_map(image: np.ndarray, work_size=WORK_SIZE, number=False) -> tuple[np.ndarray, float, bool]:
    """Gray image with ink bright on dark and uneven lighting flattened.

    Returns (ink in [0, 1] at working size, scale, inverted)."""
    return _ink_map(image, work_size, number)[:3]


def _ink_map(image: np.ndarray, work_size=WORK_SIZE, number=False) -> tuple[np.ndarray, float, bool, bool]:
    """:func:`ink_map`, and whether the picture is a crop (:func:`is_crop`)."""
    gray = to_gray(image)
    h, w = gray.shape
    if number:
        scale = min(1.0, NUMBER_LONG / max(h, w), NUMBER_SHORT / min(h, w))
    else:
        scale = min(1.0, work_size / max(h, w))
    gray = _shrink(gray, scale)
    hh, ww = gray.shape
    crop = is_crop(gray) if not number else min(hh, ww) < FLATTEN_MIN
    if not crop:
        inverted = _polarity(gray)
        k = max(9, int(min(hh, ww) * (0.22 if not number else 0.3)) | 1)
        ink = 1.0 - gray if inverted else gray
        # The paper (or board) is what an opening wider than any stroke leaves (a square
        # window: separable, fast). Ink is measured relative to it: dividing keeps the
        # contrast of strokes in a shadow; a straight shadow edge cancels out.
        paper = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        ink = (ink - paper) / np.maximum(1.0 - paper, 0.25)
    else:  # crops (MNIST itself, 28x28): polarity from the frame, ink measured from the paper
        inverted = _polarity(gray, crop=True)
        ink = 1.0 - gray if inverted else gray
        ink = ink - _paper_level(ink)
    return np.clip(ink, 0, 1).astype(np.float32), scale, inverted, crop


def _paper_level(ink: np.ndarray) -> float:
    """A crop's paper: the median of the fainter side of Otsu's split (the median of the
    whole would be ink where the ink covers half of it)."""
    paper = ink[ink <= _otsu(ink)]
    return float(np.median(paper if paper.size else ink))


# --- threshold and clean-up ------------------------------------------------------------

def _noise_level(ink: np.ndarray, crop: bool = False) -> float:
    """The paper's level plus its robust spread (MAD, of the faintest pixels)."""
    sample = ink[::2, ::2] if ink.size > 40000 else ink
    # Only the faintest 70% (a row of big digits can cover a third of the picture); of a
    # crop, its paper side only (its digit can cover half of it).
    limit = _otsu(sample) if crop else np.percentile(sample, 70)
    sample = sample[sample <= limit]
    med = float(np.median(sample))
    return med + 2.0 * 1.4826 * float(np.median(np.abs(sample - med)))


def _remove_lines(mask: np.ndarray, weak: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop ruled / squared lines and paper edges: thin straight runs from one side of the
    picture to the other, nearly horizontal or vertical (tilted photos included). Ink of a
    digit crossing a line is put back where the line cut through it.

    ``weak`` (a mask at a lower threshold, holding ``mask``) is where lines are looked
    for: a faint line the threshold breaks into dashes is still whole there.

    Returns the mask without the lines, and the band around the lines found (None where
    there are none), where specks are judged more strictly."""
    h, w = mask.shape
    if min(h, w) < 40:
        return mask, None
    find = mask
    if weak is not None:  # its thin parts only: the edge of a faint shadow is no line
        solid = cv2.morphologyEx(weak, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        find = mask | (weak & (1 - cv2.dilate(solid, np.ones((5, 5), np.uint8))))
    if find.sum() < 0.4 * min(h, w):
        return mask, None  # too little ink for a line across
    # Hough on a copy at most 200 pixels on a side (cheap); a thin line survives the shrink.
    f = min(1.0, 200 / max(h, w))
    small = find
    if f < 1:
        small = cv2.resize(find.astype(np.float32), None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        small = (small > 0).astype(np.uint8)
    sh, sw = small.shape
    found = cv2.HoughLinesP(small, 1, np.pi / 180, threshold=int(0.4 * min(sh, sw)),
                            minLineLength=int(0.5 * min(sh, sw)), maxLineGap=max(2, min(sh, sw) // 30))
    if found is None:
        return mask, None
    found = found.reshape(-1, 4).astype(np.float64) / f
    lines = np.zeros_like(mask)
    thick = max(4, int(round(min(h, w) / 120)) + 3)
    positions = set()
    segs = found
    dxs, dys = np.abs(segs[:, 2] - segs[:, 0]), np.abs(segs[:, 3] - segs[:, 1])
    # Once one line crosses the whole picture it is ruled paper: shorter runs exactly
    # parallel to the page (a line broken by shadow or by the digit) go too.
    across_h = bool(((dxs >= dys) & (dys <= 0.45 * dxs) & (dxs >= ACROSS * w)).any())
    across_v = bool(((dys > dxs) & (dxs <= 0.45 * dys) & (dys >= ACROSS * h)).any())
    for x0, y0, x1, y1 in segs:
        dx, dy = abs(x1 - x0), abs(y1 - y0)
        long_h = dx >= ACROSS * w or (across_h and dx >= 0.4 * w and dy <= 0.05 * dx)
        long_v = dy >= ACROSS * h or (across_v and dy >= 0.4 * h and dx <= 0.05 * dy)
        if dx >= dy and dy <= 0.45 * dx and long_h:  # nearly horizontal, across
            slope = (y1 - y0) / (x1 - x0)
            ya, yb = y0 - slope * x0, y0 + slope * (w - 1 - x0)  # extended to both sides
            cv2.line(lines, (0, int(round(ya))), (w - 1, int(round(yb))), 1, thick)
            positions.add(("h", int((ya + yb) / 2 // (2 * thick))))
        elif dy > dx and dx <= 0.45 * dy and long_v:  # nearly vertical, top to bottom
            slope = (x1 - x0) / (y1 - y0)
            xa, xb = x0 - slope * y0, x0 + slope * (h - 1 - y0)
            cv2.line(lines, (int(round(xa)), 0), (int(round(xb)), h - 1), 1, thick)
            positions.add(("v", int((xa + xb) / 2 // (2 * thick))))
    if not lines.any():
        return mask, None
    band = cv2.dilate(lines, np.ones((thick + 2, thick + 2), np.uint8))  # where lines run
    lines &= mask
    kept = mask & (1 - lines)
    if kept.sum() < 0.2 * mask.sum() and len(positions) <= 2:
        return mask, None  # one straight stroke and nothing else: a "1", not ruling
    # Put back the digit's ink where a line crossed a stroke: a line pixel with ink on
    # both sides of it across the line.
    k = 2 * thick + 1
    across = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((k, 1), np.uint8)) | \
        cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((1, k), np.uint8))
    return kept | (lines & across), band


def _components(mask: np.ndarray):
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return n, labels, stats


def _solid(blob: np.ndarray) -> bool:
    """A filled shape (a shadow wedge, a blot), not a pen stroke: wide for its size."""
    blob = blob.astype(np.uint8)
    return _stroke_width(blob) > 0.22 * max(blob.shape)


def _hairline(bw: int, bh: int) -> bool:
    """A straight axis-aligned hairline (what is left of a ruled line or a page edge)."""
    return min(bw, bh) <= 3 and max(bw, bh) >= 6 * min(bw, bh)


def _drop_specks(mask: np.ndarray, number: bool = False, ruled: np.ndarray | None = None,
                 crop: bool = False) -> np.ndarray:
    """Keep the components big enough to be strokes; specks, noise and paper edges go.
    A crop has no paper edges: its digit may touch or fill the frame."""
    n, labels, stats = _components(mask)
    if n <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    extent = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    big = int(np.argmax(areas))
    biggest, big_extent = areas[big], extent[big]
    h, w = mask.shape
    keep = np.zeros(n, bool)
    for i in range(n - 1):
        x, y, bw, bh = stats[i + 1, :4]
        touches = not crop and (x == 0 or y == 0 or x + bw == w or y + bh == h)
        ok = areas[i] >= max(0.04 * biggest, 3) and extent[i] >= 0.12 * big_extent
        if touches and (areas[i] < 0.3 * biggest or bw >= 0.95 * w or bh >= 0.95 * h
                        or _solid(labels[y: y + bh, x: x + bw] == i + 1)):
            ok = False  # a corner of paper, a shadow or page edge
        if _hairline(bw, bh) and touches:
            ok = False  # a page edge
        if ruled is not None and ruled[y: y + bh, x: x + bw][labels[y: y + bh, x: x + bw] == i + 1].mean() > 0.8:
            ok = False  # what is left of a ruled line (a "1" merely crossing one stays)
        if touches and min(h, w) >= 48:
            blob = labels[y: y + bh, x: x + bw] == i + 1
            contact = max(blob[0].sum() if y == 0 else 0, blob[-1].sum() if y + bh == h else 0,
                          blob[:, 0].sum() if x == 0 else 0, blob[:, -1].sum() if x + bw == w else 0)
            if contact >= 0.35 * max(bw, bh):
                ok = False  # lies along the edge: a shadow, the page's edge
        keep[i + 1] = ok
    if not keep.any() and min(h, w) < 64:
        # A small tight crop: the digit itself reaches the border; nothing else is there.
        x, y, bw, bh = stats[big + 1, :4]
        if not _hairline(bw, bh):
            keep[big + 1] = True
    return keep[labels].astype(np.uint8)


def _drop_soft(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Drop pieces reaching the picture's edge whose outline is soft: the edge of a shadow
    left over by the light flattening. A pen stroke's edge is sharp (its ink falls to
    paper within a pixel or two)."""
    if min(mask.shape) < 48 or not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()):
        return mask  # nothing reaches the edge (a region find cut out has paper all round)
    n, labels, stats = _components(mask)
    if n <= 1:
        return mask
    h, w = mask.shape
    gx = cv2.Sobel(ink, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(ink, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.sqrt(gx * gx + gy * gy) / 8.0
    edge = mask - cv2.erode(mask, np.ones((3, 3), np.uint8))
    keep = np.ones(n, bool)
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        if not (x == 0 or y == 0 or x + bw == w or y + bh == h):
            continue
        sl = (slice(y, y + bh), slice(x, x + bw))
        mine = labels[sl] == i
        rim = mine & (edge[sl] > 0)
        if rim.sum() < 8:
            continue
        sharpness = float(grad[sl][rim].mean()) / max(float(ink[sl][mine].mean()), 1e-3)
        if sharpness < SOFT_EDGE:
            keep[i] = False
    keep[0] = False
    return keep[labels].astype(np.uint8)


def ink_mask(image: np.ndarray, number: bool = False) -> Ink:
    """Threshold the ink map and keep what can be part of a digit."""
    ink, scale, inverted, crop = _ink_map(image, number=number)
    if ink.size == 0:
        raise NoDigit("the image is empty")
    # Smooth a little: pencil grain, chalk and JPEG noise hold together as strokes.
    smooth = cv2.GaussianBlur(ink, (3, 3), 0.8) if min(ink.shape) >= 48 else ink
    noise = _noise_level(smooth, crop)
    peak = float(np.percentile(smooth, 99.7))
    peak = max(peak, 0.5 * float(smooth.max()))
    if peak < MIN_CONTRAST or peak < 3.0 * noise:
        raise NoDigit("blank image: no ink found")
    level = max(0.42 * peak, 2.5 * noise, MIN_CONTRAST * 0.75)
    mask = (smooth > level).astype(np.uint8)
    if mask.mean() > (CROP_INK if crop else 0.35 if min(mask.shape) >= 80 else 0.5):
        raise NoDigit("no clear digit: the image is mostly ink or noise")
    ruled = None
    if not crop:  # a crop holds its digit only: no ruled lines, no shadows
        weak = (smooth > max(WEAK * level, 2.0 * noise)).astype(np.uint8) if min(mask.shape) >= 64 else None
        mask, ruled = _remove_lines(mask, weak)
        mask = _drop_soft(mask, smooth)
    mask = _drop_specks(mask, number, ruled, crop)
    n = _components(mask)[0] - 1
    if n > (40 if number else 12):
        raise NoDigit("no clear digit: scattered specks or noise")
    if not mask.any():
        raise NoDigit("only specks or lines: no digit-sized stroke found")
    ys, xs = np.nonzero(mask)
    tall = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    stats = _components(mask)[2][1:]
    biggest = int(np.maximum(stats[:, 2], stats[:, 3]).max())
    least = 0.2 * min(mask.shape) if number else 0.08 * max(mask.shape)
    if biggest < max(4, least) and max(mask.shape) >= 48:
        raise NoDigit("only a speck: no digit-sized stroke found")
    if tall < 2.2 * _stroke_width(mask) and tall < 0.3 * max(mask.shape):
        raise NoDigit("only a dot or a blot: no digit-shaped stroke found")
    return Ink(ink=smooth, mask=mask, scale=scale, inverted=inverted)


# --- 28x28 -----------------------------------------------------------------------------

def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width: 2 * area / perimeter (a long thin stroke's perimeter is ~2x its length)."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(mask.sum()) / max(perimeter, 1.0)


def _redraw(mask: np.ndarray, width: float) -> np.ndarray:
    """Redraw a binary drawing with strokes ``width`` pixels wide: its centre lines (the
    ridge of the distance transform), dilated."""
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8)) - 0.75) & (dist > 0.5)
    d = max(1, int(round(width)))
    if d <= 1:
        return ridge.astype(np.uint8)
    return cv2.dilate(ridge.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d)))


CENTRE = 14.0  # where MNIST's centres of mass lie (pixel indices; measured on the test set)


def _thin(mask: np.ndarray, width: float) -> np.ndarray:
    """Thin a thick (marker) drawing to strokes about ``width`` wide: an erosion by the
    excess, with the centre lines kept so that no stroke vanishes."""
    excess = (_stroke_width(mask) - width) / 2
    if excess < 1:
        return mask
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    return (dist > excess).astype(np.uint8) | _redraw(mask, max(1.0, 0.6 * width))


def _centre(out: np.ndarray) -> np.ndarray:
    """Move the centre of mass to MNIST's, by whole pixels as MNIST did (a sub-pixel shift
    would blur the digit, which costs the model accuracy)."""
    m = cv2.moments(out)
    if m["m00"] > 0:
        dx = int(round(CENTRE - m["m10"] / m["m00"]))
        dy = int(round(CENTRE - m["m01"] / m["m00"]))
        out = cv2.warpAffine(out, np.float32([[1, 0, dx], [0, 1, dy]]), (SIZE, SIZE),
                             flags=cv2.INTER_NEAREST, borderValue=0)
    return out


def to_mnist(mask: np.ndarray, ink: np.ndarray | None = None) -> np.ndarray:
    """A mask holding one digit -> 28x28 float32 in [0, 1], MNIST-style.

    ``mask`` is binary (or gray ink in [0, 1]); with ``ink`` (the gray ink map), small
    digits keep their grey anti-aliased edges instead of a hard threshold."""
    mask = np.asarray(mask)
    binary = (mask > (0.5 if mask.dtype.kind == "f" else 0)).astype(np.uint8)
    ys, xs = np.nonzero(binary)
    if len(xs) == 0:
        raise NoDigit("blank image: no ink found")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = binary[y0:y1, x0:x1]
    h, w = crop.shape
    large = max(h, w) >= 2 * BOX
    if not large:
        # Small: keep the grey levels (MNIST itself, tiny crops).
        if ink is None and mask.dtype.kind == "f":
            ink = mask
        if ink is not None:
            near = cv2.dilate(binary, np.ones((3, 3), np.uint8))
            g = np.asarray(ink, np.float32) * near
            ys2, xs2 = np.nonzero(g > 0.02)
            gy0, gy1, gx0, gx1 = ys2.min(), ys2.max() + 1, xs2.min(), xs2.max() + 1
            # keep the bounding box of the thresholded ink (MNIST's box is the ink's)
            gy0, gy1 = max(gy0, y0 - 1), min(gy1, y1 + 1)
            gx0, gx1 = max(gx0, x0 - 1), min(gx1, x1 + 1)
            crop = g[gy0:gy1, gx0:gx1]
            crop = np.clip(crop / max(float(np.percentile(crop[crop > 0.02], 90)), 1e-3), 0, 1)
        crop = crop.astype(np.float32)
        h, w = crop.shape
        fit = BOX / max(h, w)
        size = (max(1, round(w * fit)), max(1, round(h * fit)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR)
        if _stroke_width(binary[y0:y1, x0:x1]) * fit > CROP_THICK:
            # Very thick strokes (a marker, a digit stretched to fill a small box): enlarged
            # smoothly and thinned as a big picture's are.
            up = int(np.ceil(2 * BOX / max(h, w)))
            crop = (cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
            h, w = crop.shape
            large = True
    if large:
        # Large: bring the strokes near MNIST's width, then shrink (area averaging gives
        # the grey edges).
        fit = BOX / max(h, w)
        width20 = _stroke_width(crop) * fit
        if not STROKE_RANGE[0] <= width20 <= STROKE_RANGE[1]:
            pad = int(np.ceil(MNIST_STROKE / fit)) + 1
            padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            if width20 < STROKE_RANGE[0]:
                redrawn = _redraw(padded, MNIST_STROKE / fit)
            else:
                redrawn = _thin(padded, MNIST_STROKE / fit)
            ys, xs = np.nonzero(redrawn)
            crop = redrawn[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
            h, w = crop.shape
            fit = BOX / max(h, w)
        size = (max(1, round(w * fit)), max(1, round(h * fit)))
        small = cv2.resize(crop.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small = np.clip(small / max(float(small.max()), 1e-6), 0, 1)
    out = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    out[top: top + size[1], left: left + size[0]] = small
    return _centre(out)


@dataclass
class Normalized:
    """A digit ready for the model, and where it was found in the original image."""

    x28: np.ndarray  # float32 (28, 28) in [0, 1], ink bright
    box: tuple[int, int, int, int]  # x, y, w, h in original pixels


def _box(mask: np.ndarray, scale: float) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return (int(x0 / scale), int(y0 / scale), int(np.ceil((x1 - x0) / scale)),
            int(np.ceil((y1 - y0) / scale)))


def normalize(image: np.ndarray) -> Normalized:
    """One digit in any image -> the 28x28 MNIST-style input. Raises NoDigit."""
    ink = ink_mask(image)
    if not ink.mask.any():
        raise NoDigit("only specks or lines: no digit-sized stroke found")
    return Normalized(x28=to_mnist(ink.mask, ink.ink), box=_box(ink.mask, ink.scale))
