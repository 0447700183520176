"""Render MNIST digits into the kinds of pictures users upload.

Every scene starts from a real MNIST digit (the benchmark uses *test* digits only) and
puts it on paper, a board, a canvas or a transparent layer, with the degradations of a
phone photo or a scan. Everything is seeded and deterministic: the same digit, condition
and ``numpy.random.Generator`` state give the same image.

    render_digit(d28, condition, rng, size=None) -> uint8 gray / RGB / RGBA image
    render_number(digits28, rng, condition=None) -> (image, condition, boxes)
    number_coverage(items, rng, size) -> a row's ink (digits and marks: . , - = /), digit boxes
    render_amount(items, rng, condition=None) -> a number on a form or cheque, slanted, tightly cut
    render_page(numbers, rng, condition=None) -> numbers anywhere on a page: (image, condition, boxes, kept)
    render_blank(kind, rng) -> image with no digit in it
    seeds_pipeline(image) -> the seeds' 28x28 input (gray, resize the whole image, /255)

The scenes are meant to be easy for a person: a digit a person reads at a glance.
"""
from __future__ import annotations

import cv2
import numpy as np

CONDITIONS = (
    "scan",          # black ink on white paper, flat light
    "phone_shadow",  # phone photo: uneven light, a soft shadow across, sensor noise, JPEG
    "ruled",         # ruled notebook paper, blue lines and a red margin
    "squared",       # squared (grid) notebook paper
    "blue_ballpoint",  # thin blue ballpoint strokes
    "pencil",        # light, grainy grey strokes
    "marker",        # thick marker strokes
    "chalk",         # white chalk on a dark green or black board
    "transparent_png",  # ink on a transparent web canvas (RGBA), any ink colour
    "tablet_thin",   # paint program / tablet: thin strokes, any colour on any background
    "tablet_thick",  # paint program / tablet: thick strokes
    "tiny",          # a tiny crop: the digit 10-18 px tall
    "tilt",          # photo taken at an angle: rotation and perspective
    "jpeg",          # heavy JPEG compression of a photo
)
BLANKS = ("plain_paper", "ruled_paper", "squared_paper", "board", "noise", "speck",
          "shadow_paper", "transparent", "black")
SIZES = (28, 56, 112, 224)  # side of the MNIST 28x28 box in pixels (digit ~0.7 of it)
RIDGE_FLOOR = 0.3  # stroke_alpha: a digit's ink is brightened by at most 1 / this


# --- strokes ---------------------------------------------------------------------------

def stroke_alpha(d28: np.ndarray, size: int, style: str = "normal",
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """An MNIST digit as pen ink: float32 (size, size) coverage in [0, 1].

    style: "normal" (MNIST-proportional strokes), "thin" (a pen or a 2-4 px brush on a
    big digit), "thick" (a marker: twice MNIST's width or more)."""
    rng = rng or np.random.default_rng(0)
    d = d28.astype(np.float32) / 255.0
    up = cv2.resize(d, (size, size), interpolation=cv2.INTER_CUBIC)
    scale = size / 28.0
    up = cv2.GaussianBlur(up, (0, 0), max(0.5, 0.5 * scale))
    # A thin or faint stroke (ARDIS's pens, USPS's 16-pixel scans) peaks well below 1
    # once blurred, and a fixed threshold erased it (6% of ARDIS digits lost a third of
    # their strokes): the threshold follows the digit's own stroke, the median brightness
    # along its ridges. Most MNIST digits' ridges are ~1 (their median ink area is
    # unchanged); a fifth of them peak below 0.95 and come out a shade bolder.
    ridges = up[(up >= cv2.dilate(up, np.ones((3, 3), np.uint8)) - 1e-6) & (up > 0.15)]
    up = up / min(1.0, max(float(np.median(ridges)) if ridges.size else 1.0, RIDGE_FLOOR))
    soft = 0.08
    alpha = np.clip((up - (0.45 - soft)) / (2 * soft), 0, 1)
    if style == "thin" and size >= 56:
        binary = (alpha > 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
        ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8)) - 0.75) & (dist > 0.8)
        width = float(rng.uniform(1.5, max(2.0, 0.035 * size)))  # pen width in pixels
        r = max(1, int(round(width / 2)))
        ridge = cv2.dilate(ridge.astype(np.uint8), cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        alpha = cv2.GaussianBlur(ridge.astype(np.float32), (0, 0), 0.6)
    elif style == "thick":
        r = max(1, int(round(rng.uniform(0.02, 0.04) * size)))  # thicker closes loops: unreadable
        alpha = cv2.dilate(alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)
    return np.clip(alpha, 0, 1).astype(np.float32)


# --- backgrounds and light -------------------------------------------------------------

def _paper(shape, rng, kind="plain", spacing=None) -> np.ndarray:
    """Float RGB paper in [0, 1]: plain, ruled (blue lines, red margin) or squared."""
    h, w = shape
    tint = np.array([rng.uniform(0.86, 0.98), rng.uniform(0.86, 0.98), rng.uniform(0.84, 0.97)])
    page = np.ones((h, w, 3), np.float32) * tint.astype(np.float32)
    fibre = cv2.GaussianBlur(rng.normal(0, 0.02, (h, w)).astype(np.float32), (0, 0), 1.5)
    page += fibre[..., None]
    spacing = spacing or max(6, int(min(h, w) * rng.uniform(0.12, 0.2)))
    line = np.array([0.55, 0.7, 0.95], np.float32) if kind == "ruled" else \
        np.array(rng.choice([[0.6, 0.72, 0.9], [0.65, 0.65, 0.65]]), np.float32)
    thick = 1 if spacing < 30 else 2
    if kind in ("ruled", "squared"):
        off = int(rng.integers(0, spacing))
        for y in range(off, h, spacing):
            page[y: y + thick] = page[y: y + thick] * 0.3 + line * 0.7
        if kind == "squared":
            off = int(rng.integers(0, spacing))
            for x in range(off, w, spacing):
                page[:, x: x + thick] = page[:, x: x + thick] * 0.3 + line * 0.7
        elif rng.random() < 0.5 and w > 60:
            x = int(w * rng.uniform(0.04, 0.12))
            page[:, x: x + thick] = page[:, x: x + thick] * 0.3 + np.float32([0.9, 0.35, 0.35]) * 0.7
    return page


def _printed(shape, rng) -> np.ndarray:
    """A cheque's printed security background (guilloche): families of fine wavy lines a
    few pixels apart, as a multiplicative shade in (0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = np.ones((h, w), np.float32)
    for _ in range(int(rng.integers(2, 4))):
        angle = rng.uniform(0, np.pi)
        spacing = rng.uniform(4, 10)  # pixels between the lines
        wave = rng.uniform(0.5, 3) * spacing * np.sin(
            (np.cos(angle + 1.3) * xx + np.sin(angle + 1.3) * yy) / rng.uniform(15, 60))
        phase = (np.cos(angle) * xx + np.sin(angle) * yy + wave) / spacing
        line = np.maximum(0, np.cos(2 * np.pi * phase) - 0.6) / 0.4  # lines a fifth of the spacing wide
        shade *= 1.0 - rng.uniform(0.12, 0.3) * line
    return shade


def _board(shape, rng) -> np.ndarray:
    h, w = shape
    base = np.array(rng.choice([[0.12, 0.22, 0.16], [0.1, 0.1, 0.11], [0.15, 0.2, 0.22]]), np.float32)
    smudge = cv2.GaussianBlur(rng.normal(0, 0.05, (h, w)).astype(np.float32), (0, 0), max(2, min(h, w) / 20))
    smudge = smudge / (np.abs(smudge).max() + 1e-6) * 0.04
    return np.clip(base + smudge[..., None] + rng.normal(0, 0.01, (h, w, 1)), 0, 1).astype(np.float32)


def _light(shape, rng, shadow=True) -> np.ndarray:
    """Multiplicative illumination: a gradient, a vignette and maybe a soft shadow edge."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    light = 1.0 - rng.uniform(0.15, 0.4) * t
    r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2)
    light *= 1.0 - rng.uniform(0.0, 0.3) * r2
    if shadow:
        a2 = rng.uniform(0, 2 * np.pi)
        d = np.cos(a2) * (xx - w * rng.uniform(0.2, 0.8)) + np.sin(a2) * (yy - h * rng.uniform(0.2, 0.8))
        soft = max(2.0, 0.05 * max(h, w))
        light *= 1.0 - rng.uniform(0.25, 0.45) / (1.0 + np.exp(-d / soft))
    return light.astype(np.float32)


