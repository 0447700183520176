"""The recognizer: load a model once, then read digits and numbers through the one
preprocessing path (:mod:`digitrec.preprocess`).

The CLI and tests make their own :class:`Recognizer`; the Streamlit app caches one with
``st.cache_resource``. Inference goes through a traced ``tf.function`` rather than
``model.predict``, whose per-call overhead dominates for one small image.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec import preprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SHIPPED_MODEL = MODELS_DIR / "digitrec.keras"
LOW_CONFIDENCE = 0.6  # below this a reading is shown, but marked as unsure
SPLIT_PRIOR = 0.3  # read_number: log-confidence given up per digit away from the width's guess


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

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)

    def to_dict(self) -> dict:
        out = {
            "text": self.text or None,
            "digits": [{"digit": d.digit, "confidence": round(float(d.confidence), 4),
                        "box": list(d.box), "low_confidence": d.low_confidence}
                       for d in self.digits],
        }
        if self.reason:
            out["reason"] = self.reason
        return out


class Recognizer:
    """A loaded model and its card, with fast prediction."""

    def __init__(self, model: keras.Model, path: Path | None = None, card: dict | None = None):
        self.model, self.path, self.card = model, path, card or {}
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            reduce_retracing=True,
        )
        self.probabilities(np.zeros((1, 28, 28), np.float32))  # trace once, now

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Recognizer":
        path = Path(path) if path else SHIPPED_MODEL
        if not path.exists():
            raise FileNotFoundError(f"model file {path} not found")
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        card_file = path.with_suffix(".json")
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        return cls(model, path, card)

    def probabilities(self, x28: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10) probabilities."""
        x = np.asarray(x28, np.float32).reshape(-1, 28, 28, 1)
        return self._forward(tf.constant(x)).numpy()

    def predict(self, image: np.ndarray) -> Prediction:
        """One digit in a user's image (any size, polarity, colour)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images) -> list[Prediction]:
        """:meth:`predict` for several images, the model run once on all their digits."""
        preds: list[Prediction | None] = []
        norms = []
        for image in images:
            try:
                norms.append(preprocess.normalize(image))
                preds.append(None)
            except preprocess.NoDigit as exc:
                preds.append(Prediction(digit=None, reason=str(exc)))
        if norms:
            probs = iter(self.probabilities(np.stack([n.x28 for n in norms])))
            norm_iter = iter(norms)
            for i, pred in enumerate(preds):
                if pred is None:
                    p, norm = next(probs), next(norm_iter)
                    preds[i] = Prediction(int(p.argmax()), float(p.max()), p, norm.x28, box=norm.box)
        return preds

    def read_number(self, image: np.ndarray) -> Number:
        """The digits of a number written in one row, left to right.

        Each group of ink may hold touching digits; every plausible count is cut and read
        (all in one batch), and the count whose digits the model reads most surely, with a
        prior for the count the group's width suggests, wins."""
        try:
            groups, _ = preprocess.segment_options(image)
        except preprocess.NoDigit as exc:
            return Number(reason=str(exc))
        flat = [d for _, options in groups for _, digits in options for d in digits]
        probs = iter(self.probabilities(np.stack([d.x28 for d in flat])))
        out = []
        for guess, options in groups:
            best, best_score = None, -np.inf
            for parts, digits in options:
                ps = [next(probs) for _ in digits]
                score = float(np.mean([np.log(max(p.max(), 1e-6)) for p in ps])) - SPLIT_PRIOR * abs(parts - guess)
                if score > best_score:
                    best, best_score = (ps, digits), score
            out += [Prediction(int(p.argmax()), float(p.max()), p, d.x28, box=d.box) for p, d in zip(*best)]
        return Number(out)


def read_number(image: np.ndarray, recognizer: Recognizer | None = None) -> Number:
    """Module-level convenience: ``digitrec.read_number(image)``."""
    return (recognizer or Recognizer.load()).read_number(image)
