"""Where a user's image becomes the 28x28 input MNIST was made of.

    image (gray / RGB / RGBA, any size, any polarity)
      -> ink_map     gray, light flattened, polarity found: ink bright on dark, in [0, 1]
      -> ink_mask    thresholded ink with specks, ruled lines and paper edges dropped
      -> to_mnist    crop to the ink, strokes near MNIST width, fit 20x20 keeping the
                     aspect ratio, centre of mass at the centre of 28x28
    normalize(image) does all three for one digit; digit_boxes() splits a row of digits
    for read_number(), each box then going through the same to_mnist().

Anything that is not a digit raises :class:`NoDigit` with a reason a person can read.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitrec.imageio import ImageError, check_array

WORK_SIZE = 600  # larger images are shrunk to this many pixels on their long side first
BOX = 20  # MNIST digits are fitted in a 20x20 box...
SIZE = 28  # ...and centred by centre of mass in 28x28
MNIST_STROKE = 2.4  # typical MNIST stroke width in pixels at 28x28 scale


class NoDigit(ValueError):
    """The image holds no digit; ``str(exc)`` says why."""


@dataclass
class Ink:
    """An image's ink, bright on dark, at working resolution."""

    ink: np.ndarray  # float32 [0, 1]
    mask: np.ndarray  # uint8 {0, 1}, specks and lines removed
    scale: float  # working pixels per original pixel
    inverted: bool  # True when the original had dark ink on light paper


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray/RGB/RGBA -> float32 gray in [0, 1]. Transparency is composited onto
    a background that contrasts with the ink, so black or white ink on a transparent
    canvas both stay visible."""
    image = check_array(image)
    if image.ndim == 2:
        return image.astype(np.float32) / 255.0
    rgb = image[..., :3].astype(np.float32) / 255.0
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if image.shape[2] == 4:
        alpha = image[..., 3].astype(np.float32) / 255.0
        if alpha.min() < 0.98:
            opaque = alpha > 0.5
            ink_level = float(gray[opaque].mean()) if opaque.any() else 0.0
            background = 1.0 if ink_level < 0.5 else 0.0
            gray = alpha * gray + (1.0 - alpha) * background
    return gray


def ink_map(image: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Gray image with ink bright on dark and uneven lighting flattened.

    Returns (ink in [0, 1] at working size, scale, inverted)."""
    gray = to_gray(image)
    h, w = gray.shape
    scale = min(1.0, WORK_SIZE / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    # Polarity: the background covers most of a picture of a digit, so the median is paper.
    inverted = float(np.median(gray)) > 0.5
    ink = 1.0 - gray if inverted else gray
    # Light: estimate the background with a grey opening larger than any stroke, subtract.
    k = max(3, (min(gray.shape) // 6) | 1)
    if min(gray.shape) >= 64:  # small crops (MNIST itself) have no lighting to flatten
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        background = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)
        background = cv2.GaussianBlur(background, (k, k), 0)
        ink = np.clip(ink - background, 0, 1)
    return ink.astype(np.float32), scale, inverted


def _remove_lines(mask: np.ndarray) -> np.ndarray:
    """Drop ruled lines and paper edges: straight runs across most of the image."""
    h, w = mask.shape
    lines = np.zeros_like(mask)
    if w >= 40:
        lines |= cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, int(0.85 * w)), np.uint8))
    if h >= 40:
        lines |= cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((int(0.85 * h), 1), np.uint8))
    if lines.any():
        lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
        mask = mask & (1 - lines)
    return mask


