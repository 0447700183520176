"""Training the recognizer: the network that reads one number's box, whatever its width.

A CNN turns the strip (:func:`digitrec.reading.recognize.strip`, 32x256) into 64 columns
of features, two bidirectional GRUs read them both ways, and each column gets P(a digit,
a mark ``. , - /``, or none). Trained with CTC (connectionist temporal classification) it
learns where the characters are from the labels alone.

The CNN is either the digit model's own convolutions slid along the strip (``--backbone
digits``: each column sees a 28x28 window, and starts knowing digits as the digit model
learnt them from some 80,000 by many hands) or four stages learnt from random
(``--backbone strip``).

It learns from real numbers (the training parts of orand-train and danish-rows, each box
cut several times with its edges moved) and from numbers rendered from the training
digits of MNIST, ARDIS and USPS (:mod:`digitrec.training.number_examples`).

Networks trained apart (another backbone, another seed) err apart. Several of them can be
joined into one recognizer file (:func:`join`): it gives every network's columns, and
reading takes the candidate they find likeliest together
(:func:`digitrec.reading.recognize.best_reading`).

    python -m digitrec train-recognizer --data DIR [--out models/recognizer.keras]
    python -m digitrec join-recognizers A.keras B.keras --data DIR [--out models/recognizer.keras]
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digitrec import store
from digitrec.reading.recognize import ALPHABET, BLANK, FRAMES, HEIGHT, PROB_FLOOR, WIDTH, best_reading
from digitrec.training import networks
from digitrec.training.export import save_model
from digitrec.training.recipes import RECOGNIZER_BACKBONES, RecognizerConfig
from digitrec.training.train import init_card, load_weights, machine, warmup_cosine

DIGIT_ROWS = 28  # the digit model's input: the strip is read 28 rows tall by that backbone
DIGIT_PAD = 12  # columns of zeros on either side, so that its 64 columns centre on the strip's 4-pixel frames
DIGIT_DROPOUT = 0.1  # the digit model's 0.4 kept a CTC training from fitting (training loss 1.6, the strip's 0.45)
FROZEN = 6  # layers of the digit backbone kept as learnt: its first block (three convolutions, their norms)


def _strip_stages(h, convs: int):
    """Four 3x3 convolution stages with batch norm, pooled to 2 rows of 64 columns."""
    for stage, (filters, pool) in enumerate(((32, (2, 2)), (64, (2, 2)), (96, (2, 1)), (128, (2, 1)))):
        for _ in range(convs if stage >= 2 else 1):
            h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
            h = keras.layers.BatchNormalization(momentum=0.9)(h)
            h = keras.layers.Activation("relu")(h)
        h = keras.layers.MaxPooling2D(pool)(h)
    return h


def _digit_stages(h):
    """The digit model's convolutions (:func:`networks.build_best` up to its 128 features),
    slid along the strip: the strip resized to 28 rows, so that each of the 64 columns out
    sees a 28x28 window, as the digit model sees one digit."""
    h = keras.layers.Resizing(DIGIT_ROWS, WIDTH, interpolation="bilinear")(h)
    h = keras.layers.ZeroPadding2D(((0, 0), (DIGIT_PAD, DIGIT_PAD)))(h)
    return networks.digit_features(h, dropout=DIGIT_DROPOUT)


def build(seed: int = 1, unroll: bool = False, convs: int = 1, backbone: str = "strip",
          name: str = "recognizer") -> keras.Model:
    """Strip in, (FRAMES, len(ALPHABET) + 1) probabilities out: a CNN makes 64 columns of
    features, two bidirectional GRUs read them both ways.

    ``backbone="strip"``: four 3x3 stages learnt from random, ``convs`` convolutions in
    each of the last two (where the strip is 8 and 4 rows high, so a second one costs
    least). ``backbone="digits"``: the digit model's convolutions (:func:`_digit_stages`),
    to be started from a trained digit model (:func:`start_from_digits`).

    ``unroll=True`` builds the same network with its GRUs unrolled over the columns: the
    form exported for reading (a looping GRU exports to TensorFlow "Flex" operations
    that plain LiteRT cannot run)."""
    if backbone not in RECOGNIZER_BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(RECOGNIZER_BACKBONES)}")
    keras.utils.set_random_seed(seed)
    x = keras.Input((HEIGHT, WIDTH, 1), name="strip")
    h = _digit_stages(x) if backbone == "digits" else _strip_stages(x, convs)
    h = keras.layers.Permute((2, 1, 3))(h)  # columns first: (FRAMES, rows, channels)
    h = keras.layers.Reshape((FRAMES, -1))(h)
    h = keras.layers.Dropout(0.1)(h)
    for _ in range(2):
        h = keras.layers.Bidirectional(keras.layers.GRU(96, return_sequences=True, unroll=unroll))(h)
    out = keras.layers.Dense(BLANK + 1, activation="softmax", name="columns")(h)
    return keras.Model(x, out, name=name)


def members_of(model: keras.Model) -> list[keras.Model]:
    """The networks joined in ``model`` (:func:`ensemble`); none for one network."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def ensemble(members: list[keras.Model], unroll: bool = False) -> keras.Model:
    """One model of several recognizers: strip in, (K, FRAMES, len(ALPHABET) + 1) out, the
    K networks' columns stacked (each rebuilt under its own name, same weights)."""
    x = keras.Input((HEIGHT, WIDTH, 1), name="strip")
    columns = []
    for i, member in enumerate(members):
        copy = build(unroll=unroll, name=f"member_{i}", **shape_of(member))
        copy.set_weights(member.get_weights())
        columns.append(keras.layers.Reshape((1, FRAMES, BLANK + 1))(copy(x)))
    return keras.Model(x, keras.layers.Concatenate(axis=1, name="members")(columns), name="recognizers")


