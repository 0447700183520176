"""Reading single digits, and the :class:`Recognizer` every caller holds: a digit model
(with the number reader's companion networks) loaded once, reading through the one
preprocessing path (:mod:`digitrec.reading.normalize`).

The CLI and tests make their own Recognizer; the Streamlit app caches one with
``st.cache_resource``. Networks run in LiteRT (:mod:`digitrec.reading.engine`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitrec import store
from digitrec.reading import engine, find, numbers
from digitrec.reading.normalize import NoDigit, normalize
from digitrec.reading.results import Number, Prediction, Reading


class Recognizer:
    """A loaded digit model and its card: ``predict`` one digit, ``read_number`` a row,
    ``read`` every number in a picture.

    ``verifier`` and ``row_reader`` (:class:`engine.Network`, or None to go without) help
    read numbers; they do not depend on the digit model, so a model trained in the
    browser reads numbers with the shipped ones."""

    def __init__(self, network: engine.Network, card: dict | None = None, path: Path | None = None,
                 verifier: engine.Network | Path | None = None, row_reader: engine.Network | Path | None = None):
        self.network, self.card, self.path = network, card or {}, path
        # a path is loaded on first use: reading single digits needs neither companion
        self._companions = {"verifier": verifier, "row_reader": row_reader}

    def _companion(self, name: str) -> engine.Network | None:
        found = self._companions[name]
        if isinstance(found, Path):
            found = self._companions[name] = engine.load(found)
        return found

    @property
    def verifier(self) -> engine.Network | None:
        """The whole-digit verifier that helps read numbers, or None."""
        return self._companion("verifier")

    @property
    def row_reader(self) -> engine.Network | None:
        """The CTC row reader that helps read numbers, or None."""
        return self._companion("row_reader")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, verifier: bool = True,
             row_reader: bool = True) -> Recognizer:
        """The model at ``path`` (its ``.keras`` or ``.tflite`` name; default: the shipped
        one), with the shipped verifier and row reader (loaded when a number is first
        read) unless told to go without. Raises :class:`engine.ModelError` for a missing
        or unreadable model file."""
        path = Path(path) if path else store.DIGIT_MODEL
        companions = [store.lite_path(p) if wanted and store.lite_path(p).exists() else None
                      for p, wanted in ((store.VERIFIER, verifier), (store.ROW_READER, row_reader))]
        return cls(engine.load(store.lite_path(path)), store.read_card(path), path, *companions)

    def probabilities(self, x28: np.ndarray) -> np.ndarray:
        """(N, 28, 28) float32 in [0, 1] -> (N, 10) probabilities."""
        return self.network(np.asarray(x28, np.float32).reshape(-1, 28, 28, 1))

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
                preds[i] = Prediction(int(p.argmax()), float(p.max()), p, norm.x28, box=norm.box)
        return preds

    def read_number(self, image: np.ndarray) -> Number:
        """The digits of a number written in one row (:func:`numbers.read_number`)."""
        return numbers.read_number(image, self.probabilities, self.verifier, self.row_reader)

    def read(self, image: np.ndarray) -> Reading:
        """Every number written anywhere in a picture, in reading order (:func:`find.read`)."""
        return find.read(image, self.read_number)
