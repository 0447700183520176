"""What reading returns: a :class:`Prediction` for one digit, a :class:`Number` for a
row of them, a :class:`Reading` for every number in a picture. Plain data with
``to_dict`` for the CLI's JSON; no model, no pictures made."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOW_CONFIDENCE = 0.6  # below this a digit is shown, but marked as unsure
ROW_LOW_CONFIDENCE = 0.5  # a number the row reader finds less likely than this is marked as unsure


@dataclass
class Prediction:
    digit: int | None
    confidence: float = 0.0
    probabilities: np.ndarray | None = None
    input28: np.ndarray | None = None  # what the model saw
    reason: str | None = None  # why there is no digit
    box: tuple[int, int, int, int] | None = None  # where the digit is, original pixels

    @property
    def low_confidence(self) -> bool:
        return self.digit is not None and self.confidence < LOW_CONFIDENCE

    def to_dict(self) -> dict:
        if self.digit is None:
            return {"digit": None, "reason": self.reason}
        return {
            "digit": self.digit,
            "confidence": round(float(self.confidence), 4),
            "probabilities": [round(float(p), 4) for p in self.probabilities],
            "low_confidence": self.low_confidence,
        }


@dataclass
class Number:
    digits: list[Prediction] = field(default_factory=list)
    reason: str | None = None
    row_probability: float | None = None  # the row reader's P(this reading | row), where it read the row
    box: tuple[int, int, int, int] | None = None  # where the number is in a picture of several, original pixels
    marks: list[tuple[int, str]] = field(default_factory=list)  # (digits before it, mark) kept in the text

    @property
    def text(self) -> str:
        """The digits, with the marks between them that were read (``1.500``, ``12-05``)."""
        out = [str(d.digit) for d in self.digits]
        for before, mark in sorted(self.marks, reverse=True):
            out.insert(before, mark)
        return "".join(out)

    @property
    def confidence(self) -> float:
        """How sure the reading is as a whole: the product of the digits' confidences, or
        the row reader's probability of the reading where that is lower."""
        sure = float(np.prod([d.confidence for d in self.digits])) if self.digits else 0.0
        return sure if self.row_probability is None else min(sure, float(self.row_probability))

    @property
    def doubts(self) -> list[str]:
        """Why the reading may be wrong: digits the model is unsure of, and a row reader
        that finds the reading less likely than not. Empty when neither."""
        out = [f"digit {i + 1} ({d.digit}) read at {d.confidence:.0%}"
               for i, d in enumerate(self.digits) if d.low_confidence]
        if self.digits and self.row_probability is not None and self.row_probability < ROW_LOW_CONFIDENCE:
            out.append(f"the row reader gives this reading {self.row_probability:.0%}")
        return out

    @property
    def low_confidence(self) -> bool:
        return bool(self.doubts)

    def to_dict(self) -> dict:
        out = {
            "text": self.text or None,
            "digits": [{"digit": d.digit, "confidence": round(float(d.confidence), 4),
                        "box": list(d.box), "low_confidence": d.low_confidence}
                       for d in self.digits],
        }
        if self.digits:
            out["low_confidence"] = self.low_confidence
            out["row_probability"] = (None if self.row_probability is None
                                      else round(float(self.row_probability), 4))
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class Reading:
    """Every number found in a picture, in reading order; none, and why."""

    numbers: list[Number] = field(default_factory=list)
    reason: str | None = None

    @property
    def text(self) -> str | None:
        """The numbers' texts joined by a space; None when there is no number."""
        return " ".join(n.text for n in self.numbers) or None

    def to_dict(self) -> dict:
        if not self.numbers:
            return {"text": None, "numbers": [], "reason": self.reason}
        return {"text": self.text, "numbers": [
            {"text": n.text, "box": list(n.box) if n.box else None, "confidence": round(n.confidence, 4),
             "low_confidence": n.low_confidence,
             "digits": [{"digit": d.digit, "confidence": round(float(d.confidence), 4), "box": list(d.box)}
                        for d in n.digits]}
            for n in self.numbers]}