def start_from_digits(model: keras.Model, digit_model: str) -> None:
    """Give a ``backbone="digits"`` recognizer the convolutions of the digit model at
    ``digit_model`` (a ``.keras`` of the ``best`` preset)."""
    base = keras.models.load_model(digit_model, compile=False, safe_mode=True)
    source = [layer for layer in base.layers if layer.weights and not isinstance(layer, keras.layers.Dense)]
    target = [layer for layer in model.layers if layer.weights][: len(source)]
    try:
        for a, b in zip(source, target, strict=True):
            b.set_weights(a.get_weights())
    except ValueError as exc:
        raise ValueError(f"{digit_model} is no digit model of the best preset: {exc}") from None


def keep_first_block(model: keras.Model) -> None:
    """Train a ``backbone="digits"`` recognizer with its first block as the digit model
    learnt it: it sees strokes, which are the same in a number, and training it would
    double the time of a step."""
    for layer in [layer for layer in model.layers if layer.weights][:FROZEN]:
        layer.trainable = False


def unrolled(model: keras.Model) -> keras.Model:
    """``model`` rebuilt with its GRUs unrolled (see :func:`build`), same weights."""
    if members_of(model):
        return ensemble(members_of(model), unroll=True)
    out = build(unroll=True, **shape_of(model))
    out.set_weights(model.get_weights())
    return out


def shape_of(model: keras.Model) -> dict:
    """The ``backbone`` and ``convs`` that :func:`build` was given for ``model`` (one network)."""
    if members_of(model):
        raise ValueError(f"{model.name} joins {len(members_of(model))} recognizers: take the shape of each")
    if any(isinstance(layer, keras.layers.Resizing) for layer in model.layers):
        return {"backbone": "digits"}
    return {"backbone": "strip",
            "convs": (sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) - 2) // 2}


def _ctc(labels, log_probs, blank):
    lengths = tf.reduce_sum(tf.cast(labels >= 0, tf.int32), 1)
    frames = tf.fill([tf.shape(log_probs)[0]], tf.shape(log_probs)[1])
    return keras.ops.ctc_loss(tf.maximum(labels, 0), log_probs, lengths, frames, mask_index=blank)