def _jpeg(rgb01: np.ndarray, quality: int) -> np.ndarray:
    u8 = np.clip(rgb01 * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1] if u8.ndim == 3 else u8,
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return (out[..., ::-1] if out.ndim == 3 else out).astype(np.float32) / 255.0


def _u8(rgb01: np.ndarray) -> np.ndarray:
    return np.clip(rgb01 * 255 + 0.5, 0, 255).astype(np.uint8)


def _grain(shape, rng, keep: float, blob: float = 1.0) -> np.ndarray:
    """A texture in [0, 1] that removes part of a stroke (pencil, chalk)."""
    g = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), blob)
    g = (g - g.mean()) / (g.std() + 1e-6)
    return np.clip(0.5 + 0.5 * (g + 2 * keep - 1), 0, 1).astype(np.float32)


def _ink_colour(rng, dark=True) -> np.ndarray:
    palette_dark = [[0.05, 0.05, 0.05], [0.1, 0.15, 0.55], [0.6, 0.05, 0.05], [0.05, 0.35, 0.1],
                    [0.35, 0.1, 0.45], [0.0, 0.3, 0.6]]
    palette_light = [[1, 1, 1], [1.0, 0.9, 0.2], [0.3, 1.0, 0.9], [1.0, 0.6, 0.8]]
    return np.array(rng.choice(palette_dark if dark else palette_light), np.float32)


def _place(alpha: np.ndarray, shape, rng, margin=0.1) -> np.ndarray:
    """The digit's coverage placed somewhere on a canvas of ``shape``."""
    h, w = shape
    ah, aw = alpha.shape
    out = np.zeros((h, w), np.float32)
    y = int(rng.integers(int(margin * (h - ah)), max(int(margin * (h - ah)) + 1, int((1 - margin) * (h - ah)) + 1)))
    x = int(rng.integers(int(margin * (w - aw)), max(int(margin * (w - aw)) + 1, int((1 - margin) * (w - aw)) + 1)))
    out[y: y + ah, x: x + aw] = alpha
    return out


def _canvas_shape(size, rng, lo=1.3, hi=2.2):
    return (int(size * rng.uniform(lo, hi)), int(size * rng.uniform(lo, hi)))


# --- scenes ----------------------------------------------------------------------------

_STYLES = {"marker": "thick", "tablet_thick": "thick", "tablet_thin": "thin", "blue_ballpoint": "thin"}


