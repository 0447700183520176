"""Scoring a model on a labelled test set: accuracy, loss, per-class accuracy, confusion.

One function, :func:`scores`, for the card a training writes and for
``python -m digitrec evaluate``, so that both report the same figures. NumPy only.
"""
from __future__ import annotations

import numpy as np

LOSS_FLOOR = 1e-7  # probabilities are kept above this before their log


def scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """(N, 10) probabilities against N labels."""
    y = np.asarray(y, np.int64)
    pred = probs.argmax(1)
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], LOSS_FLOOR, 1)).mean())
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (y, pred), 1)
    per_class = np.diag(confusion) / np.maximum(confusion.sum(1), 1)
    return {
        "accuracy": round(float((pred == y).mean()), 5),
        "loss": round(loss, 5),
        "n": int(len(y)),
        "errors": int((pred != y).sum()),
        "per_class": [round(float(a), 5) for a in per_class],
        "confusion": confusion.tolist(),
    }


def evaluate(probabilities, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """:func:`scores` of ``probabilities`` ((N, 28, 28) float32 -> (N, 10); a Recognizer's)
    on uint8 test images."""
    return scores(probabilities(x_test.astype(np.float32) / 255.0), y_test)