def ctc_loss(y, probs):
    """CTC loss of labels ``y`` (:class:`number_examples.Strips`: characters padded with
    -1, then 1 for a label of digits only) under per-column probabilities.

    A label of digits only (a real amount labelled ``18014`` for ``18.014``) says nothing
    about marks: for it, a column's probability of a mark counts as blank."""
    y = tf.cast(y, tf.int32)
    labels, digits_only = y[:, :-1], tf.cast(y[:, -1], tf.bool)
    full = _ctc(labels, tf.math.log(probs + PROB_FLOOR), BLANK)
    merged = tf.concat([probs[..., :10], tf.reduce_sum(probs[..., 10:], -1, keepdims=True)], -1)
    digits = _ctc(labels, tf.math.log(merged + PROB_FLOOR), 10)
    return tf.where(digits_only, digits, full)


def digits_of(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def read_strips(model, x: np.ndarray, batch_size: int = 256) -> list[str]:
    """The text the model (one network, or several joined) reads in each strip (uint8 ink x 255)."""
    probs = model.predict(x[..., None].astype(np.float32) / 255.0, batch_size=batch_size, verbose=0)
    return ["".join(c.char for c in best_reading(p)) for p in probs]


def held_out_strips(numbers, seed: int = 0, workers=None):
    """The held-out numbers' strips, their boxes as given (no jitter), with their texts."""
    from digitrec.training.number_examples import real_strips

    x, _ = real_strips(numbers, 1, seed, workers, jitter=0.0)
    return np.stack(x), [n.text for n in numbers if n.box]


HELD_OUT_NOTE = ("boxes as labelled (orand-train: the digits' boxes; danish-rows: labels/danish_boxes.csv), "
                 "not as detected")


def held_out_report(model, held: dict, workers=None) -> dict:
    """Each held-out part's numbers read exactly by ``model`` in their labelled boxes."""
    report = {}
    for name, numbers in held.items():
        hx, texts = held_out_strips(numbers, workers=workers)
        read = read_strips(model, hx)
        report[name] = {"numbers": len(texts),
                        "read_exactly": round(float(np.mean([digits_of(r) == t for r, t in zip(read, texts)])), 4)}
    return report


def join(paths: list[str], out: str | None = None, data=None, workers=None,
         limit: int | None = None, command: str | None = None) -> tuple[Path, dict]:
    """Join the recognizers at ``paths`` (trained apart) into one file that reads with
    all of them; its card holds theirs and its own held-out figures."""
    from digitrec.reading.engine import ModelError
    from digitrec.training import real_numbers

    if len(paths) < 2:
        raise ModelError("join needs two recognizers or more")
    start = time.time()
    members = []
    for path in paths:
        if not Path(path).is_file():
            raise ModelError(f"{path}: no such file")
        if not store.read_card(path).get("format", "").startswith("digitrec-recognizer-card"):
            raise ModelError(f"{path} is not a recognizer: the card beside it is missing or no recognizer's")
        member = keras.models.load_model(path, compile=False, safe_mode=True)
        if members_of(member):
            raise ModelError(f"{path} holds joined recognizers already: join the files they were joined from")
        members.append(member)
    cards = [init_card(p, lambda c: {"options": c.get("options"), "held_out": c.get("held_out"),
                                     "init": c.get("init"), "total_seconds": c.get("total_seconds")}) for p in paths]
    if len({c["sha256"] for c in cards}) < len(cards):
        raise ModelError("the same recognizer is given twice: join networks trained apart")
    held = {name: real_numbers.split(name, data, limit=limit)[1] for name in ("orand-train", "danish-rows")}
    model = ensemble(members)
    card = {
        "format": "digitrec-recognizer-card/1",
        "what": "per-column P(character or blank) of a number's strip from each of several recognizers "
                "trained apart; reading takes the candidate they find likeliest together",
        "command": command,
        "alphabet": ALPHABET,
        "input": [HEIGHT, WIDTH],
        "parameters": int(model.count_params()),
        "members": cards,
        "held_out": held_out_report(model, held, workers),
        "held_out_note": HELD_OUT_NOTE,
        "total_seconds": round(time.time() - start, 1),
        "machine": machine(),
    }
    path = save_model(model, out or store.RECOGNIZER, card, reading_model=unrolled(model))
    return path, card


def train_recognizer(cfg: RecognizerConfig, verbose: int = 2) -> tuple[Path, dict]:
    """Cut and render the examples; fit with CTC; save the model and its card beside it."""
    from digitrec.training import real_numbers
    from digitrec.training.number_examples import strips

    start = time.time()
    init = None
    if cfg.init:  # checked before the examples are made (minutes)
        from digitrec.reading.engine import ModelError

        if not Path(cfg.init).is_file():
            raise ModelError(f"--init {cfg.init}: no such file")
        init = keras.models.load_model(cfg.init, compile=False, safe_mode=True)
        if members_of(init):
            raise ModelError(f"--init {cfg.init} holds joined recognizers: fine-tune one of the files it was "
                             "joined from (its card names them), then join again")
        wanted = {"backbone": "digits"} if cfg.backbone == "digits" else {"backbone": "strip", "convs": cfg.convs}
        if shape_of(init) != wanted:
            raise ModelError(f"--init {cfg.init} is a recognizer of another shape ({shape_of(init)}); "
                             "give --backbone and --convs as it was trained")
    orand_train, orand_held = real_numbers.split("orand-train", cfg.data, limit=cfg.limit)
    danish_train, danish_held = real_numbers.split("danish-rows", cfg.data, limit=cfg.limit)
    ex = strips({"orand-train": (orand_train, cfg.orand_copies), "danish-rows": (danish_train, cfg.danish_copies)},
                cfg.rendered, cfg.seed, cfg.data, cfg.workers)
    x = ex.x[..., None].astype(np.float32) / 255.0
    y = ex.labels
    steps = cfg.epochs * int(np.ceil(len(y) / cfg.batch_size))
    model = build(cfg.seed, convs=cfg.convs, backbone=cfg.backbone)
    digit_model = None
    if init is not None:
        load_weights(model, cfg.init, "a recognizer of the same shape", base=init)
    elif cfg.backbone == "digits":
        digit_model = cfg.digit_model or str(store.DIGIT_MODEL)
        start_from_digits(model, digit_model)
    if cfg.backbone == "digits":
        keep_first_block(model)
    # XLA's convolutions on this CPU are slower than TensorFlow's own (4x for the digit backbone)
    model.compile(keras.optimizers.Adam(warmup_cosine(cfg.learning_rate, steps), clipnorm=5.0), loss=ctc_loss,
                  jit_compile=False)
    fit_start = time.time()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=verbose, shuffle=True)
    fit_seconds = time.time() - fit_start
    held = held_out_report(model, {"orand-train": orand_held, "danish-rows": danish_held}, cfg.workers)
    card = {
        "format": "digitrec-recognizer-card/1",
        "what": "per-column P(character or blank) of a number's strip, trained with CTC",
        "alphabet": ALPHABET,
        "options": asdict(cfg),
        "input": [HEIGHT, WIDTH],
        "parameters": int(model.count_params()),
        "examples": {"strips": int(len(y)), "by_source": {k: int(v) for k, v in
                                                           zip(*np.unique(ex.source, return_counts=True))},
                     "seconds": ex.seconds,
                     "numbers": {"orand-train": len([n for n in orand_train if n.box]),
                                 "danish-rows": len([n for n in danish_train if n.box])}},
        "held_out": held,
        "held_out_note": HELD_OUT_NOTE,
        **({"init": init_card(cfg.init, lambda c: {"held_out": c.get("held_out")})} if cfg.init else {}),
        **({"digit_model": init_card(digit_model)} if digit_model else {}),
        "train_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "machine": machine(),
    }
    path = save_model(model, cfg.out or store.RECOGNIZER, card, reading_model=unrolled(model))
    return path, card


__all__ = ["build", "unrolled", "shape_of", "start_from_digits", "keep_first_block", "ensemble", "members_of", "join",
           "ctc_loss", "train_recognizer",
           "read_strips"]
