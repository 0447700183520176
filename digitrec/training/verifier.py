"""Training the whole-digit verifier: is this crop of a row one whole digit?

:func:`digitrec.reading.numbers.read_number` over-segments a row into candidate digits
and lets the digit model read each one. That model was trained on whole digits, and it
reads anything as one of them: the left half of a broken 0 as a 6, a 1 that touches a 2
together with the 2 as a 2. Its confidence cannot tell those apart from whole digits.

This small CNN can: it is trained on the candidates themselves, cut out of numbers
rendered from MNIST *training* digits (:func:`digitrec.training.number_data.candidate_examples`),
to tell a whole digit (the crop spans one true digit) from a fragment or a merger. It sees
the crop as the model does, plus the candidate's geometry in the row
(:data:`digitrec.reading.numbers.FEATURES`).
The reader adds ``WHOLE_WEIGHT`` x its log-odds to each candidate's score.

    python -m digitrec train-verifier --data DIR --out models/verifier.keras

The verifier does not depend on the digit model: a model trained in the browser is read
with the same shipped verifier.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from digitrec import store
from digitrec.reading.numbers import FEATURES
from digitrec.training.recipes import VerifierConfig


def build(seed: int = 1) -> keras.Model:
    """Crop (28x28) and geometry in, P(one whole digit) out: three small convolutions, the
    geometry joined after them. About 61,000 parameters; a row's 20-60 candidates take a
    few milliseconds."""
    keras.utils.set_random_seed(seed)
    crop = keras.Input((28, 28, 1), name="crop")
    geometry = keras.Input((len(FEATURES),), name="geometry")
    h = keras.layers.Conv2D(16, 3, activation="relu")(crop)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(64, 3, activation="relu")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Concatenate()([h, geometry])
    h = keras.layers.Dense(64, activation="relu")(h)
    whole = keras.layers.Dense(1, activation="sigmoid", name="whole")(h)
    return keras.Model([crop, geometry], whole, name="verifier")


def train_verifier(cfg: VerifierConfig, verbose: int = 2) -> tuple[Path, dict]:
    """Render, cut and label the candidates; fit; save the model and its card beside it."""
    from digitrec.training.datasets import load_mnist
    from digitrec.training.export import save_model
    from digitrec.training.number_data import candidate_examples
    from digitrec.training.train import machine

    start = time.time()
    mnist = load_mnist(cfg.data)
    examples = candidate_examples(mnist.x_train, cfg.numbers, cfg.seed, cfg.workers)
    x = examples.x[..., None].astype(np.float32) / 255.0
    f, y = examples.features, examples.whole.astype(np.float32)
    order = np.random.default_rng([cfg.seed, 7]).permutation(len(y))
    x, f, y = x[order], f[order], y[order]
    held = int(round(cfg.held_out * len(y)))
    model = build(cfg.seed)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, cfg.epochs * int(np.ceil((len(y) - held) / cfg.batch_size)))),
        "binary_crossentropy", metrics=["accuracy"])
    fit_start = time.time()
    model.fit([x[held:], f[held:]], y[held:], batch_size=cfg.batch_size, epochs=cfg.epochs,
              verbose=verbose, shuffle=True)
    fit_seconds = time.time() - fit_start
    report = {}
    if held:
        loss, accuracy = model.evaluate([x[:held], f[:held]], y[:held], batch_size=1024, verbose=0)
        report = {"held_out": held, "loss": round(float(loss), 4), "accuracy": round(float(accuracy), 4)}
    card = {
        "format": "digitrec-verifier-card/1",
        "what": "P(a read_number candidate is one whole digit), from its 28x28 crop and geometry",
        "options": asdict(cfg),
        "features": list(FEATURES),
        "parameters": int(model.count_params()),
        "examples": {"numbers": examples.numbers, "candidates": int(len(y)),
                     "whole": int(y.sum()), "render_seconds": examples.seconds,
                     "source": "MNIST training digits only"},
        "held_out": report,
        "train_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "machine": machine(),
    }
    path = save_model(model, cfg.out or store.VERIFIER, card)
    return path, card
