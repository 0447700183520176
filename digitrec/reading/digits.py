"""Reading single digits, and the :class:`Recognizer` every caller holds: a digit model
(with the detector and recognizer that read numbers) loaded once, reading through the one
preprocessing path (:mod:`digitrec.reading.normalize`).

The CLI and tests make their own Recognizer; the Streamlit app caches one with
``st.cache_resource``. Networks run in LiteRT (:mod:`digitrec.reading.engine`).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from digitrec import store
from digitrec.reading import engine, numbers
from digitrec.reading.calibration import temperature_of, tempered
from digitrec.reading.count import DigitCount, count_digits
from digitrec.reading.normalize import NoDigit, normalize
from digitrec.reading.results import NOT_A_DIGIT, Number, Prediction, Reading


class Recognizer:
    """A loaded digit model and its card: ``predict`` one digit, ``read`` every number in
    a picture, ``read_number`` a picture of one number, ``count_digits`` in a picture.

    ``detector`` and ``recognizer`` (:class:`engine.Network`, a path loaded on first use,
    or None) read numbers; they do not depend on the digit model, so a model trained in
    the browser reads numbers with the shipped ones."""

    def __init__(self, network: engine.Network, card: dict | None = None, path: Path | None = None,
                 detector: engine.Network | Path | None = None, recognizer: engine.Network | Path | None = None):
        self.network, self.card, self.path = network, card or {}, path
        self.temperature = temperature_of(self.card)  # 1 for a model without a fitted one
        self._companions = {"detector": detector, "recognizer": recognizer}
        self._lock = threading.Lock()

    def _companion(self, name: str) -> engine.Network:
        with self._lock:  # two sessions' first numbers load a network once
            found = self._companions[name]
            if isinstance(found, Path):
                found = self._companions[name] = engine.load(found)
        if found is None:
            raise engine.ModelError(f"no {name} network: numbers cannot be read")
        return found

    @property
    def detector(self) -> engine.Network:
        """The network that finds where numbers are written."""
        return self._companion("detector")

    @property
    def recognizer(self) -> engine.Network:
        """The network that reads one number's box."""
        return self._companion("recognizer")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, numbers: bool = True) -> Recognizer:
        """The model at ``path`` (its ``.keras`` or ``.tflite`` name; default: the shipped
        one), with the shipped detector and recognizer (loaded when a number is first
        read) unless told to go without. Raises :class:`engine.ModelError` for a missing
        or unreadable model file."""
        path = Path(path) if path else store.DIGIT_MODEL
        companions = [store.lite_path(p) if numbers else None for p in (store.DETECTOR, store.RECOGNIZER)]
        return cls(engine.load(store.lite_path(path)), store.read_card(path), path, *companions)

    def probabilities(self, x28: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 11) calibrated probabilities: the ten
        digits, then "not a digit" ((N, 10) for a model without that class)."""
        raw = self.network(np.asarray(x28, np.float32).reshape(-1, 28, 28, 1))
        return tempered(raw, self.temperature).astype(np.float32)

    def predict(self, image: np.ndarray) -> Prediction:
        """One digit in a user's image (any size, polarity, colour)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images) -> list[Prediction]:
        """:meth:`predict` for several images, the model run once on all their digits."""
        found: dict[int, object] = {}
        preds: list[Prediction | None] = []
        for i, image in enumerate(images):
            try:
                found[i] = normalize(image)
                preds.append(None)
            except NoDigit as exc:
                preds.append(Prediction(digit=None, reason=str(exc)))
        if found:
            probs = self.probabilities(np.stack([n.x28 for n in found.values()]))
            for (i, norm), p in zip(found.items(), probs):
                best = int(p.argmax())
                if best >= 10:  # the model's "not a digit" wins: a letter, a scribble
                    preds[i] = Prediction(None, 0.0, p, norm.x28, reason=NOT_A_DIGIT, box=norm.box)
                else:
                    preds[i] = Prediction(best, float(p[best]), p, norm.x28, box=norm.box)
        return preds

    def read_number(self, image: np.ndarray) -> Number:
        """A picture of one number, read whole (:func:`numbers.read_one`)."""
        return numbers.read_one(image, self.detector, self.recognizer)

    def count_digits(self, image: np.ndarray) -> DigitCount:
        """How many digits a picture holds (:func:`count.count_digits`): beside
        :meth:`predict`, whether the picture is one digit or a number."""
        return count_digits(image, self.detector, self.recognizer)

    def read(self, image: np.ndarray) -> Reading:
        """Every number written anywhere in a picture, in reading order (:func:`numbers.read`)."""
        return numbers.read(image, self.detector, self.recognizer)
