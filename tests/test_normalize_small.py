"""digitrec.reading.normalize on pictures someone else already made small: 15-32
px, digits stretched to fill the whole box, binary bitmaps, ink covering half the picture,
very thick strokes. Generated images only: no model, no data set, a second or two."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.reading import normalize as norm
from digitrec.reading.normalize import NoDigit, normalize

BIG = 160  # digits are drawn this big, then brought down as another program would


def _drawn(digit: str, stroke: int) -> np.ndarray:
    """A digit drawn bright on black at BIG x BIG, cut to its ink."""
    page = np.zeros((BIG, BIG), np.uint8)
    if digit == "0":
        cv2.ellipse(page, (80, 80), (44, 64), 0, 0, 360, 255, stroke)
    elif digit == "1":
        cv2.line(page, (84, 12), (76, 148), 255, stroke)
    elif digit == "7":
        cv2.line(page, (30, 20), (130, 20), 255, stroke)
        cv2.line(page, (130, 20), (70, 148), 255, stroke)
    elif digit == "4":
        cv2.line(page, (40, 14), (24, 100), 255, stroke)
        cv2.line(page, (24, 100), (136, 100), 255, stroke)
        cv2.line(page, (104, 30), (104, 150), 255, stroke)
    ys, xs = np.nonzero(page)
    return page[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def small(digit: str, size: tuple[int, int], stroke: int = 14, stretch: bool = True, fill: float = 0.8,
          levels: int | None = None, dark_ink: bool = False) -> np.ndarray:
    """``digit`` as a (height, width) picture: stretched to fill it, or fitted in ``fill`` of it;
    ``levels``: 2 for a binary bitmap, a few for a thumbnail, None for 256 greys."""
    h, w = size
    ink = _drawn(digit, stroke)
    if stretch:
        out = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
    else:
        fit = fill * min(h / ink.shape[0], w / ink.shape[1])
        shrunk = cv2.resize(ink, (max(1, round(ink.shape[1] * fit)), max(1, round(ink.shape[0] * fit))),
                            interpolation=cv2.INTER_AREA)
        out = np.zeros((h, w), np.uint8)
        top, left = (h - shrunk.shape[0]) // 2, (w - shrunk.shape[1]) // 2
        out[top: top + shrunk.shape[0], left: left + shrunk.shape[1]] = shrunk
    if levels == 2:
        out = np.where(out > 127, 255, 0).astype(np.uint8)
    elif levels:
        out = (np.round(out / 255 * (levels - 1)) * (255 / (levels - 1))).astype(np.uint8)
    return 255 - out if dark_ink else out


def _ink_box(x28: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(x28 > 0.3)
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


@pytest.mark.parametrize("dark_ink", [False, True])
def test_a_one_stretched_from_top_to_bottom_is_the_digit(dark_ink):
    """A 1 from the top row to the bottom row of a 16x16 scan: not a page edge to drop."""
    image = np.zeros((16, 16), np.uint8)
    image[:, 7:9] = 255
    image[:, 6] = image[:, 9] = 90
    x28 = normalize(255 - image if dark_ink else image).x28
    height, width = _ink_box(x28)
    assert height >= 19 and width <= 8


@pytest.mark.parametrize("dark_ink", [False, True])
@pytest.mark.parametrize("size, levels", [((16, 16), None), ((16, 16), 2), ((16, 15), 7), ((32, 32), 2)])
def test_a_zero_filling_its_box_keeps_its_hole(size, levels, dark_ink):
    """A thick 0 stretched to fill a small box touches every side and covers about half
    the picture: the paper is still the paper (its hole stays dark in the 28x28)."""
    image = small("0", size, stroke=34, levels=levels, dark_ink=dark_ink)
    ink_share = float(((255 - image if dark_ink else image) > 127).mean())
    assert ink_share > 0.4  # the case in point: nearly as much ink as paper
    assert norm.ink_map(image)[2] == dark_ink
    x28 = normalize(image).x28
    assert x28[12:17, 12:17].mean() < 0.1  # the hole
    assert x28[14, 4:10].max() > 0.6 and x28[14, 19:25].max() > 0.6  # the ring either side


@pytest.mark.parametrize("dark_ink", [False, True])
def test_ink_over_half_the_picture_does_not_flip_the_polarity(dark_ink):
    """A 4 in a 15x16 thumbnail with seven grey levels, strokes so thick the ink covers
    more than half of it: the median is ink, yet the paper is found."""
    image = small("4", (16, 15), stroke=40, levels=7, dark_ink=dark_ink)
    ink = (255 - image) if dark_ink else image
    assert (ink > 127).mean() > 0.5
    assert norm.ink_map(image)[2] == dark_ink
    x28 = normalize(image).x28
    assert x28[22:26, 6:12].mean() < 0.2  # under the crossbar, left of the stem: paper


@pytest.mark.parametrize("dark_ink", [False, True])
def test_binary_bitmap_reads_as_the_same_digit_drawn_smoothly(dark_ink):
    """A 32x32 binary bitmap (jagged edges, no grey), its digit from the top row to the
    bottom one, gives about the 28x28 that the same 7 drawn big and smooth gives."""
    smooth = normalize(cv2.copyMakeBorder(_drawn("7", 22), 30, 30, 30, 30, cv2.BORDER_CONSTANT)).x28
    bitmap = normalize(small("7", (32, 32), stroke=22, stretch=False, fill=1.0, levels=2, dark_ink=dark_ink)).x28
    both, either = ((smooth > 0.3) & (bitmap > 0.3)).sum(), ((smooth > 0.3) | (bitmap > 0.3)).sum()
    assert both / either > 0.5


@pytest.mark.parametrize("size", [(16, 16), (24, 24)])
def test_very_thick_strokes_of_a_small_picture_are_thinned(size):
    """Strokes a quarter of the digit wide in a small picture end near MNIST's width, as a
    big picture's do."""
    image = small("0", size, stroke=40)
    x28 = normalize(image).x28
    width = norm._stroke_width((x28 > 0.5).astype(np.uint8))
    assert width < 1.6 * norm.MNIST_STROKE
    assert x28[12:17, 12:17].mean() < 0.1  # the hole is still open


@pytest.mark.parametrize("size", [(15, 16), (16, 16), (28, 28), (32, 32)])
def test_small_pictures_fill_the_box_and_centre(size):
    x28 = normalize(small("7", size, stroke=16, levels=2)).x28
    assert max(_ink_box(x28)) >= 19
    m = cv2.moments(x28)
    assert abs(m["m10"] / m["m00"] - 14) <= 1 and abs(m["m01"] / m["m00"] - 14) <= 1


@pytest.mark.parametrize("image", [np.full((16, 16), 128, np.uint8), np.zeros((16, 16), np.uint8),
                                   np.random.default_rng(0).integers(100, 110, (16, 15)).astype(np.uint8)])
def test_a_small_blank_is_still_no_digit(image):
    with pytest.raises(NoDigit):
        normalize(image)
