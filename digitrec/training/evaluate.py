"""Scoring a model on a labelled test set: accuracy, loss, per-class accuracy, confusion.

One function, :func:`scores`, for the card a training writes and for
``python -m digitrec evaluate``, so that both report the same figures. NumPy only.
"""
from __future__ import annotations

import numpy as np

LOSS_FLOOR = 1e-7  # probabilities are kept above this before their log


def scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """(N, 10) or (N, 11) probabilities against N digit labels. With eleven columns a
    digit read as "not a digit" is an error, counted in the confusion's last column."""
    y = np.asarray(y, np.int64)
    pred = probs.argmax(1)
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], LOSS_FLOOR, 1)).mean())
    confusion = np.zeros((10, probs.shape[1]), np.int64)
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


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """How far confidence is from accuracy: the readings grouped by their confidence into
    ``bins`` equal ranges, the gap between each group's mean confidence and its accuracy,
    weighted by its size (Guo et al., 2017)."""
    confidence, right = probs.max(1), probs.argmax(1) == np.asarray(y)
    group = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for g in np.unique(group):
        member = group == g
        gap += member.sum() * abs(confidence[member].mean() - right[member].mean())
    return float(gap / max(len(y), 1))


def reliability(probs: np.ndarray, y: np.ndarray) -> dict:
    """What a user can take a confidence to mean: the calibration error, and of the
    readings given 90% or more, how many there are and how many are right."""
    confident = probs.max(1) >= 0.9
    right = probs.argmax(1) == np.asarray(y)
    return {"ece": round(expected_calibration_error(probs, y), 5),
            "share_at_90": round(float(confident.mean()), 5),
            "right_at_90": round(float(right[confident].mean()), 5) if confident.any() else None}


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature T that makes ``probs`` ** (1/T), renormalised, best fit the labels
    (least negative log-likelihood; temperature scaling, Guo et al., 2017): a search over
    log T, since the likelihood has one minimum in it."""
    from digitrec.reading.calibration import tempered

    y = np.asarray(y, np.int64)

    def nll(log_t):
        p = tempered(probs, float(np.exp(log_t)))
        return -np.log(np.clip(p[np.arange(len(y)), y], LOSS_FLOOR, 1)).mean()

    lo, hi = np.log(0.05), np.log(20.0)
    for _ in range(60):  # golden-section search
        a, b = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, b) if nll(a) < nll(b) else (a, hi)
    return round(float(np.exp((lo + hi) / 2)), 4)


def evaluate(probabilities, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """:func:`scores` of ``probabilities`` ((N, 28, 28) float32 -> (N, 10); a Recognizer's)
    on uint8 test images."""
    return scores(probabilities(x_test.astype(np.float32) / 255.0), y_test)
