"""Saving a trained network: ``.keras`` (to train further), ``.tflite`` (what reading
loads, :mod:`digitrec.reading.engine`) and its card, written together, atomically.

The ``.tflite`` is Keras 3's LiteRT export of the network, checked against the Keras
model before anything is written: a file that reads otherwise than the model it came
from is never saved.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np

from digitrec import store
from digitrec.reading.engine import Network

AGREEMENT = 1e-4  # the exported network's outputs may differ from Keras's by this much


def to_tflite(model: keras.Model) -> bytes:
    """The model as a float32 LiteRT flatbuffer (a few seconds)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):  # "Saved artifact at ..."
            warnings.simplefilter("ignore")
            target = os.path.join(tmp, "model.tflite")
            model.export(target, format="litert")
            return Path(target).read_bytes()
    finally:
        absl.setLevel(level)


def probe_inputs(model: keras.Model, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Random inputs of the model's shapes, to compare two forms of it."""
    rng = np.random.default_rng(seed)
    return [rng.random((n, *tensor.shape[1:]), dtype=np.float32) for tensor in model.inputs]


def check_agreement(model: keras.Model, flatbuffer: bytes, inputs: list[np.ndarray]) -> float:
    """The largest difference between the Keras model and its export on ``inputs``;
    raises ValueError past AGREEMENT."""
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(flatbuffer)
        f.flush()
        network = Network(f.name)
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    expected = np.asarray(model(inputs if len(inputs) > 1 else inputs[0], training=False))
    got = network(**dict(zip(names, inputs))) if len(inputs) > 1 else network(inputs[0])
    worst = float(np.abs(got - expected).max())
    if not worst <= AGREEMENT:
        raise ValueError(f"the exported network differs from the Keras model by {worst:.2g}")
    return worst


def save_model(model: keras.Model, path: str | os.PathLike, card: dict,
               reading_model: keras.Model | None = None) -> Path:
    """Write ``path`` (.keras), its .tflite and its card at once. ``reading_model`` is the
    network to export where it must be built otherwise for LiteRT (the recognizer's
    GRUs, unrolled) with the same weights; by default ``model`` itself."""
    path = Path(path).with_suffix(".keras")
    exported = reading_model or model
    flatbuffer = to_tflite(exported)
    inputs = probe_inputs(exported)
    check_agreement(model, flatbuffer, inputs)
    card = {**card, "files": {"keras": path.name, "tflite": store.lite_path(path).name}}
    store.write_atomically(
        {path: None, store.lite_path(path): flatbuffer,
         store.card_path(path): (json.dumps(card, indent=2) + "\n").encode()},
        write=lambda tmp, final: model.save(tmp))
    return path


def export_file(path: str | os.PathLike) -> Path:
    """Write the ``.tflite`` beside an existing ``.keras`` model (one saved before models
    were exported when saved, say); the recognizer is exported unrolled, as when saved."""
    from digitrec.training import networks  # noqa: F401  (registers FusedBatchNorm for loading)

    path = Path(path)
    model = keras.models.load_model(path, compile=False, safe_mode=True)
    card = store.read_card(path)
    reading_model = model
    if card.get("format", "").startswith("digitrec-recognizer-card"):
        from digitrec.training.recognizer import unrolled

        reading_model = unrolled(model)
    flatbuffer = to_tflite(reading_model)
    check_agreement(model, flatbuffer, probe_inputs(reading_model))
    store.write_atomically({store.lite_path(path): flatbuffer})
    return store.lite_path(path)