def _scene(alpha: np.ndarray, condition: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Paint coverage ``alpha`` (already on its canvas) as ``condition``."""
    shape = alpha.shape
    c = condition
    if c == "transparent_png":
        colour = _ink_colour(rng, dark=rng.random() < 0.7)
        rgba = np.zeros(shape + (4,), np.float32)
        rgba[..., :3] = colour if rng.random() < 0.5 else 0.0  # many canvases store black
        rgba[..., :3] = np.where(alpha[..., None] > 0, colour, rgba[..., :3])
        rgba[..., 3] = alpha
        return _u8(rgba)
    if c in ("tablet_thin", "tablet_thick"):
        if rng.random() < 0.3:
            bg, ink = _ink_colour(rng, dark=True) * 0.4, _ink_colour(rng, dark=False)
        else:
            bg = np.array(rng.choice([[1, 1, 1], [0.95, 0.95, 0.9], [0.85, 0.92, 1.0], [1, 0.95, 0.8]]), np.float32)
            ink = _ink_colour(rng, dark=True)
        img = bg * (1 - alpha[..., None]) + ink * alpha[..., None]
        return _u8(img)
    if c == "chalk":
        board = _board(shape, rng)
        a = alpha * _grain(shape, rng, keep=rng.uniform(0.6, 0.8), blob=max(0.7, size / 100))
        img = board * (1 - a[..., None]) + np.float32([0.92, 0.93, 0.9]) * a[..., None]
        img *= _light(shape, rng, shadow=False)[..., None]
        img += rng.normal(0, 0.015, img.shape).astype(np.float32)
        return _u8(_jpeg(np.clip(img, 0, 1), int(rng.integers(60, 90))))
    spacing = None
    kind = {"ruled": "ruled", "squared": "squared"}.get(c, "plain")
    if kind != "plain":
        spacing = max(6, int(size * rng.uniform(0.3, 0.5)))
    page = _paper(shape, rng, kind, spacing)
    if c == "printed":
        page *= _printed(shape, rng)[..., None]
    ink = np.float32([0.08, 0.08, 0.1])
    a = alpha
    if c in ("blue_ballpoint", "ruled", "squared") or (c == "phone_shadow" and rng.random() < 0.5):
        ink = np.float32([0.12, 0.2, 0.6]) if rng.random() < 0.8 else ink
        a = alpha * rng.uniform(0.75, 0.95)
    if c == "pencil":
        ink = np.float32([0.35, 0.35, 0.38])
        a = alpha * _grain(shape, rng, keep=0.75, blob=0.7) * rng.uniform(0.55, 0.75)
    img = page * (1 - a[..., None]) + ink * a[..., None]
    if c == "scan":
        img += rng.normal(0, 0.01, img.shape).astype(np.float32)
        return _u8(np.clip(img, 0, 1))
    photo = c in ("phone_shadow", "ruled", "squared", "blue_ballpoint", "pencil", "marker", "tilt", "jpeg",
                  "printed")
    if photo:
        img *= _light(shape, rng, shadow=c in ("phone_shadow", "tilt") or rng.random() < 0.4)[..., None]
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.9))
        img += rng.normal(0, rng.uniform(0.01, 0.03), img.shape).astype(np.float32)
    if c == "tilt":
        h, w = shape
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        jit = rng.uniform(-0.08, 0.08, (4, 2)) * np.float32([w, h])
        dst = (src + jit).astype(np.float32)
        m = cv2.getPerspectiveTransform(src, dst)
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-12, 12), 1.0)
        m = np.vstack([rot, [0, 0, 1]]) @ m
        img = cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    quality = {"jpeg": int(rng.integers(15, 35))}.get(c, int(rng.integers(55, 92)))
    img = _jpeg(np.clip(img, 0, 1), quality)
    if rng.random() < 0.3 and c not in ("pencil",):
        return cv2.cvtColor(_u8(img), cv2.COLOR_RGB2GRAY)
    return _u8(img)


def render_digit(d28: np.ndarray, condition: str, rng: np.random.Generator,
                 size: int | None = None) -> np.ndarray:
    """One MNIST digit as a picture of ``condition``; ``size`` is the side of the 28x28
    box in pixels (the digit itself is about 0.7 of it)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {CONDITIONS}")
    if condition == "tiny":
        size = int(rng.integers(14, 26))
    elif size is None:
        size = int(rng.choice(SIZES))
    size = max(size, 56) if condition in ("tablet_thin", "marker", "tablet_thick", "chalk", "pencil") else size
    style = _STYLES.get(condition, "normal")
    if condition in ("ruled", "squared", "phone_shadow", "scan") and rng.random() < 0.4:
        style = "thin"
    alpha = stroke_alpha(d28, size, style, rng)
    if condition == "tiny":
        shape = _canvas_shape(size, rng, 1.0, 1.3)
        scene = "scan" if rng.random() < 0.5 else "tablet_thick"  # a crop of a scan or a canvas
        return _scene(_place(alpha, shape, rng), scene, rng, size)
    shape = _canvas_shape(size, rng)
    return _scene(_place(alpha, shape, rng), condition, rng, size)


NUMBER_CONDITIONS = ("scan", "phone_shadow", "ruled", "squared", "blue_ballpoint", "pencil",
                     "marker", "chalk", "transparent_png", "tablet_thin", "tablet_thick")


def break_strokes(alpha: np.ndarray, rng: np.random.Generator, cuts: int = 1, gap: float = 0.03) -> np.ndarray:
    """Erase a band ``gap`` x the height wide across the strokes: a pen that skipped."""
    h, w = alpha.shape
    out = alpha.copy()
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        return out
    for _ in range(cuts):
        i = int(rng.integers(len(xs)))
        angle = rng.uniform(0, np.pi)
        width = max(1, int(round(gap * h)))
        length = int(0.15 * h)
        dx, dy = np.cos(angle) * length, np.sin(angle) * length
        p0 = (int(xs[i] - dx), int(ys[i] - dy))
        p1 = (int(xs[i] + dx), int(ys[i] + dy))
        mask = np.zeros((h, w), np.uint8)
        cv2.line(mask, p0, p1, 1, width)
        out[mask > 0] = 0
    return out


MARKS = (".", ",", "-", "=", "/")  # what people write between or after digits


def _draw_mark(canvas: np.ndarray, mark: str, x_end: int, boxes, pad_y: int, band: int,
               stroke: int, rng: np.random.Generator) -> int:
    """Draw ``mark`` on ``canvas`` right of ``x_end`` (where the ink so far ends), sized
    and placed by the digits so far (a dot on their baseline, a dash at mid-height).
    Returns where its ink ends."""
    if boxes:
        top = int(np.median([b[1] for b in boxes]))
        bottom = int(np.median([b[1] + b[3] for b in boxes]))
    else:
        top, bottom = pad_y, pad_y + band
    h = max(8, bottom - top)
    scale = 8  # coordinates in eighths of a pixel (cv2's shift=3): anti-aliased like the digits
    big = np.zeros((canvas.shape[0], int(1.2 * h) + 4 * stroke), np.float32)
    pts: list = []
    x = stroke + int(h * rng.uniform(0.12, 0.3))  # never touching the ink before it
    if mark == ".":
        r = stroke * rng.uniform(0.6, 0.9)
        pts.append(("dot", (x + r, bottom - r - h * rng.uniform(0, 0.06)), r))
    elif mark == ",":
        y = bottom - h * rng.uniform(0.0, 0.08)
        pts.append(("line", (x + 0.12 * h, y), (x, y + h * rng.uniform(0.18, 0.3))))
    elif mark in ("-", "="):
        y = top + h * rng.uniform(0.45, 0.6)
        length = h * rng.uniform(0.3, 0.6)
        tilt = h * rng.uniform(-0.05, 0.05)
        offsets = (0.0,) if mark == "-" else (-0.11 * h, 0.11 * h)
        pts += [("line", (x, y + o + tilt), (x + length, y + o - tilt)) for o in offsets]
    elif mark == "/":
        lean = h * rng.uniform(0.25, 0.45)
        pts.append(("line", (x + lean, top - 0.05 * h), (x, bottom + 0.05 * h)))
    else:
        raise ValueError(f"unknown mark {mark!r}; choose from {MARKS}")
    for kind, a, b in pts:
        if kind == "dot":
            cv2.circle(big, (int(a[0] * scale), int(a[1] * scale)), int(b * scale), 1.0, -1, cv2.LINE_AA, 3)
        else:
            cv2.line(big, (int(a[0] * scale), int(a[1] * scale)), (int(b[0] * scale), int(b[1] * scale)),
                     1.0, max(1, stroke), cv2.LINE_AA, 3)
    big = cv2.GaussianBlur(big, (0, 0), 0.5)
    cols = np.nonzero(big.max(axis=0) > 0.3)[0]
    x1 = min(canvas.shape[1], x_end + big.shape[1])
    region = canvas[:, x_end: x1]
    np.maximum(region, big[:, : x1 - x_end], out=region)
    return x_end + int(cols.max()) + 1 if len(cols) else x_end


def render_number(digits28: list[np.ndarray], rng: np.random.Generator,
                  condition: str | None = None, size: int | None = None,
                  touching: float = 0.3, broken: float = 0.3):
    """Several MNIST digits written in one row, left to right (marks between them too:
    :func:`number_coverage`).

    Some neighbours touch (with probability ``touching`` per pair their ink overlaps a
    little), some digits have a skipped stroke (probability ``broken``). Returns
    (image, condition, boxes) where boxes are the digits' ink boxes (x, y, w, h)."""
    condition = condition or str(rng.choice(NUMBER_CONDITIONS))
    size, canvas, boxes = _row_ink(digits28, condition, size, rng, touching, broken)
    return _scene(canvas, condition, rng, size), condition, boxes


def _row_ink(items, condition: str, size: int | None, rng: np.random.Generator, touching: float,
             broken: float, joined: float = 0.0, wide: tuple[float, float] = (1.0, 1.0)):
    """A row's size (a pen too thin for small digits writes them at 56 px), its ink
    coverage and digit boxes (:func:`number_coverage`) in the pen of ``condition``."""
    size = size or int(rng.choice((40, 56, 84, 112)))
    style = _STYLES.get(condition, "normal")
    if style == "thin" and size < 56:
        size = 56
    return (size, *number_coverage(items, rng, size, style, touching, broken, joined, wide))


def _pen_point(ink: np.ndarray, at: tuple[int, int], right: bool, fallback) -> tuple[float, float]:
    """The rightmost (``right``) or leftmost ink pixel of ``ink`` (a boolean window whose
    top-left corner lies at ``at`` = (x, y)), in canvas coordinates; ``fallback`` where
    the window holds no ink."""
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        return fallback
    k = int(np.argmax(xs) if right else np.argmin(xs))
    return float(at[0] + xs[k]), float(at[1] + ys[k])


def _exit_point(canvas: np.ndarray, box) -> tuple[float, float]:
    """Where a cursive hand leaves a digit (``box`` on ``canvas``): its rightmost ink in
    the lower two thirds of its box."""
    x, y, w, h = box
    return _pen_point(canvas[y + h // 3: y + h, x: x + w] > 0.5, (x, y + h // 3), True, (x + w - 1.0, y + 0.6 * h))


def _entry_point(p: np.ndarray, x0: int, y0: int) -> tuple[float, float]:
    """Where a cursive hand enters a digit (``p`` at ``x0``, ``y0``): its leftmost ink in
    the upper two thirds."""
    return _pen_point(p[: max(1, 2 * p.shape[0] // 3)] > 0.5, (x0, y0), False, (float(x0), y0 + 0.3 * p.shape[0]))


def _join(canvas: np.ndarray, a, b, stroke: int, rng: np.random.Generator) -> None:
    """A cursive join from ``a`` to ``b`` (x, y) on ``canvas``: a stroke sagging a little
    below the straight line, thinner than the digits' (the pen moves fast)."""
    (xa, ya), (xb, yb) = a, b
    if xb <= xa:
        return
    sag = rng.uniform(0.0, 0.25) * (xb - xa)
    t = np.linspace(0.0, 1.0, 12)
    xs = xa + (xb - xa) * t
    ys = ya + (yb - ya) * t + sag * 4 * t * (1 - t)
    scale = 8  # eighths of a pixel (cv2's shift=3)
    pts = np.round(np.stack([xs, ys], 1) * scale).astype(np.int32)
    cv2.polylines(canvas, [pts], False, float(rng.uniform(0.7, 1.0)), max(1, int(round(0.7 * stroke))),
                  cv2.LINE_AA, 3)


def number_coverage(items, rng: np.random.Generator, size: int, style: str = "normal",
                    touching: float = 0.3, broken: float = 0.3, joined: float = 0.0,
                    wide: tuple[float, float] = (1.0, 1.0)):
    """The ink coverage of a row written left to right (as :func:`render_number` paints
    it): ``items`` are MNIST digits (28x28) and marks that are not digits (one of
    :data:`MARKS`, drawn with the pen's stroke, never touching a digit); a digit not
    touching the one before is joined to it by a cursive stroke (:func:`_join`) with
    probability ``joined``. The hand writes its digits ``wide`` (lo, hi) times as wide as
    MNIST's (one factor a row, log-uniform: people who write round, wide digits, and
    narrow ones; the pen's upright strokes widen with them). Returns (coverage float32 in
    [0, 1], the digits' ink boxes (x, y, w, h)), marks left out of the boxes."""
    if not any(not isinstance(d, str) for d in items):
        raise ValueError("a row needs at least one digit")
    pieces, kinds = [], []
    lo, hi = map(float, wide)
    stretch = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if lo != hi else lo
    for d in items:
        if isinstance(d, str):
            pieces.append(None)
            kinds.append(d)
            continue
        s = int(size * rng.uniform(0.92, 1.08))
        a = stroke_alpha(d, s, style, rng)
        if stretch != 1.0:
            a = cv2.resize(a, (max(1, int(round(s * stretch))), s), interpolation=cv2.INTER_LINEAR)
        if rng.random() < broken:
            a = break_strokes(a, rng)
        cols = np.nonzero(a.max(axis=0) > 0.3)[0]
        rows = np.nonzero(a.max(axis=1) > 0.3)[0]
        if len(cols) == 0:
            continue
        pieces.append(a[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1])
        kinds.append(None)
    heights = [p.shape[0] for p in pieces if p is not None]
    if not heights:
        raise ValueError("no digit of the row left any ink at this size")
    H = int(max(heights) * 1.15) + 4
    pad_y = int(size * rng.uniform(0.3, 0.7))
    stroke = max(2, int(0.09 * size)) if style != "thin" else 2
    total = sum(size if p is None else p.shape[1] for p in pieces) + int(size * 0.4) * len(pieces) + 2 * size
    canvas = np.zeros((H + 2 * pad_y, total), np.float32)
    boxes, ends = [], []
    x_right = int(size * rng.uniform(0.3, 0.8))
    for i, (p, mark) in enumerate(zip(pieces, kinds)):
        if mark is not None:
            x_end = ends[-1] if ends else x_right
            ends.append(_draw_mark(canvas, mark, x_end, boxes, pad_y, H, stroke, rng))
            continue
        y0 = pad_y + int(rng.integers(0, H - p.shape[0] + 1))
        touch = False
        if not ends:
            x0 = x_right
        else:
            # Place by the ink, row by row: the gap is between the nearest strokes, so a
            # "touching" pair meets at one point instead of overlapping.
            after_mark = kinds[i - 1] is not None
            touch = not after_mark and rng.random() < touching
            if touch:
                gap = -int(rng.integers(0, max(1, stroke // 3) + 1))  # ink just meets
            else:
                gap = int(size * rng.uniform(0.06, 0.25))
            prev_end = ends[-1]
            narrow = min(size if after_mark else boxes[-1][2], p.shape[1])
            rows = canvas[y0: y0 + p.shape[0]] > 0.3
            has = rows.any(axis=1)
            right = np.where(has, rows.shape[1] - 1 - np.argmax(rows[:, ::-1], axis=1), -10 ** 6)
            prow = p > 0.3
            left = np.where(prow.any(axis=1), np.argmax(prow, axis=1), 10 ** 6)
            need = right - left
            # ...and the boxes overlap little (a person still sees two digits at a glance).
            x0 = int(max(need.max() + 1 + gap, prev_end - 0.12 * narrow if touch else prev_end + gap // 3))
        region = canvas[y0: y0 + p.shape[0], x0: x0 + p.shape[1]]
        join = joined > 0 and ends and kinds[i - 1] is None and not touch and rng.random() < joined
        if join:
            start = _exit_point(canvas, boxes[-1])
        np.maximum(region, p, out=region)
        if join:
            _join(canvas, start, _entry_point(p, x0, y0), stroke, rng)
        boxes.append((x0, y0, p.shape[1], p.shape[0]))
        ends.append(x0 + p.shape[1])
    width = max(ends) + int(size * rng.uniform(0.3, 0.8))
    return canvas[:, :width], boxes


# --- numbers as people write them on forms and cheques --------------------------------
# A number read in the wild is rarely a clean row: an amount has a thousands separator
# and a closing dash or "=", the hand slants, the form prints a baseline under the
# digits and a box around them, a cheque a security pattern behind them, and the crop
# around the number is tight (a box edge or a neighbour's stroke at its border).

ROW_CONDITIONS = NUMBER_CONDITIONS + ("printed", "printed", "printed")  # cheques: a third of the rows
SEPARATOR = 0.35  # a row of 4+ digits has a thousands separator (. or ,) with this probability...
DECIMAL = 0.1  # ...or a decimal mark before its last two digits...
DATE = 0.08  # ...or a date's / or - between groups
CLOSING = 0.3  # a closing mark (- = . /-) after the digits
SLANT = 0.35  # the hand's slant: shear up to this (x height) either way
BASELINE = 0.4  # a printed line under the digits
BOX_EDGE = 0.3  # a box's edge at the crop's border


def amount_items(digits: list, rng: np.random.Generator) -> list:
    """``digits`` with the marks people write among them interleaved (the items of
    :func:`number_coverage`): a thousands separator, a decimal mark or a date's separator,
    and a closing mark, each by its own chance."""
    n = len(digits)
    items = list(digits)
    u = rng.random()
    if n >= 4 and u < SEPARATOR:
        mark = "." if rng.random() < 0.6 else ","
        for k in range(n - 3, 0, -3):
            items.insert(k, mark)
    elif n >= 3 and u < SEPARATOR + DECIMAL:
        items.insert(n - 2, "," if rng.random() < 0.5 else ".")
    elif n >= 4 and u < SEPARATOR + DECIMAL + DATE:
        mark = "/" if rng.random() < 0.5 else "-"
        for k in sorted({2, 4} & set(range(1, n)), reverse=True):
            items.insert(k, mark)
    if rng.random() < CLOSING:
        items += [str(rng.choice(["-", "=", "."]))] if rng.random() < 0.8 else ["/", "-"]
    return items


def _shear(alpha: np.ndarray, slant: float) -> np.ndarray:
    """The row leant right (``slant`` > 0) or left by ``slant`` x its height over its height."""
    h, w = alpha.shape
    m = np.float32([[1, -slant, max(0.0, slant) * h], [0, 1, 0]])
    return cv2.warpAffine(alpha, m, (w + int(abs(slant) * h) + 1, h), flags=cv2.INTER_LINEAR, borderValue=0)


EUROPEAN = 0.5  # a 1 gets a long flag (and a 7 its bar) with this probability in a written amount
LIFTED_FLAG = 0.3  # ...a straight or bowed flag apart from its stem with this probability (the pen lifted)
ONE_STYLES = {"straight": 0.4, "arc": 0.4, "loop": 0.2}  # ...the flag's shape (see european)
_ONE_NAMES = list(ONE_STYLES)
_ONE_P = np.array([ONE_STYLES[k] for k in _ONE_NAMES]) / sum(ONE_STYLES.values())
JOINED = 0.15  # a digit of an amount is joined to the one before by a cursive stroke with this probability
WIDE = (0.8, 1.5)  # an amount's digits are this many times as wide as MNIST's (cheques' round hands)
PEN_LIFT = 0.12  # a digit of an amount is written in two strokes that do not meet with this probability


def pen_lift(d28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit (28x28, MNIST's box) written in two strokes that do not meet, as people
    lift the pen: a 5's bar apart from its body, a 2's foot, a 4's stem. A gap of 6-12% of
    the box erased across its strokes at one place (:func:`break_strokes`, wider)."""
    alpha = break_strokes(d28.astype(np.float32) / 255.0, rng, gap=rng.uniform(0.06, 0.12))
    return np.round(alpha * 255).astype(np.uint8)


def _bezier(points, n: int = 24) -> np.ndarray:
    """n points along the Bezier curve with these control points (quadratic or cubic)."""
    p = np.asarray(points, np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    if len(p) == 3:
        return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t ** 2 * p[2]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3]


def european(d28: np.ndarray, digit: int, rng: np.random.Generator, style: str | None = None) -> np.ndarray:
    """A 1 or a 7 (28x28, MNIST's box) as much of Europe and Latin America writes it: a 7
    with a bar across its stem; a 1 with a flag from its top, in one of ONE_STYLES (drawn
    at random by their weights unless ``style`` names one): "straight" (a line down to the
    left), "arc" (the same line bowed toward the upper left, as a quick upstroke curves),
    or "loop" (a cursive l: a stroke from left of the stem, half to four fifths of the way
    down, crosses it, bulges right of it and ends on its top; it closes paper right of the
    stem about seven times in ten on MNIST's 1s, a thick stem filling the rest). Other
    digits unchanged. A flag reaching past the box's left edge is cut there."""
    if digit not in (1, 7):
        return d28
    ink = d28 > 100
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return d28
    out = d28.astype(np.float32)
    height = ys.max() - ys.min() + 1
    stroke = max(1, int(round(np.median(ink.sum(1)[ink.any(1)]) if digit == 1 else ink.sum(0).max() / 3)))
    if digit == 1:
        if style is None:
            style = str(rng.choice(_ONE_NAMES, p=_ONE_P))
        elif style not in ONE_STYLES:
            raise ValueError(f"unknown style {style!r} for a 1; choose from {_ONE_NAMES}")
        top = ys.min()
        x = xs[ys <= top + 1].mean()
        if style == "loop":
            foot = top + height * rng.uniform(0.45, 0.8)  # where the upstroke begins, left of the stem
            reach = height * rng.uniform(0.3, 0.5)  # how far right of the stem the loop bulges
            curve = _bezier([(x - height * rng.uniform(0.2, 0.4), foot),
                             (x + reach, top + height * rng.uniform(0.2, 0.4)),
                             (x + 0.5 * reach, top - 0.1 * height), (x, top + 0.5 * stroke)])
        else:
            length = height * rng.uniform(0.25, 0.8)  # on cheques often as long as half the stem or more
            angle = np.radians(rng.uniform(30, 75))  # below the horizontal, to the left
            # the pen lifted between flag and stem now and then: the flag starts a little apart
            lift = 1.5 * stroke + height * rng.uniform(0.03, 0.08) if rng.random() < LIFTED_FLAG else 0.0
            a = np.array([x - lift, top + 0.5 * stroke])
            b = a + length * np.array([-np.cos(angle), np.sin(angle)])
            bow = length * rng.uniform(0.12, 0.35) if style == "arc" else 0.0
            # bowed toward the upper left, away from the stem below it
            curve = _bezier([a, (a + b) / 2 + bow * np.array([-np.sin(angle), -np.cos(angle)]), b])
    else:
        y = ys.min() + height * rng.uniform(0.45, 0.6)
        row = np.nonzero(ink[int(round(y))])[0]
        centre = row.mean() if len(row) else xs.mean()
        half = height * rng.uniform(0.18, 0.3)
        curve = np.array([(centre - half, y), (centre + half, y + rng.uniform(-0.05, 0.05) * height)])
    scale = 8  # eighths of a pixel (cv2's shift=3)
    pen = max(1, min(2 if style == "loop" else 3, stroke))  # a thick pen's loop would close into a blob
    cv2.polylines(out, [np.round(curve * scale).astype(np.int32)], False, 255.0, pen, cv2.LINE_AA, 3)
    return np.clip(out, 0, 255).astype(np.uint8)


SMALL_ZEROS = 0.25  # an amount's closing zeros (two or more) are written small with this probability


def small_zeros(digits: list, labels, rng: np.random.Generator) -> list:
    """``digits`` (28x28, MNIST's box) with the run of two or more zeros that closes the
    amount written smaller, as many people write the cents or the thousands on a cheque
    (3.000 written 3.ooo): each zero's ink scaled to 50-80% of its height, its stroke kept.
    Unchanged when the amount does not end in two zeros."""
    labels = [int(k) for k in labels]
    run = next((i for i, k in enumerate(reversed(labels)) if k != 0), len(labels))  # closing zeros
    if run < 2 or run == len(labels):
        return list(digits)
    scale = rng.uniform(0.5, 0.8)
    out = list(digits)
    for i in range(len(labels) - run, len(labels)):
        d = digits[i]
        ys, xs = np.nonzero(d > 30)
        if len(ys) == 0:
            continue
        crop = d[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        h, w = max(1, int(round(crop.shape[0] * scale))), max(1, int(round(crop.shape[1] * scale)))
        small = cv2.dilate(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA), np.ones((2, 2), np.uint8))
        canvas = np.zeros_like(d)
        y0 = ys.max() + 1 - h  # on the line the full-size digit stood on
        x0 = max(0, min(28 - w, int(round((xs.min() + xs.max() + 1 - w) / 2))))
        canvas[y0: y0 + h, x0: x0 + w] = small
        out[i] = canvas
    return out


def render_amount(items: list, rng: np.random.Generator, condition: str | None = None,
                  size: int | None = None, touching: float = 0.35, broken: float = 0.3, joined: float = 0.0,
                  wide: tuple[float, float] = (1.0, 1.0)):
    """A number as written on a form or a cheque, cut out tightly as a finder or a form
    reader would: ``items`` (digits and marks, see :func:`amount_items`) written in one
    row with a slant, perhaps over a printed baseline and beside a box's edge, in
    ``condition`` (one of :data:`ROW_CONDITIONS`; "printed" is a cheque's pattern); digits
    joined by cursive strokes with probability ``joined`` and written ``wide`` (the row
    reader learns with :data:`JOINED` and :data:`WIDE`; the benchmarks' amounts are
    written without either).

    Returns (image, condition, boxes): the digits' ink boxes before the slant."""
    condition = condition or str(rng.choice(ROW_CONDITIONS))
    size, canvas, boxes = _row_ink(items, condition, size, rng, touching, broken, joined, wide)
    canvas = _shear(canvas, float(rng.uniform(-SLANT, SLANT)) * float(rng.random() < 0.8))
    ys, xs = np.nonzero(canvas > 0.3)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    digit_h = bottom - top
    stroke = max(1, int(round(rng.uniform(0.03, 0.08) * digit_h)))
    lines = np.zeros_like(canvas)
    if rng.random() < BASELINE:
        y = int(bottom + digit_h * rng.uniform(-0.12, 0.15))
        y = min(canvas.shape[0] - stroke - 1, max(0, y))
        lines[y: y + stroke, max(0, left - int(digit_h)):] = rng.uniform(0.5, 1.0)
    # a tight crop: a few pixels to a third of the digits' height of paper around them
    m = (digit_h * rng.uniform(0.02, 0.3, 4)).astype(int)
    y0, y1 = max(0, top - m[0]), min(canvas.shape[0], bottom + m[1])
    x0, x1 = max(0, left - m[2]), min(canvas.shape[1], right + m[3])
    if rng.random() < BOX_EDGE:
        edge = max(1, stroke)
        side = int(rng.integers(4))
        if side == 0:
            lines[y0:y1, x0: x0 + edge] = rng.uniform(0.5, 1.0)
        elif side == 1:
            lines[y0:y1, x1 - edge: x1] = rng.uniform(0.5, 1.0)
        elif side == 2:
            lines[y0: y0 + edge, x0:x1] = rng.uniform(0.5, 1.0)
        else:
            lines[y1 - edge: y1, x0:x1] = rng.uniform(0.5, 1.0)
    alpha = np.maximum(canvas, lines)[y0:y1, x0:x1]
    return _scene(np.ascontiguousarray(alpha), condition, rng, size), condition, boxes


PAGE_CONDITIONS = ("scan", "phone_shadow", "ruled", "squared", "blue_ballpoint", "pencil", "marker",
                   "printed", "chalk")
DIGIT_INK = 0.71  # a digit's ink height / the side of its 28x28 box (MNIST's 20-pixel box)


def render_page(numbers, rng: np.random.Generator, condition: str | None = None,
                height: int | None = None, digit_height=(1 / 20, 1 / 6),
                touching: float = 0.3, broken: float = 0.3):
    """Numbers written anywhere on a page: each one a row of ``items`` (as
    :func:`number_coverage` takes them), its digits between ``digit_height`` of the page's
    height tall (log-uniform), placed at random where it keeps apart from the others (two
    digit heights side by side, most of one above and below). A number that finds no
    room is left out.

    Returns (image, condition, boxes, kept): each placed number's ink box (x, y, w, h),
    and the indices in ``numbers`` of the numbers placed, in the order of ``boxes``."""
    condition = condition or str(rng.choice(PAGE_CONDITIONS))
    page_h = height or int(rng.integers(900, 1500))
    page_w = int(page_h * rng.uniform(0.7, 1.4))
    style = _STYLES.get(condition, "normal")
    canvas = np.zeros((page_h, page_w), np.float32)
    boxes, kept, tall = [], [], []
    lo, hi = np.log(digit_height[0]), np.log(digit_height[1])
    for k, items in enumerate(numbers):
        for _ in range(20):
            digit = float(np.exp(rng.uniform(lo, hi))) * page_h
            row, _ = number_coverage(items, rng, max(12, int(digit / DIGIT_INK)), style, touching, broken)
            ys, xs = np.nonzero(row > 0.05)
            row = row[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
            rh, rw = row.shape
            if rw > 0.94 * page_w or rh > 0.94 * page_h:
                hi = max(lo, np.log(0.8 * digit / page_h))
                continue
            x = int(rng.integers(int(0.03 * page_w), page_w - rw - int(0.03 * page_w) + 1))
            y = int(rng.integers(int(0.03 * page_h), page_h - rh - int(0.03 * page_h) + 1))
            apart = all(x + rw + 2 * max(digit, t) <= bx or bx + bw + 2 * max(digit, t) <= x
                        or y + rh + 0.8 * max(digit, t) <= by or by + bh + 0.8 * max(digit, t) <= y
                        for (bx, by, bw, bh), t in zip(boxes, tall))
            if apart:
                region = canvas[y: y + rh, x: x + rw]
                np.maximum(region, row, out=region)
                boxes.append((x, y, rw, rh))
                kept.append(k)
                tall.append(digit)
                break
    typical = float(np.median(tall)) if tall else 0.1 * page_h
    # The scene's paper is ruled one to two digit heights apart (_scene rules 0.3-0.5 of
    # its size); its other textures go by the 28x28 box of a typical digit.
    scene_size = 4 * typical if condition in ("ruled", "squared") else typical / DIGIT_INK
    return _scene(canvas, condition, rng, int(scene_size)), condition, boxes, kept


def render_blank(kind: str, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """A picture with no digit in it."""
    size = size or int(rng.choice((60, 120, 240)))
    shape = _canvas_shape(size, rng, 1.2, 2.0)
    h, w = shape
    if kind == "plain_paper":
        img = _paper(shape, rng) * _light(shape, rng, shadow=False)[..., None]
    elif kind == "shadow_paper":
        img = _paper(shape, rng) * _light(shape, rng, shadow=True)[..., None]
    elif kind == "ruled_paper":
        img = _paper(shape, rng, "ruled", max(6, int(size * 0.4))) * _light(shape, rng, shadow=False)[..., None]
    elif kind == "squared_paper":
        img = _paper(shape, rng, "squared", max(6, int(size * 0.4))) * _light(shape, rng, shadow=False)[..., None]
    elif kind == "board":
        img = _board(shape, rng)
    elif kind == "noise":
        base = rng.uniform(0.3, 0.9)
        img = np.clip(base + rng.normal(0, rng.uniform(0.03, 0.12), (h, w, 1)), 0, 1).repeat(3, axis=2)
    elif kind == "speck":
        img = _paper(shape, rng)
        r = max(1, int(rng.integers(1, 3)))
        cv2.circle(img, (int(rng.integers(r, w - r)), int(rng.integers(r, h - r))), r, (0.1, 0.1, 0.1), -1)
    elif kind == "transparent":
        return np.zeros((h, w, 4), np.uint8)
    elif kind == "black":
        return np.full((h, w), int(rng.integers(0, 30)), np.uint8)
    else:
        raise ValueError(f"unknown blank {kind!r}; choose from {BLANKS}")
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    return _u8(_jpeg(img, int(rng.integers(60, 92))))


def seeds_pipeline(image: np.ndarray) -> np.ndarray:
    """The seeds' preprocessing, for comparison: grayscale (alpha dropped), resize the
    whole image to 28x28, divide by 255."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(img, (28, 28), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


__all__ = ["CONDITIONS", "BLANKS", "SIZES", "NUMBER_CONDITIONS", "stroke_alpha", "render_digit",
           "render_number", "render_blank", "break_strokes", "seeds_pipeline", "MARKS", "number_coverage",
           "PAGE_CONDITIONS", "render_page", "ROW_CONDITIONS", "amount_items", "render_amount", "european"]
