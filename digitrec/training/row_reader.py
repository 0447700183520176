"""Training the row reader: a CTC network that reads a whole row, the number reader's
third opinion.

:func:`digitrec.reading.numbers.read_number` cuts a row into candidate digits at
columns, reads each with the digit model and picks the best path through them. Where two
digits touch over a stroke's width (a 1 leaning on a 2) no column parts them, and the
path reads them as one digit or cuts one in two.

This network reads the row without cutting it. A few convolutions turn the row
(:func:`digitrec.reading.numbers.row_strip`, 32x256) into 64 columns of features, a
bidirectional GRU reads them left to right and right to left, and each column gets
P(digit 0-9 or none). Trained with CTC (connectionist temporal classification), it
learns where the digits are by itself, from rows rendered from MNIST *training* digits
and their labels only (:func:`digitrec.training.number_data.row_examples`): digits of
MNIST, ARDIS and USPS written as amounts are on forms and cheques, with separators, a
closing dash, slant, a baseline, a box's edge and a printed pattern (and a quarter of
them plainly, as on a page), each row found and stripped as reading finds and strips it.

The reader keeps the path's boxes: when this network reads the row otherwise than the
path, read_number finds the best path through the candidates that reads what the network
reads, and takes whichever of the two readings the two together prefer
(:func:`digitrec.reading.numbers._second_reading`).

    python -m digitrec train-row-reader --data DIR --out models/row_reader.keras

Like the verifier, it does not depend on the digit model.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digitrec import store
from digitrec.reading.numbers import BLANK, FRAMES, PROB_FLOOR, ROW_HEIGHT, ROW_WIDTH, greedy_text
from digitrec.training.export import save_model
from digitrec.training.recipes import RowReaderConfig
from digitrec.training.train import init_card, machine


def build(seed: int = 1, blocks: int = 0, rnn_layers: int = 1, unroll: bool = False) -> keras.Model:
    """Row strip in, (FRAMES, 11) probabilities out: four 3x3 convolutions with batch norm,
    pooled to 2 rows of 64 columns, then a bidirectional GRU. About 390,000 parameters.

    A larger reader has ``blocks`` residual blocks (two 3x3 convolutions) after the third
    convolution and ``rnn_layers`` - 1 more bidirectional GRUs, each added to what it reads.
    Their last layer starts at zero, so a larger reader started from a smaller one's
    weights (:func:`grow`) reads as the smaller one did until it trains.

    ``unroll=True`` builds the same network with its GRUs unrolled over the 64 columns:
    the form exported for reading, since LiteRT runs it with builtin operations (a
    looping GRU exports to TensorFlow "Flex" ops that plain LiteRT cannot run)."""
    keras.utils.set_random_seed(seed)
    strip = keras.Input((ROW_HEIGHT, ROW_WIDTH, 1), name="strip")
    h = strip
    for stage, (filters, pool) in enumerate(((32, (2, 2)), (64, (2, 2)), (96, (2, 1)), (128, (2, 1)))):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization(momentum=0.9)(h)
        h = keras.layers.Activation("relu")(h)
        h = keras.layers.MaxPooling2D(pool)(h)
        for b in range(blocks if stage == 2 else 0):
            r = h
            for i, gamma in enumerate(("ones", "zeros")):
                r = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{EXTRA}conv{b}_{i}")(r)
                r = keras.layers.BatchNormalization(momentum=0.9, gamma_initializer=gamma, name=f"{EXTRA}bn{b}_{i}")(r)
                if i == 0:
                    r = keras.layers.Activation("relu")(r)
            h = keras.layers.Activation("relu")(keras.layers.Add()([h, r]))
    h = keras.layers.Permute((2, 1, 3))(h)  # columns first: (FRAMES, 2, 128)
    h = keras.layers.Reshape((FRAMES, -1))(h)
    h = keras.layers.Bidirectional(keras.layers.GRU(96, return_sequences=True, unroll=unroll))(h)
    for i in range(rnn_layers - 1):
        r = keras.layers.Bidirectional(keras.layers.GRU(96, return_sequences=True, unroll=unroll),
                                       name=f"{EXTRA}gru{i}")(h)
        r = keras.layers.Dense(192, kernel_initializer="zeros", name=f"{EXTRA}gru{i}_out")(r)
        h = keras.layers.Add()([h, r])
    out = keras.layers.Dense(BLANK + 1, activation="softmax", name="columns")(h)
    return keras.Model(strip, out, name="row_reader")


EXTRA = "extra_"  # names of the layers a larger reader adds to the smallest one


def grow(model: keras.Model, init: str) -> None:
    """Give ``model`` the weights of the reader file ``init``: all of them where the two
    are built alike; else ``init`` must be a smaller reader (fewer blocks or GRUs), whose
    weights go to the layers they share, the added layers keeping their starting weights."""
    from digitrec.training.train import load_weights

    base = keras.models.load_model(init, compile=False, safe_mode=True)
    if len(base.weights) == len(model.weights):
        return load_weights(model, init, "a row reader", base)
    ours = [layer for layer in model.layers if layer.weights and not layer.name.startswith(EXTRA)]
    theirs = [layer for layer in base.layers if layer.weights and not layer.name.startswith(EXTRA)]
    shapes = lambda layers: [tuple(w.shape) for layer in layers for w in layer.weights]
    if shapes(ours) != shapes(theirs) or len(base.weights) > len(model.weights):
        raise ValueError(f"{init} is not a row reader this one can grow from")
    for a, b in zip(ours, theirs):
        a.set_weights(b.get_weights())


def ctc_loss(labels, probs):
    """CTC loss of (batch, MAX_DIGITS) labels padded with -1 under per-column probabilities."""
    labels = tf.cast(labels, tf.int32)
    lengths = tf.reduce_sum(tf.cast(labels >= 0, tf.int32), 1)
    frames = tf.fill([tf.shape(probs)[0]], tf.shape(probs)[1])
    # keras.ops.ctc_loss takes logits; the log of a softmax is its own log-softmax
    return keras.ops.ctc_loss(tf.maximum(labels, 0), tf.math.log(probs + PROB_FLOOR), lengths, frames,
                              mask_index=BLANK)


def train_row_reader(cfg: RowReaderConfig, verbose: int = 2) -> tuple[Path, dict]:
    """Render the rows; fit with CTC; save the model and its card beside it."""
    from digitrec.training.number_data import row_examples

    start = time.time()
    x28, labels = digit_pool(cfg.datasets, cfg.data)
    rows = row_examples(x28, labels, cfg.numbers, cfg.seed, cfg.workers, cfg.conditions)
    x = rows.x[..., None].astype(np.float32) / 255.0
    y = rows.labels
    held = min(cfg.held_out, len(y) // 10)
    steps = cfg.epochs * int(np.ceil((len(y) - held) / cfg.batch_size))
    warmup = max(1, steps // 10)
    model = build(cfg.seed, cfg.blocks, cfg.rnn_layers)
    if cfg.init:
        grow(model, cfg.init)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 20, max(1, steps - warmup), alpha=0.01, warmup_target=cfg.learning_rate,
        warmup_steps=warmup)), loss=ctc_loss, jit_compile=True)  # XLA: 1.7x faster a step on CPU
    fit_start = time.time()
    model.fit(x[held:], y[held:], batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=verbose,
              shuffle=True)
    fit_seconds = time.time() - fit_start
    report = {}
    if held:
        probs = model.predict(x[:held], batch_size=256, verbose=0)
        exact = np.mean([greedy_text(p) == [int(d) for d in t[t >= 0]] for p, t in zip(probs, y[:held])])
        report = {"rows": int(held), "read_exactly": round(float(exact), 4)}
    card = {
        "format": "digitrec-row-reader-card/1",
        "what": "per-column P(digit or blank) of a row strip, trained with CTC",
        "options": asdict(cfg),
        "input": [ROW_HEIGHT, ROW_WIDTH],
        "parameters": int(model.count_params()),
        "examples": {"numbers": rows.numbers, "rows": int(len(y)), "render_seconds": rows.seconds,
                     "source": f"training digits of {', '.join(cfg.datasets)}, written as amounts "
                               "(synth.render_amount) and plainly (synth.render_number)"},
        "held_out": report,
        **({"init": init_card(cfg.init, _lineage)} if cfg.init else {}),
        "train_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "machine": machine(),
    }
    path = save_model(model, cfg.out or store.ROW_READER, card,
                      reading_model=unrolled(model, cfg.blocks, cfg.rnn_layers))
    return path, card


def digit_pool(names, data=None) -> tuple[np.ndarray, np.ndarray]:
    """The training digits of the sets ``names``, in the MNIST box (:func:`mnist_box`),
    each set drawn from equally often (the smaller ones repeated): (x28, labels)."""
    from digitrec.training.datasets import load, parse_names
    from digitrec.training.number_data import mnist_box

    sets = [load(name, data) for name in parse_names(list(names))]
    most = max(len(s.y_train) for s in sets)
    xs, ys = [], []
    for s in sets:
        x = s.x_train if s.x_train.shape[1:] == (28, 28) and s.name == "mnist" else mnist_box(s.x_train)
        reps = int(np.ceil(most / len(x)))
        xs.append(np.concatenate([x] * reps)[:most])
        ys.append(np.concatenate([s.y_train] * reps)[:most])
    return np.concatenate(xs), np.concatenate(ys)


def unrolled(model: keras.Model, blocks: int = 0, rnn_layers: int = 1) -> keras.Model:
    """``model`` rebuilt with its GRUs unrolled (see :func:`build`), same weights."""
    out = build(blocks=blocks, rnn_layers=rnn_layers, unroll=True)
    out.set_weights(model.get_weights())
    return out


def _lineage(card: dict) -> dict:
    """What a reader's card tells of it when another run starts from it: its held-out
    figure, its rows, and the reader it started from in turn (and so on)."""
    return {"held_out": card.get("held_out"), "rows": card.get("examples", {}).get("rows"),
            **({"init": card["init"]} if "init" in card else {})}
