"""How many digits a picture holds: the check beside a single digit's reading.

The digit model reads one digit, whatever it is shown: a cheque's amount or a row of
digits comes back as one of its digits, with a confidence and no word of the others. The
number networks read the same picture whole (:func:`numbers.read_one`); where they read
two digits or more and are sure of their reading, the picture holds a number, and a
caller can say so and offer that reading instead. A single digit read whole is one
digit, or a reading they are unsure of, which counts as one: the hint is for pictures
that plainly hold more.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.reading import numbers
from digitrec.reading.results import Number


@dataclass
class DigitCount:
    """How many digits the number networks read in a picture, and their reading."""

    number: Number  # the picture read whole as one number (no digits where none was found)

    @property
    def sure(self) -> bool:
        """The networks read digits and are sure of them (:attr:`Number.low_confidence`)."""
        return bool(self.number.digits) and not self.number.low_confidence

    @property
    def digits(self) -> int:
        """How many digits the picture holds: those of its reading where the networks are
        sure of it; 1 where they are not (a picture given as one digit stays one), 0 where
        they find no number at all."""
        if not self.number.digits:
            return 0
        return len(self.number.digits) if self.sure else 1

    @property
    def several(self) -> bool:
        """True when the picture holds a number of two digits or more: one digit's
        reading of it tells only part of the story."""
        return self.digits >= 2

    def to_dict(self) -> dict:
        return {"digits": self.digits, "several": self.several,
                "number": self.number.text or None, "confidence": round(self.number.confidence, 4)}


def count_digits(image: np.ndarray, detector, recognizer) -> DigitCount:
    """How many digits ``image`` (any decoded picture) holds, read whole by ``detector``
    and ``recognizer`` (:class:`digitrec.reading.engine.Network`)."""
    return DigitCount(numbers.read_one(image, detector, recognizer))


__all__ = ["DigitCount", "count_digits"]
