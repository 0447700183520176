"""What reading returns: a :class:`Prediction` for one digit, a :class:`Number` for a
number, a :class:`Reading` for every number in a picture. Plain data with
``to_dict`` for the CLI's JSON; no model, no pictures made."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOW_CONFIDENCE = 0.6  # below this (calibrated) a digit is shown, but marked as unsure
NOT_A_DIGIT = "not a digit"  # the reason given when the model's "not a digit" class wins
NUMBER_LOW_CONFIDENCE = 0.5  # a number read with less probability than this is marked as unsure


@dataclass
class Prediction:
    digit: int | None
    confidence: float = 0.0
    # calibrated, one per class: the ten digits, then "not a digit" where the model has it
    probabilities: np.ndarray | None = None
    input28: np.ndarray | None = None  # what the model saw
    reason: str | None = None  # why there is no digit
    box: tuple[int, int, int, int] | None = None  # where the digit is, original pixels

    @property
    def low_confidence(self) -> bool:
        return self.digit is not None and self.confidence < LOW_CONFIDENCE

    @property
    def not_digit(self) -> float | None:
        """The probability that the picture holds no digit at all (a letter, a scribble);
        None for a model without that class, or when no ink was found."""
        if self.probabilities is None or len(self.probabilities) < 11:
            return None
        return float(self.probabilities[10])

    def to_dict(self) -> dict:
        out: dict = {"digit": self.digit}
        if self.digit is None:
            out["reason"] = self.reason
        else:
            out["confidence"] = round(float(self.confidence), 4)
        if self.probabilities is not None:
            out["probabilities"] = [round(float(p), 4) for p in self.probabilities[:10]]
        if self.not_digit is not None:
            out["not_a_digit"] = round(self.not_digit, 4)
        if self.digit is not None:
            out["low_confidence"] = self.low_confidence
        return out


@dataclass
class Number:
    digits: list[Prediction] = field(default_factory=list)
    reason: str | None = None
    probability: float = 0.0  # the recognizer's probability of its reading (its characters' together)
    box: tuple[int, int, int, int] | None = None  # where the number is in the picture, original pixels
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
        """How sure the reading is as a whole: the recognizer's probability of it."""
        return float(self.probability) if self.digits else 0.0

    @property
    def doubts(self) -> list[str]:
        """Why the reading may be wrong: a whole reading the recognizer gives less than
        NUMBER_LOW_CONFIDENCE, and the digits it is unsure of. Empty when neither."""
        if not self.digits or self.confidence >= NUMBER_LOW_CONFIDENCE:
            return []
        out = [f"read at {self.confidence:.0%}"]
        out += [f"digit {i + 1} ({d.digit}) read at {d.confidence:.0%}"
                for i, d in enumerate(self.digits) if d.low_confidence]
        return out

    @property
    def low_confidence(self) -> bool:
        return bool(self.doubts)

    def to_dict(self) -> dict:
        out = {
            "text": self.text or None,
            "box": list(self.box) if self.box else None,
            "confidence": round(self.confidence, 4),
            "low_confidence": self.low_confidence,
            "digits": [{"digit": d.digit, "confidence": round(float(d.confidence), 4), "box": list(d.box)}
                       for d in self.digits],
        }
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
        return {"text": self.text, "numbers": [n.to_dict() for n in self.numbers]}
