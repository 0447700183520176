"""Evaluation on the MNIST test set: accuracy, loss, per-class accuracy, confusion."""
from __future__ import annotations

import numpy as np


def evaluate(recognizer, mnist, batch_size: int = 1000) -> dict:
    x = mnist.x_test.astype(np.float32) / 255.0
    y = mnist.y_test.astype(np.int64)
    probs = np.concatenate([recognizer.probabilities(x[i: i + batch_size])
                            for i in range(0, len(x), batch_size)])
    pred = probs.argmax(1)
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1)).mean())
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (y, pred), 1)
    per_class = (np.diag(confusion) / confusion.sum(1)).tolist()
    return {
        "accuracy": round(float((pred == y).mean()), 5),
        "loss": round(loss, 5),
        "n": int(len(y)),
        "errors": int((pred != y).sum()),
        "per_class": [round(a, 5) for a in per_class],
        "confusion": confusion.tolist(),
    }
