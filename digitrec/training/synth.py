"""Render MNIST digits into the kinds of pictures users upload.

Every scene starts from a real MNIST digit (the benchmark uses *test* digits only) and
puts it on paper, a board, a canvas or a transparent layer, with the degradations of a
phone photo or a scan. Everything is seeded and deterministic: the same digit, condition
and ``numpy.random.Generator`` state give the same image.

    render_digit(d28, condition, rng, size=None) -> uint8 gray / RGB / RGBA image
    render_number(digits28, rng, condition=None) -> (image, boxes)
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
    photo = c in ("phone_shadow", "ruled", "squared", "blue_ballpoint", "pencil", "marker", "tilt", "jpeg")
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
    style = {"marker": "thick", "tablet_thick": "thick", "tablet_thin": "thin",
             "blue_ballpoint": "thin"}.get(condition, "normal")
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


def break_strokes(alpha: np.ndarray, rng: np.random.Generator, cuts: int = 1) -> np.ndarray:
    """Erase a narrow band across the strokes: a pen that skipped."""
    h, w = alpha.shape
    out = alpha.copy()
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        return out
    for _ in range(cuts):
        i = int(rng.integers(len(xs)))
        angle = rng.uniform(0, np.pi)
        gap = max(1, int(round(0.03 * h)))
        length = int(0.15 * h)
        dx, dy = np.cos(angle) * length, np.sin(angle) * length
        p0 = (int(xs[i] - dx), int(ys[i] - dy))
        p1 = (int(xs[i] + dx), int(ys[i] + dy))
        mask = np.zeros((h, w), np.uint8)
        cv2.line(mask, p0, p1, 1, gap)
        out[mask > 0] = 0
    return out


def render_number(digits28: list[np.ndarray], rng: np.random.Generator,
                  condition: str | None = None, size: int | None = None,
                  touching: float = 0.3, broken: float = 0.3):
    """Several MNIST digits written in one row, left to right.

    Some neighbours touch (with probability ``touching`` per pair their ink overlaps a
    little), some digits have a skipped stroke (probability ``broken``). Returns
    (image, condition, boxes) where boxes are the digits' ink boxes (x, y, w, h)."""
    condition = condition or str(rng.choice(NUMBER_CONDITIONS))
    size = size or int(rng.choice((40, 56, 84, 112)))
    style = {"marker": "thick", "tablet_thick": "thick", "tablet_thin": "thin",
             "blue_ballpoint": "thin"}.get(condition, "normal")
    if style == "thin" and size < 56:
        size = 56
    pieces = []
    for d in digits28:
        s = int(size * rng.uniform(0.92, 1.08))
        a = stroke_alpha(d, s, style, rng)
        if rng.random() < broken:
            a = break_strokes(a, rng)
        cols = np.nonzero(a.max(axis=0) > 0.3)[0]
        rows = np.nonzero(a.max(axis=1) > 0.3)[0]
        if len(cols) == 0:
            continue
        pieces.append(a[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1])
    heights = [p.shape[0] for p in pieces]
    H = int(max(heights) * 1.15) + 4
    pad_y = int(size * rng.uniform(0.3, 0.7))
    stroke = max(2, int(0.09 * size)) if style != "thin" else 2
    total = sum(p.shape[1] for p in pieces) + int(size * 0.4) * len(pieces) + 2 * size
    canvas = np.zeros((H + 2 * pad_y, total), np.float32)
    boxes = []
    x_right = int(size * rng.uniform(0.3, 0.8))
    for i, p in enumerate(pieces):
        y0 = pad_y + int(rng.integers(0, H - p.shape[0] + 1))
        if i == 0:
            x0 = x_right
        else:
            # Place by the ink, row by row: the gap is between the nearest strokes, so a
            # "touching" pair meets at one point instead of overlapping.
            touch = rng.random() < touching
            if touch:
                gap = -int(rng.integers(0, max(1, stroke // 3) + 1))  # ink just meets
            else:
                gap = int(size * rng.uniform(0.06, 0.25))
            prev_end = boxes[-1][0] + boxes[-1][2]
            narrow = min(boxes[-1][2], p.shape[1])
            rows = canvas[y0: y0 + p.shape[0]] > 0.3
            has = rows.any(axis=1)
            right = np.where(has, rows.shape[1] - 1 - np.argmax(rows[:, ::-1], axis=1), -10 ** 6)
            prow = p > 0.3
            left = np.where(prow.any(axis=1), np.argmax(prow, axis=1), 10 ** 6)
            need = right - left
            # ...and the boxes overlap little (a person still sees two digits at a glance).
            x0 = int(max(need.max() + 1 + gap, prev_end - 0.12 * narrow if touch else prev_end + gap // 3))
        region = canvas[y0: y0 + p.shape[0], x0: x0 + p.shape[1]]
        np.maximum(region, p, out=region)
        boxes.append((x0, y0, p.shape[1], p.shape[0]))
    width = max(b[0] + b[2] for b in boxes) + int(size * rng.uniform(0.3, 0.8))
    canvas = canvas[:, :width]
    return _scene(canvas, condition, rng, size), condition, boxes


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
           "render_number", "render_blank", "break_strokes", "seeds_pipeline"]
