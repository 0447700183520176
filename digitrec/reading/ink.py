"""A picture as ink on paper: the one form both number networks read.

Grey (transparency handled as for single digits, :func:`normalize.to_gray`), turned so
that the ink is the dark side, and scaled so that the paper is 0 and the darkest tone 1.
Nothing else is taken out: shadows, ruling, a cheque's printed pattern and a neighbour's
strokes stay in the picture, and the networks learn from their training pictures to look
past them.
"""
from __future__ import annotations

import cv2
import numpy as np

from digitrec.reading.normalize import to_gray

CONTRAST_FLOOR = 0.2  # ink is at least this much darker than paper (of full scale): a blank page's grain stays faint
PAPER = 90  # the paper's tone is this percentile of the picture's (a margin, a desk or the ink may be most of it)
POLARITY_SIDE = 256  # the polarity is judged at this many pixels on the picture's long side...
STROKE_KERNELS = (7, 15, 31)  # ...by closing and opening with a disc this wide (wider than a
# pen's stroke there), or, where that finds no thin structure at all, the next width (a
# marker's or a web canvas's thick pen)
THIN_FLOOR = 0.003  # thin structures adding up to less than this (of the picture) are none


def gray(image: np.ndarray) -> np.ndarray:
    """Any decoded picture -> float32 grey in [0, 1] with the ink darker than the paper.

    Which side is ink is told by the strokes, not by the areas: a pen's strokes are thin,
    so thin dark lines on light (what a closing fills in) mean dark ink, thin light lines
    on dark (what an opening takes away) mean chalk on a board or a web canvas's strokes,
    which are turned over. A black margin or a dark desk, however large, is no thin line
    and has no say. Strokes wider than the first disc (a thick pen on a small canvas)
    leave nothing thin at that width: the next, wider disc judges them."""
    g = to_gray(image)
    h, w = g.shape
    f = min(1.0, POLARITY_SIDE / max(h, w))
    small = cv2.resize(g, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else g
    for width in STROKE_KERNELS:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
        dark = float((cv2.morphologyEx(small, cv2.MORPH_CLOSE, k) - small).mean())
        light = float((small - cv2.morphologyEx(small, cv2.MORPH_OPEN, k)).mean())
        if max(dark, light) >= THIN_FLOOR:
            break
    return 1.0 - g if light > dark else g


def ink(g: np.ndarray) -> np.ndarray:
    """Grey with dark ink (:func:`gray`) -> float32 ink in [0, 1]: the paper (the tone
    PAPER of the way from the darkest to the lightest) 0, the darkest tone 1."""
    paper = float(np.percentile(g, PAPER))
    darkest = float(g.min())
    return np.clip((paper - g) / max(paper - darkest, CONTRAST_FLOOR), 0.0, 1.0).astype(np.float32)


def resize(g: np.ndarray, width: int, height: int) -> np.ndarray:
    """``g`` at (width, height): averaged when shrunk (thin strokes keep their ink),
    interpolated when grown."""
    shrink = width < g.shape[1] or height < g.shape[0]
    return cv2.resize(g, (max(1, width), max(1, height)),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


__all__ = ["gray", "ink", "resize", "CONTRAST_FLOOR"]
