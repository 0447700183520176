"""digitrec.reading.normalize on generated pictures: transparency, polarity, light and shadow,
ruled lines, specks, stroke width and the 28x28 fit."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.reading.normalize import MNIST_STROKE, NoDigit, ink_map, ink_mask, normalize
from digitrec.training import synth


def _page(h=200, w=200, paper=235):
    return np.full((h, w), paper, np.uint8)


def _five(page, x=60, y=40, gap=12, ink=20, t=7):
    """A 5 drawn with its top stroke apart from the body (a common way to write it)."""
    cv2.line(page, (x + 8, y), (x + 70, y), ink, t)  # top bar, not touching the rest
    cv2.line(page, (x, y + gap + 4), (x, y + 55), ink, t)  # the short down stroke
    cv2.ellipse(page, (x + 28, y + 85), (36, 32), 0, -150, 150, ink, t)  # the belly
    return page


def _com(x28):
    m = cv2.moments(x28)
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


def test_transparent_canvas_black_ink_stays_visible():
    # A web canvas: black strokes on fully transparent black pixels. Dropping alpha
    # would give an all-black picture.
    rgba = np.zeros((120, 120, 4), np.uint8)
    cv2.line(rgba, (60, 15), (60, 105), (0, 0, 0, 255), 8)
    norm = normalize(rgba)
    assert norm.x28.max() > 0.9
    assert norm.box[3] > 80  # the stroke's height, in original pixels


def test_transparent_photo_corners_do_not_become_ink():
    img = np.dstack([_five(_page())] * 3 + [np.full((200, 200), 255, np.uint8)])
    img[:30, :30, 3] = 0  # a transparent corner
    img[:30, :30, :3] = 0
    box = normalize(img).box
    assert box[0] >= 50 and box[1] >= 30


def test_polarity_dark_on_light_equals_light_on_dark():
    page = _five(_page())
    a = normalize(page).x28
    b = normalize(255 - page).x28
    assert np.abs(a - b).mean() < 0.02


def test_centre_of_mass_and_20x20_fit_keep_aspect_ratio():
    page = _page(300, 300)
    cv2.line(page, (150, 40), (150, 260), 0, 10)  # a tall "1": 220 high, 10 wide
    x28 = normalize(page).x28
    ys, xs = np.nonzero(x28 > 0.05)
    assert 19 <= ys.max() - ys.min() + 1 <= 21
    assert xs.max() - xs.min() + 1 <= 6  # not stretched to a square
    cx, cy = _com(x28)
    assert abs(cx - 13.5) <= 1 and abs(cy - 13.5) <= 1

    wide = _page(300, 300)
    cv2.line(wide, (40, 150), (260, 150), 0, 10)
    cv2.line(wide, (40, 150), (40, 190), 0, 10)  # not a lone straight line
    ys, xs = np.nonzero(normalize(wide).x28 > 0.05)
    assert 19 <= xs.max() - xs.min() + 1 <= 21


def test_mnist_digit_itself_passes_nearly_unchanged(mnist):
    d = mnist.x_test[0]
    x28 = normalize(d).x28
    assert np.abs(x28 - d / 255.0).mean() < 0.08


def test_five_with_detached_top_stroke_is_one_digit():
    page = _five(_page(220, 400))
    mask = ink_mask(page).mask
    assert cv2.connectedComponents(mask)[0] - 1 >= 2  # really two pieces
    norm = normalize(page)
    assert norm.box[3] > 110  # bar and belly both kept


def test_ruled_lines_are_removed():
    page = _page(240, 240)
    for y in range(20, 240, 40):
        cv2.line(page, (0, y), (239, y), 150, 2)  # ruled lines
    cv2.line(page, (0 + 12, 0), (12, 239), 170, 2)  # the margin
    cv2.line(page, (120, 50), (120, 190), 20, 8)
    cv2.line(page, (120, 50), (95, 80), 20, 8)  # a "1" crossing three lines
    ink = ink_mask(page)
    ys, xs = np.nonzero(ink.mask)
    ys, xs = ys / ink.scale, xs / ink.scale  # back to the page's pixels
    assert xs.min() > 80 and xs.max() < 140  # nothing of the lines is left
    assert ys.max() - ys.min() > 120  # the 1 is still whole across the lines


@pytest.mark.parametrize("kind", synth.BLANKS)
def test_blanks_raise_nodigit_with_reason(kind):
    for seed in range(3):
        with pytest.raises(NoDigit) as exc:
            normalize(synth.render_blank(kind, np.random.default_rng([seed, 11])))
        assert len(str(exc.value)) > 10


def test_speck_next_to_digit_is_dropped():
    page = _five(_page(200, 300))
    cv2.circle(page, (260, 180), 2, 0, -1)
    box = normalize(page).box
    assert box[0] + box[2] < 150


def test_shadow_and_gradient_do_not_become_ink():
    page = _five(_page(240, 240)).astype(np.float32)
    yy, xx = np.mgrid[0:240, 0:240]
    light = 1 - 0.4 * (xx / 240) - 0.35 / (1 + np.exp(-(xx + yy - 300) / 8.0))
    img = (page * light).clip(0, 255).astype(np.uint8)
    box = normalize(img).box
    assert box[0] + box[2] < 160 and box[1] + box[3] < 180


def test_faint_pencil_beside_a_shadow_is_dark_ink_on_light_paper(mnist):
    """Faint grainy pencil photographed under uneven light, often with a shadow across
    the page: the ink is judged darker than the paper in every one of 600 pictures. With
    the light taken as a blur of the picture, the bright side of a shadow's edge
    outweighed such strokes, and the paper became the ink in 5 of these 600."""
    rng = np.random.default_rng(5)
    wrong = [i for i in range(600)  # ink_map(...)[2]: True when dark ink on light paper
             if not ink_map(synth.render_digit(mnist.x_test[i], "pencil", rng, size=synth.SIZES[i % 4]))[2]]
    assert not wrong, wrong


def _stroke_width(x28: np.ndarray) -> float:
    """Mean stroke width of a 28x28 digit: 2 x ink area / outline length."""
    mask = (x28 > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return 2 * float(mask.sum()) / sum(cv2.arcLength(c, True) for c in contours)


def test_thick_and_thin_strokes_end_near_mnist_width():
    widths = []
    for t in (2, 7, 22):  # a hairline, a pen, a marker: 300 px pictures
        page = _page(300, 300)
        cv2.ellipse(page, (150, 150), (60, 100), 0, 0, 360, 0, t)
        widths.append(_stroke_width(normalize(page).x28))
    assert all(abs(w - MNIST_STROKE) < 0.5 for w in widths), widths


def test_every_condition_renders_and_normalizes(mnist):
    rng = np.random.default_rng(0)
    for cond in synth.CONDITIONS:
        img = synth.render_digit(mnist.x_test[0], cond, rng)
        assert img.dtype == np.uint8
        x28 = normalize(img).x28
        assert x28.shape == (28, 28) and 0.9 < x28.max() <= 1.0


def test_renderer_is_deterministic(mnist):
    a = synth.render_digit(mnist.x_test[5], "phone_shadow", np.random.default_rng(9))
    b = synth.render_digit(mnist.x_test[5], "phone_shadow", np.random.default_rng(9))
    assert np.array_equal(a, b)


def test_seeds_pipeline_is_28x28_float():
    x = synth.seeds_pipeline(np.zeros((50, 80, 4), np.uint8))
    assert x.shape == (28, 28) and x.dtype == np.float32


def test_small_shaded_pictures_are_flattened_too(mnist, recognizer):
    """Phone photos of small digits (the 28x28 box 28 px wide, pictures 36-47 px) under a
    shadow, on ruled or squared paper, tilted: their light is flattened and their polarity
    judged as a big picture's are, so a shadow becomes neither the digit nor the paper.
    All 171 read right; 144 when only pictures of 48 px and more were treated so."""
    right = total = 0
    for condition in ("phone_shadow", "ruled", "squared", "tilt"):
        rng = np.random.default_rng(7)
        for i in range(60):
            image = synth.render_digit(mnist.x_test[i], condition, rng, size=28)
            if min(image.shape[:2]) >= 48:
                continue
            total += 1
            right += recognizer.predict(image).digit == mnist.y_test[i]
    assert total == 171 and right >= 165, (right, total)