def ink_mask(image: np.ndarray) -> Ink:
    """Threshold the ink map and keep what can be part of a digit."""
    ink, scale, inverted = ink_map(image)
    if ink.size == 0:
        raise NoDigit("the image is empty")
    peak = float(np.percentile(ink, 99.8))
    if peak < 0.12:
        raise NoDigit("blank image: no ink found")
    u8 = np.clip(ink / peak * 255, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (u8 > max(otsu, 64)).astype(np.uint8)
    mask = _remove_lines(mask)
    if mask.mean() > 0.45:
        raise NoDigit("no clear digit: the image is mostly ink or noise")
    return Ink(ink=ink, mask=_drop_specks(mask), scale=scale, inverted=inverted)


def _components(mask: np.ndarray):
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return n, labels, stats


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    """Keep the components big enough to be strokes; specks and noise go."""
    n, labels, stats = _components(mask)
    if n <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    biggest = areas.max()
    h, w = mask.shape
    keep = np.zeros(n, bool)
    for i, area in enumerate(areas, start=1):
        x, y, bw, bh = stats[i, :4]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        big_enough = area >= max(0.08 * biggest, 4)
        if touches and area < 0.3 * biggest:
            big_enough = False  # a corner of paper, a shadow edge
        keep[i] = big_enough
    return keep[labels].astype(np.uint8)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width: 2 * area / perimeter (a long thin stroke's perimeter is ~2x its length)."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(mask.sum()) / max(perimeter, 1.0)


def to_mnist(mask: np.ndarray) -> np.ndarray:
    """A binary mask holding one digit -> 28x28 float32 in [0, 1], MNIST-style."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise NoDigit("blank image: no ink found")
    crop = mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.uint8)
    h, w = crop.shape
    fit = BOX / max(h, w)
    # Bring the stroke width near MNIST's before shrinking (thin pen, fat marker alike).
    if max(h, w) >= 2 * BOX:
        width28 = _stroke_width(crop) * fit
        target = MNIST_STROKE / fit
        pad = int(np.ceil(target))
        crop = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        if width28 < 1.6:
            k = max(3, int(round(target - _stroke_width(crop))) | 1)
            crop = cv2.dilate(crop, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        elif width28 > 4.0:
            k = max(3, int(round(_stroke_width(crop) - target)) | 1)
            thinner = cv2.erode(crop, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            if thinner.sum() > 0.25 * crop.sum():
                crop = thinner
        ys, xs = np.nonzero(crop)
        crop = crop[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        h, w = crop.shape
        fit = BOX / max(h, w)
    size = (max(1, round(w * fit)), max(1, round(h * fit)))
    interp = cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop.astype(np.float32), size, interpolation=interp)
    if fit >= 1:  # tiny inputs: smooth the upscaled blocks like MNIST's anti-aliasing
        small = cv2.GaussianBlur(small, (3, 3), 0.6)
    small = np.clip(small / max(float(small.max()), 1e-6), 0, 1)
    out = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    out[top: top + size[1], left: left + size[0]] = small
    # Centre of mass to the centre, as MNIST was made.
    m = cv2.moments(out)
    if m["m00"] > 0:
        dx, dy = SIZE / 2 - 0.5 - m["m10"] / m["m00"], SIZE / 2 - 0.5 - m["m01"] / m["m00"]
        out = cv2.warpAffine(out, np.float32([[1, 0, dx], [0, 1, dy]]), (SIZE, SIZE),
                             flags=cv2.INTER_LINEAR, borderValue=0)
    return out


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
    return Normalized(x28=to_mnist(ink.mask), box=_box(ink.mask, ink.scale))


def digit_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Split a row of handwritten digits into boxes (x, y, w, h), left to right.

    Components that overlap horizontally are one digit (a 5 whose top stroke is apart);
    a component much wider than a digit is split at the weakest columns (touching digits).
    """
    n, labels, stats = _components(mask)
    boxes = [list(stats[i, :4]) for i in range(1, n)]
    boxes.sort(key=lambda b: b[0])
    merged: list[list[int]] = []
    for x, y, w, h in boxes:
        if merged:
            mx, my, mw, mh = merged[-1]
            overlap = min(mx + mw, x + w) - max(mx, x)
            if overlap > 0.5 * min(w, mw):
                nx, ny = min(mx, x), min(my, y)
                merged[-1] = [nx, ny, max(mx + mw, x + w) - nx, max(my + mh, y + h) - ny]
                continue
        merged.append([x, y, w, h])
    if not merged:
        return []
    height = float(np.median([b[3] for b in merged]))
    out = []
    for x, y, w, h in merged:
        if h < 0.25 * height and w < 0.25 * height:
            continue  # a speck between digits
        parts = max(1, int(round(w / (0.75 * max(h, height)))))
        if parts == 1:
            out.append((x, y, w, h))
            continue
        cols = mask[y: y + h, x: x + w].sum(axis=0).astype(np.float32)
        cuts = [0]
        for k in range(1, parts):
            guess = int(k * w / parts)
            lo, hi = max(cuts[-1] + 1, guess - w // (3 * parts)), min(w - 1, guess + w // (3 * parts))
            cuts.append(lo + int(np.argmin(cols[lo: hi + 1])) if hi > lo else guess)
        cuts.append(w)
        for a, b in zip(cuts, cuts[1:]):
            sub = mask[y: y + h, x + a: x + b]
            ys = np.nonzero(sub.any(axis=1))[0]
            if len(ys):
                out.append((x + a, y + int(ys[0]), b - a, int(ys[-1] - ys[0] + 1)))
    return out


def segment(image: np.ndarray) -> tuple[list[Normalized], Ink]:
    """A row of digits -> one Normalized per digit, left to right. Raises NoDigit."""
    ink = ink_mask(image)
    boxes = digit_boxes(ink.mask)
    if not boxes:
        raise NoDigit("only specks or lines: no digit-sized stroke found")
    digits = []
    for x, y, w, h in boxes:
        sub = np.zeros_like(ink.mask)
        sub[y: y + h, x: x + w] = ink.mask[y: y + h, x: x + w]
        digits.append(Normalized(x28=to_mnist(sub), box=_box(sub, ink.scale)))
    return digits, ink


__all__ = ["NoDigit", "ImageError", "normalize", "segment", "to_mnist", "ink_mask", "ink_map",
           "to_gray", "digit_boxes", "Normalized", "Ink"]
