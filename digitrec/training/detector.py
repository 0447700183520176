"""Training the detector: the network that finds where numbers are written.

A small fully-convolutional network (an encoder down to 1/32 of the picture, so that a
cell sees a whole number and its surroundings, and a decoder back to 1/4 with the finer
levels added in) maps the picture (:func:`digitrec.reading.detect.prepare`, 256x256) to
one cell per 4x4 pixels: P(the cell lies in a number's core) and the distances from the
cell to the number's four edges (:func:`digitrec.reading.detect.targets`).

It learns from pages rendered from the training digits of MNIST, ARDIS and USPS (with a
real cheque amount laid on some), real amounts and register cells as they were cut,
register cells stacked into columns, large single numbers and blank paper
(:func:`digitrec.training.number_examples.pictures`); on some pages, cells and blanks,
words written with the letters of ``letters/``' training writers or set in a font lie
beside the numbers or alone, with no box: writing that is no number.

    python -m digitrec train-detector --data DIR [--out models/detector.keras]
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digitrec import store
from digitrec.reading.detect import CELLS, SIDE, boxes
from digitrec.training.export import save_model
from digitrec.training.recipes import DetectorConfig
from digitrec.training.train import init_card, load_weights, machine, warmup_cosine

DISTANCE_WEIGHT = 1.0  # the edge distances' L1 loss, beside the core's


def _conv(h, filters, stride=1, kernel=3, dilation=1):
    h = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", dilation_rate=dilation,
                            use_bias=False)(h)
    h = keras.layers.BatchNormalization(momentum=0.9)(h)
    return keras.layers.Activation("relu")(h)


def build(seed: int = 1) -> keras.Model:
    """(SIDE, SIDE, 1) ink in, (CELLS, CELLS, 5) out: the core's probability, then the four
    edge distances (log scale). About 110,000 parameters."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((SIDE, SIDE, 1), name="picture")
    h = _conv(x, 12, 2)  # 1/2
    h4 = _conv(_conv(h, 24, 2), 24)  # 1/4
    h8 = _conv(_conv(h4, 40, 2), 40)  # 1/8
    h16 = _conv(_conv(h8, 56, 2), 56, dilation=2)  # 1/16
    h32 = _conv(_conv(h16, 72, 2), 72, dilation=2)  # 1/32
    u = h32
    for skip, filters in ((h16, 48), (h8, 40), (h4, 32)):
        u = keras.layers.UpSampling2D(2, interpolation="bilinear")(u)
        u = keras.layers.Concatenate()([u, skip])
        u = _conv(u, filters, kernel=1)
        u = _conv(u, filters)
    core = keras.layers.Conv2D(1, 1, activation="sigmoid", name="core")(u)
    distances = keras.layers.Conv2D(4, 1, name="edges")(u)
    out = keras.layers.Concatenate(name="map")([core, distances])
    return keras.Model(x, out, name="detector")


def detector_loss(y, out):
    """Binary cross-entropy and Dice on the core (most cells hold none), and the L1 error
    of the edge distances on the cells of a core."""
    y = tf.cast(y, tf.float32)
    core, p = y[..., 0], tf.clip_by_value(out[..., 0], 1e-6, 1 - 1e-6)
    bce = -tf.reduce_mean(core * tf.math.log(p) + (1 - core) * tf.math.log(1 - p), axis=[1, 2])
    inter = tf.reduce_sum(core * p, axis=[1, 2])
    dice = 1 - (2 * inter + 1) / (tf.reduce_sum(core, axis=[1, 2]) + tf.reduce_sum(p, axis=[1, 2]) + 1)
    l1 = tf.reduce_sum(tf.abs(y[..., 1:] - out[..., 1:]), -1) * core
    dist = tf.reduce_sum(l1, axis=[1, 2]) / (tf.reduce_sum(core, axis=[1, 2]) + 1)
    return bce * 10 + dice + DISTANCE_WEIGHT * dist


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / max(1, aw * ah + bw * bh - w * h)


def found_as_one(model, numbers) -> dict:
    """How often the detector finds each picture's number as one box (IoU >= 0.5 with
    its labelled box) and nothing else."""
    from digitrec.reading.decode import load_image
    from digitrec.reading.detect import prepare
    from digitrec.reading.ink import gray

    numbers = [n for n in numbers if n.box]
    images = [load_image(n.path) for n in numbers]
    prepared = [prepare(gray(im)) for im in images]
    outs = model.predict(np.stack([p[0] for p in prepared])[..., None], batch_size=64, verbose=0)
    good = 0
    for n, im, (_, scale), out in zip(numbers, images, prepared, outs):
        found = boxes(out, scale, im.shape[:2])
        good += len(found) == 1 and iou(found[0].box, n.box) >= 0.5
    return {"pictures": len(numbers), "found": round(good / max(1, len(numbers)), 4)}


def train_detector(cfg: DetectorConfig, verbose: int = 2) -> tuple[Path, dict]:
    """Make the pictures; fit; save the model and its card beside it."""
    from digitrec.training import real_numbers
    from digitrec.training.number_examples import pictures

    start = time.time()
    orand_train, orand_held = real_numbers.split("orand-train", cfg.data, limit=cfg.limit)
    danish_train, danish_held = real_numbers.split("danish-rows", cfg.data, limit=cfg.limit)
    ex = pictures(cfg.pages, orand_train, danish_train, cfg.seed, cfg.data, cfg.workers)
    x = ex.x[..., None]
    y = ex.y
    steps = cfg.epochs * int(np.ceil(len(y) / cfg.batch_size))
    model = build(cfg.seed)
    if cfg.init:
        load_weights(model, cfg.init, "a detector")
    model.compile(keras.optimizers.Adam(warmup_cosine(cfg.learning_rate, steps)), loss=detector_loss,
                  jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=cfg.seed).batch(cfg.batch_size).map(
        lambda a, b: (tf.cast(a, tf.float32) / 255.0, tf.cast(b, tf.float32))).prefetch(2)
    fit_start = time.time()
    model.fit(data, epochs=cfg.epochs, verbose=verbose)
    fit_seconds = time.time() - fit_start
    held = {"orand-train": found_as_one(model, orand_held), "danish-rows": found_as_one(model, danish_held)}
    card = {
        "format": "digitrec-detector-card/1",
        "what": "per 4x4 cell: P(in a number's core) and the distances to its edges",
        "options": asdict(cfg),
        "input": [SIDE, SIDE],
        "output": [CELLS, CELLS, 5],
        "parameters": int(model.count_params()),
        "examples": {"pictures": int(len(y)), "by_kind": {k: int(v) for k, v in
                                                          zip(*np.unique(ex.kinds, return_counts=True))},
                     "seconds": ex.seconds},
        "held_out": held,
        **({"init": init_card(cfg.init, lambda c: {"held_out": c.get("held_out")})} if cfg.init else {}),
        "train_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "machine": machine(),
    }
    path = save_model(model, cfg.out or store.DETECTOR, card)
    return path, card


__all__ = ["build", "detector_loss", "train_detector", "found_as_one", "iou"]
