"""A person's answer to a number's reading, kept as digit samples.

The samples database (:mod:`digitrec.server.samples`) keeps single digits: the 28x28 the
digit model reads and the true digit, what the Train page trains the digit model on. A
number read right, or corrected with a typed number of as many digits as were read, gives
one sample per digit: each digit's box cut from the picture with a margin of paper and
brought to 28x28 as any single digit is (:func:`digitrec.reading.normalize.normalize`).
A typed number with more or fewer digits than were read cannot be matched to the boxes:
:class:`Mismatch` says so, no digit is saved, and the caller keeps the correction with
the readings (the Upload page's download). Marks (``1.500``, ``12-05``) are not digits
and are not counted.
"""
from __future__ import annotations

import numpy as np

from digitrec.reading.normalize import NoDigit, normalize
from digitrec.reading.results import Number

MARGIN = 0.15  # paper kept round a digit's box on every side, x the box's height
MARKS = ".,-/ "  # what a typed number may hold besides digits


class Mismatch(ValueError):
    """A typed number whose digits cannot be matched to the digits read; says why."""


def typed_digits(text: str) -> str:
    """The digits of a typed number (``"1.500"`` -> ``"1500"``). Raises ValueError for
    anything but digits and the marks a number is written with."""
    text = (text or "").strip()
    bad = sorted({c for c in text if not c.isdigit() and c not in MARKS})
    if bad:
        raise ValueError(f"a number holds digits and {' '.join(MARKS.strip())} only, not {' '.join(bad)}")
    digits = "".join(c for c in text if c.isdigit())
    if not digits:
        raise ValueError("type the number, digits 0 to 9")
    return digits


def crop(image: np.ndarray, box, margin: float = MARGIN) -> np.ndarray:
    """The part of ``image`` in ``box`` (x, y, w, h) with ``margin`` x its height round it."""
    x, y, w, h = box
    m = int(round(margin * h))
    H, W = image.shape[:2]
    return image[max(0, y - m): min(H, y + h + m), max(0, x - m): min(W, x + w + m)]


def digit_samples(image: np.ndarray, number: Number, text: str) -> list[dict]:
    """For each digit read in ``number`` (read from ``image``), a sample whose true digit
    is the one typed in ``text`` at its place: dicts with x28 (float32 28x28), true_digit,
    read_digit, confidence and picture (the digit's crop). A digit whose crop holds no
    digit-sized ink is left out. Raises :class:`Mismatch` when the counts differ."""
    digits = typed_digits(text)
    if len(digits) != len(number.digits):
        raise Mismatch(f"{len(digits)} digit{'s' if len(digits) != 1 else ''} typed, "
                       f"{len(number.digits)} read: the digits cannot be matched to their boxes")
    out = []
    for read, true in zip(number.digits, digits):
        picture = crop(image, read.box)
        try:
            x28 = normalize(picture).x28
        except NoDigit:
            continue
        out.append({"x28": x28, "true_digit": int(true), "read_digit": read.digit,
                    "confidence": float(read.confidence), "picture": picture})
    return out


def save_number(db, image: np.ndarray, number: Number, text: str, source: str,
                model: str | None = None) -> int:
    """Save :func:`digit_samples` in the samples database ``db`` in one transaction (all
    or none); how many were saved. Raises :class:`Mismatch`, ValueError for a bad typed
    number, or the database's SampleError."""
    rows = []
    for s in digit_samples(image, number, text):
        picture = s["picture"][..., :3] if s["picture"].ndim == 3 else s["picture"]
        rows.append({"x28": s["x28"], "true_digit": s["true_digit"], "read_digit": s["read_digit"],
                     "confidence": s["confidence"], "source": source, "model": model,
                     "picture": np.ascontiguousarray(picture)})
    return len(db.add_many(rows))


__all__ = ["MARGIN", "Mismatch", "typed_digits", "crop", "digit_samples", "save_number"]
