"""Confidence that means what it says: temperature scaling of the digit model's output.

A network trained with label smoothing is less sure than it is right (its clean MNIST
digits stopped at 98.9%); one trained without it, more. One number fitted on held-out
digits after training (:func:`digitrec.training.evaluate.fit_temperature`, kept in the
model card as ``calibration.temperature``) moves every reading's probabilities to what
they are worth: ``p ** (1/T)``, renormalised, the same as dividing the network's logits by
T. NumPy only; the reading path applies it to every prediction.
"""
from __future__ import annotations

import numpy as np

FLOOR = 1e-12  # probabilities are kept above this before their log


def tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) softmax outputs as if their logits were divided by ``temperature``."""
    probs = np.asarray(probs, np.float64)
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs, FLOOR, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=-1, keepdims=True)


def temperature_of(card: dict | None) -> float:
    """The card's fitted temperature; 1 (as the network says) for a model without one."""
    found = ((card or {}).get("calibration") or {}).get("temperature")
    return float(found) if found else 1.0
