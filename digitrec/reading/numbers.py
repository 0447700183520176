"""Reading numbers: a picture -> every number written in it, in reading order.

    picture -> ink.gray       grey, the ink darker than the paper
            -> detect         the detector's map of where numbers are -> one box each
            -> recognize      each box read by the recognizer (CTC), in one batch;
                              its digits boxed from the alignment
            -> Reading        the numbers with their boxes, texts and confidences

Both networks are exported ``.tflite`` files run by :mod:`digitrec.reading.engine`; how
they learn is :mod:`digitrec.training.detector` and :mod:`digitrec.training.recognizer`.
"""
from __future__ import annotations

import numpy as np

from digitrec.reading import detect, ink, recognize
from digitrec.reading.results import Number, Reading

BLANK_CONTRAST = 0.08  # a picture whose tones span less than this (of full scale) holds no ink


def _found(image: np.ndarray, detector):
    """(grey picture, the numbers the detector finds in it, why there are none): the
    steps :func:`read` and :func:`read_one` share."""
    g = ink.gray(image)
    lo, hi = np.percentile(g, (0.1, 99.9))
    if hi - lo < BLANK_CONTRAST:
        return g, [], "blank image: no ink found"
    found = detect.detect(detector, g)
    return g, found, None if found else "no number found"


def read(image: np.ndarray, detector, recognizer) -> Reading:
    """Every number in ``image`` (any decoded picture), each with its box and its digits'."""
    g, found, reason = _found(image, detector)
    if not found:
        return Reading(reason=reason)
    numbers = [n for n in recognize.recognize(recognizer, g, [d.box for d in found]) if n.digits]
    if not numbers:
        return Reading(reason="no digits read where writing was found")
    return Reading(numbers)


def read_one(image: np.ndarray, detector, recognizer) -> Number:
    """``image`` read as one number (a tight crop of a row): the box round everything the
    detector finds in it. Where it finds nothing, there is no number to read."""
    g, found, reason = _found(image, detector)
    if not found:
        return Number(reason=reason)
    x0, y0 = min(d.box[0] for d in found), min(d.box[1] for d in found)
    x1 = max(d.box[0] + d.box[2] for d in found)
    y1 = max(d.box[1] + d.box[3] for d in found)
    return recognize.recognize(recognizer, g, [(x0, y0, x1 - x0, y1 - y0)])[0]


__all__ = ["read", "read_one"]
