"""A picture as ink on paper: the one form both number networks read.

Grey (transparency handled as for single digits, :func:`normalize.to_gray`), turned so
that the ink is the dark side, and scaled so that the paper is 0 and the darkest ink 1.
Nothing else is taken out: shadows, ruling, a cheque's printed pattern and a neighbour's
strokes stay in the picture, and the networks learn from their training pictures to look
past them.
"""
from __future__ import annotations

import cv2
import numpy as np

from digitrec.reading.normalize import to_gray

CONTRAST_FLOOR = 0.2  # ink is at least this much darker than paper (of full scale): a blank page's grain stays faint


def gray(image: np.ndarray) -> np.ndarray:
    """Any decoded picture -> float32 grey in [0, 1] with the ink darker than the paper.
    The paper is most of a picture, so its median lies on the paper's side of the midpoint
    between the picture's darkest and lightest tones; chalk on a board and a web canvas's
    strokes (bright on dark) are turned over."""
    g = to_gray(image)
    lo, hi = np.percentile(g, (1, 99)) if g.size > 1 else (0.0, 1.0)
    if float(np.median(g)) < (lo + hi) / 2:
        g = 1.0 - g
    return g


def ink(g: np.ndarray) -> np.ndarray:
    """Grey with dark ink (:func:`gray`) -> float32 ink in [0, 1]: the paper (the median)
    0, the darkest tone 1, anything lighter than the paper 0."""
    paper = float(np.median(g))
    darkest = float(g.min())
    return np.clip((paper - g) / max(paper - darkest, CONTRAST_FLOOR), 0.0, 1.0).astype(np.float32)


def resize(g: np.ndarray, width: int, height: int) -> np.ndarray:
    """``g`` at (width, height): averaged when shrunk (thin strokes keep their ink),
    interpolated when grown."""
    shrink = width < g.shape[1] or height < g.shape[0]
    return cv2.resize(g, (max(1, width), max(1, height)),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


__all__ = ["gray", "ink", "resize", "CONTRAST_FLOOR"]
