"""Training: a tf.data pipeline, augmentation on the graph, a one-cycle schedule, one
plain training loop that reports progress and stops when asked, and an atomic save
with the model card.

One readable function, :func:`train`, with every knob in :class:`TrainConfig`. The CLI,
the Train page and the tests all call it.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digitrec import store
from digitrec.training import datasets as data_mod
from digitrec.training.evaluate import scores
from digitrec.training.export import save_model
from digitrec.training.networks import NUM_CLASSES, PRESETS, build_model, cpu_has_bfloat16, describe
from digitrec.training.recipes import MIN_SHARE, Progress, TrainConfig, TrainResult

# --- Augmentation -----------------------------------------------------------------------
# Users' digits are rotated, slanted, scaled, shifted, thicker or thinner, blurrier, more
# jagged and coarser than MNIST's; showing the network such variants is the cheapest way
# to make it robust to them. Everything runs on whole batches inside the tf.data graph.
# (Digits stretched to fill a small box are made beforehand: datasets.small_crops.)

def make_augmenter(seed: int) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.layers.RandomRotation(12 / 360, fill_mode="constant", seed=seed),
            keras.layers.RandomShear(x_factor=0.25, y_factor=0.0, fill_mode="constant", seed=seed + 3),
            keras.layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=seed + 1),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )


COARSE_SIDES = (12, 14, 16)  # a coarse digit is shrunk to one of these and enlarged again


def coarsen(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Per image: keep it (most), bring it to 12-16 px and back (a small picture enlarged),
    cut it at mid-grey (a binary bitmap: jagged edges), or both."""
    n = tf.shape(images)[0]
    choice = tf.random.stateless_uniform([n, 1, 1, 1], seed=[seed, 11])
    side = tf.gather(tf.constant(COARSE_SIDES), tf.random.stateless_uniform(
        [], seed=[seed, 13], maxval=len(COARSE_SIDES), dtype=tf.int32))
    small = tf.image.resize(images, tf.stack([side, side]), method="area")
    coarse = tf.clip_by_value(tf.image.resize(small, [28, 28], method="bilinear"), 0.0, 1.0)
    binary = tf.cast(images > 0.5, images.dtype)
    coarse_binary = tf.image.resize(tf.cast(small > 0.5, images.dtype), [28, 28], method="bilinear")
    out = tf.where(choice < 0.08, coarse, images)
    out = tf.where((choice >= 0.08) & (choice < 0.16), binary, out)
    return tf.where((choice >= 0.16) & (choice < 0.22), coarse_binary, out)


def vary_strokes(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Per image: thicken (grey dilation), blur, thin (grey erosion) or keep the strokes."""
    n = tf.shape(images)[0]
    choice = tf.random.stateless_uniform([n, 1, 1, 1], seed=[seed, 7])
    thick = tf.nn.max_pool2d(images, 2, 1, "SAME")
    thin = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    kernel = tf.constant([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])[:, :, None, None] / 16.0
    blurred = tf.nn.conv2d(images, kernel, 1, "SAME")
    out = tf.where(choice < 0.15, thick, images)
    out = tf.where((choice >= 0.15) & (choice < 0.3), blurred, out)
    return tf.where(choice > 0.9, tf.maximum(thin, 0.5 * images), out)


def make_dataset(x, y, batch_size, *, shuffle=False, augment=False, seed=1, repeat=False,
                 plain=None, order=None):
    """uint8 images (N, 28, 28) -> batches of float32 (B, 28, 28, 1) in [0, 1], one-hot labels.

    The images stay one uint8 tensor; the pipeline shuffles *indices* (cheap scalars),
    batches them and gathers whole batches, so there is no per-image work in Python or
    in tf.data, and scaling (and augmentation) run on whole batches. ``plain`` (N bools)
    marks images that augmentation leaves alone (pipeline-made ones: already as the
    model will see them, centred and scaled by ``to_mnist``). ``order`` (indices into x)
    is the sequence to visit, in place of each image once per epoch (:func:`epoch_order`).
    """
    images = tf.constant(np.asarray(x, np.uint8))
    labels = tf.constant(np.eye(NUM_CLASSES, dtype="float32")[np.asarray(y)])
    keep = tf.constant(np.zeros(len(x), bool) if plain is None else np.asarray(plain, bool))
    if order is not None:
        ds = tf.data.Dataset.from_tensor_slices(np.asarray(order, np.int64))
    else:
        ds = tf.data.Dataset.range(len(x))
    if shuffle and order is None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    ds = ds.map(lambda i: (tf.cast(tf.gather(images, i), tf.float32)[..., None] / 255.0,
                           tf.gather(labels, i), tf.gather(keep, i)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        augmenter = make_augmenter(seed)
        counter = tf.Variable(0, dtype=tf.int32, trainable=False)

        def _aug(a, b, k):
            step = seed + counter.assign_add(1)
            varied = coarsen(vary_strokes(augmenter(a, training=True), step), step)
            return tf.where(k[:, None, None, None], a, varied), b, k

        ds = ds.map(_aug, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda a, b, k: (a, b))
    return ds.prefetch(tf.data.AUTOTUNE)


def inference(model: keras.Model):
    """``model``'s forward pass for uint8 images (N, 28, 28), traced once for any N."""
    return tf.function(lambda a: model(tf.cast(a, tf.float32)[..., None] / 255.0, training=False),
                       input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8)])


def predict_batches(model: keras.Model, x: np.ndarray, batch_size: int = 1000, forward=None) -> np.ndarray:
    """Probabilities for uint8 images (N, 28, 28) through one traced function (``forward``,
    from :func:`inference`, where the caller has one), without ``model.predict``'s
    per-call machinery."""
    forward = forward or inference(model)
    return np.concatenate([forward(x[i: i + batch_size]).numpy()
                           for i in range(0, len(x), batch_size)])


def training_precision(preset: str) -> str | None:
    """The Keras dtype policy to train ``preset`` with here, or None for float32."""
    wanted = PRESETS[preset].precision
    if wanted == "mixed_bfloat16" and cpu_has_bfloat16() and not tf.config.list_physical_devices("GPU"):
        return wanted
    return None


# --- Pipeline-made digits and fine-tuning ----------------------------------------------
# The model reads what preprocess.normalize makes of users' pictures (grainy chalk,
# thinned pencil, redrawn pen strokes, remnants of ruled lines), not clean MNIST digits;
# training digits rendered as such pictures and read back through the pipeline show it
# that input while it learns. Rendering them costs minutes, so a run can start from a
# trained model (``init``) and fine-tune instead of training from scratch.

def add_pipeline_digits(x, y, fraction: float, seed: int):
    """(x, y) plus ``fraction`` x len(x) pipeline-made digits rendered from x itself.

    Returns (x, y, plain, info): ``plain`` marks the pipeline-made images (augmentation
    leaves them as the pipeline made them), ``info`` (None without any) is for the card."""
    n = int(round(fraction * len(x)))
    if n <= 0:
        return x, y, np.zeros(len(x), bool), None
    from digitrec.training.number_data import pipeline_digits
    from digitrec.training.synth import CONDITIONS, SIZES

    made = pipeline_digits(x, y, n, seed)
    plain = np.concatenate([np.zeros(len(x), bool), np.ones(len(made.x), bool)])
    info = {"images": int(len(made.x)), "dropped_no_digit": made.dropped, "seconds": made.seconds,
            "from": "training digits", "conditions": list(CONDITIONS), "sizes": list(SIZES),
            "augmented": False}
    return np.concatenate([x, made.x]), np.concatenate([y, made.y]), plain, info


# --- Your digits --------------------------------------------------------------------------
# The corrections people saved (digitrec.server.samples) join the training as a group of
# their own, so that a few dozen of them make a fixed share of every epoch beside 60,000
# MNIST digits; a fifth of each digit's samples is held out to score the new model on them.

def add_samples(x, y, plain, groups, database: str | None):
    """The training samples of ``database`` appended (augmented like the data sets' digits),
    and (held-out x, held-out y, info for the card); (None, None, None) without one."""
    if not database:
        return x, y, plain, groups, (None, None, None)
    from digitrec.server.samples import SampleStore

    sx, sy, held = SampleStore(database).training_set()
    if not (~held).any():
        raise ValueError("no samples to train with: correct a few readings on the Draw or Upload page first")
    keep = ~held
    info = {"database": str(database), "train": int(keep.sum()), "held_out": int(held.sum())}
    return (np.concatenate([x, sx[keep]]), np.concatenate([y, sy[keep]]),
            np.concatenate([plain, np.zeros(int(keep.sum()), bool)]),
            np.concatenate([groups, np.full(int(keep.sum()), "samples")]), (sx[held], sy[held], info))


# --- Several populations ---------------------------------------------------------------
# MNIST's 60,000 digits would drown ARDIS's 6,600 and USPS's 7,291 if every image were
# drawn once an epoch. Each group of images (a data set, or digits made for the run) makes
# a fixed share of every epoch instead, drawn from fresh permutations of its members.

def epoch_shares(sizes: dict, floor: float = MIN_SHARE, floored=None) -> dict:
    """The share of each epoch per group (``sizes``: group -> images): in proportion to
    its size, but at least ``floor`` for each group in ``floored`` (default: all); the
    bigger groups give way."""
    sizes = {g: n for g, n in sizes.items() if n > 0}
    floored = set(sizes if floored is None else floored)
    floor = min(floor, 1 / max(1, len(floored)))
    fixed: dict = {}
    while True:
        free = {g: n for g, n in sizes.items() if g not in fixed}
        rest = 1 - sum(fixed.values())
        share = {g: rest * n / sum(free.values()) for g, n in free.items()}
        low = {g for g, v in share.items() if v < floor and g in floored}
        if not low or len(low) == len(free):
            return {g: fixed.get(g, share.get(g)) for g in sizes}
        fixed.update({g: floor for g in low})


def epoch_order(groups: np.ndarray, shares: dict, epochs: int, seed: int) -> np.ndarray:
    """Indices into the images (``groups``: each image's group) for ``epochs`` epochs of
    len(groups) draws: group g makes shares[g] of each, its members drawn in turn from
    fresh permutations (so evenly: a small group repeats, a big one spreads over epochs),
    each epoch shuffled."""
    rng = np.random.default_rng(seed)
    groups = np.asarray(groups)
    exact = {g: share * len(groups) for g, share in shares.items()}
    per = {g: int(v) for g, v in exact.items()}
    for g in sorted(exact, key=lambda g: per[g] - exact[g])[: len(groups) - sum(per.values())]:
        per[g] += 1  # the largest remainders: the epoch is len(groups) draws exactly
    streams = {}
    for g, k in per.items():
        members = np.flatnonzero(groups == g)
        laps = -(-k * epochs // len(members))
        streams[g] = np.concatenate([rng.permutation(members) for _ in range(laps)])[: k * epochs]
    return np.concatenate([rng.permutation(np.concatenate([streams[g][e * k: (e + 1) * k]
                                                           for g, k in per.items()]))
                           for e in range(epochs)])


def load_sets(names, data, given=None) -> dict:
    """The data sets ``names`` (verified), ``given`` (name -> Dataset) where a caller has
    loaded them already."""
    given = given or {}
    return {n: given.get(n) or data_mod.load(n, data) for n in data_mod.parse_names(names)}


def test_scores(model: keras.Model, sets: dict) -> dict:
    """The model's scores on the test digits of each set it was trained on, as
    ``python -m digitrec evaluate --dataset NAME`` reports them (no confusion matrix)."""
    traced = inference(model)  # one trace for every set
    forward = lambda x: predict_batches(model, np.round(x * 255).astype(np.uint8), forward=traced)  # noqa: E731
    return {name: {k: v for k, v in data_mod.scored(dataset, forward).items() if k != "confusion"}
            for name, dataset in sets.items()}


def add_small_crops(raw: list, x, y, plain, groups, fraction: float, seed: int):
    """(x, y, plain, groups) plus ``fraction`` x len(x) :func:`datasets.small_crops` of the
    training digits ``raw`` (as stored, labels ``y`` of the first len(raw) images), read
    back through normalize (left alone by augmentation). Returns them and info (None
    without any)."""
    n = int(round(fraction * len(raw)))
    if n <= 0:
        return x, y, plain, groups, None
    start = time.time()
    index, made, found = data_mod.small_crops(raw, n, seed)
    info = {"images": int(found.sum()), "dropped_no_digit": int((~found).sum()),
            "seconds": round(time.time() - start, 1), "from": "training digits, as stored",
            "augmented": False}
    return (np.concatenate([x, made[found]]), np.concatenate([y, y[index][found]]),
            np.concatenate([plain, np.ones(int(found.sum()), bool)]),
            np.concatenate([groups, np.full(int(found.sum()), "small crops")]), info)


# --- Not a digit ---------------------------------------------------------------------------
# Letters and scribbles are the eleventh class, so that a model that has seen only digits
# does not give an A a 4 at 95%. They are few beside the digits and keep their natural share
# of every epoch; augmentation varies them like the digits.

def add_nondigits(x, y, plain, groups, count: int, data, seed: int, letter_copies: int = 1):
    """(x, y, plain, groups) plus the "not a digit" images (:func:`nondigits.training_set`)
    and info for the card (None when ``count`` is 0)."""
    if count <= 0:
        return x, y, plain, groups, None
    from digitrec.training import nondigits

    start = time.time()
    digits = x[groups == "mnist"] if (groups == "mnist").any() else x
    made, info = nondigits.training_set(data, digits, count, seed, letter_copies)
    info["seconds"] = round(time.time() - start, 1)
    return (np.concatenate([x, made]), np.concatenate([y, np.full(len(made), nondigits.NOT_A_DIGIT, y.dtype)]),
            np.concatenate([plain, np.zeros(len(made), bool)]),
            np.concatenate([groups, np.full(len(made), "not a digit")]), info)


# --- Calibration --------------------------------------------------------------------------
# One temperature, fitted on the digits of writers the model never saw (half of CVL's
# validation writers, by a hash of their name), makes confidence mean what it says; the
# other half and every test set measure it (digitrec.reading.calibration).

def calibrate(model: keras.Model, sets: dict, data) -> dict | None:
    """The temperature and its reliability figures for the card; None without CVL."""
    if "cvl" not in sets:
        return None
    import hashlib

    from digitrec.reading.calibration import tempered
    from digitrec.training.evaluate import fit_temperature, reliability

    test = data_mod.prepared(sets["cvl"], "test")
    writers = data_mod.cvl_writers(data, "valid")
    fit = np.array([int(hashlib.sha256(w.encode()).hexdigest(), 16) % 2 == 0 for w in writers])
    probs = predict_batches(model, test.x)
    temperature = fit_temperature(probs[fit & test.found], test.y[fit & test.found])
    report = {}
    held = {"cvl (other half)": (probs[~fit & test.found], test.y[~fit & test.found])}
    for name, dataset in sets.items():
        if name != "cvl":
            part = data_mod.prepared(dataset, "test")
            held[name] = (predict_batches(model, part.x[part.found]), part.y[part.found])
    for name, (p, y) in held.items():
        report[name] = {"before": reliability(p, y), "after": reliability(tempered(p, temperature), y)}
    return {"temperature": temperature, "fitted_on": f"CVL validation writers, even hash ({int(fit.sum())} digits)",
            "measured": report}


def initial_model(preset: str, init: str | None, dtype=None) -> keras.Model:
    """A fresh model for ``preset``, holding the weights of the model file ``init`` if given."""
    model = build_model(preset, dtype=dtype, for_training=True)
    if init:
        load_weights(model, init, f"a {preset!r} model")
    return model


def load_weights(model: keras.Model, init: str, what: str, base: keras.Model | None = None) -> None:
    """Give ``model`` the weights of the model file ``init`` (``base``, where the caller
    has loaded it already), which must be ``what``."""
    base = base or keras.models.load_model(init, compile=False, safe_mode=True)
    weights, wanted = base.get_weights(), model.get_weights()
    if (len(weights) == len(wanted) and weights[-1].shape == (10,) and wanted[-1].shape == (NUM_CLASSES,)
            and weights[-2].shape[:-1] == wanted[-2].shape[:-1]):
        # a model of ten digits: its digits' weights kept, "not a digit" starts unlikely
        kernel, bias = np.zeros_like(wanted[-2]), np.full_like(wanted[-1], -4.0)
        kernel[..., :10], bias[:10] = weights[-2], weights[-1]
        weights = weights[:-2] + [kernel, bias]
    try:
        model.set_weights(weights)
    except ValueError as exc:
        raise ValueError(f"{init} is not {what}: {exc}") from None


def init_card(init: str, summary=lambda card: {"test": card.get("test")}) -> dict:
    """What the card says of the model a run started from: file, digest, how it was made
    (the command, at the card's top or among its options), and ``summary(card)``."""
    import hashlib

    base = store.card_path(init)
    card = json.loads(base.read_text()) if base.exists() else {}
    return {"path": str(init), "sha256": hashlib.sha256(Path(init).read_bytes()).hexdigest(),
            "command": card.get("command") or card.get("options", {}).get("command"), **summary(card)}


def settle_batch_norm(model: keras.Model, x: np.ndarray, steps: int, batch_size: int,
                      max_batches: int = 50) -> int:
    """After a short run, set batch norm's moving statistics to the average over training
    batches with the final weights. Returns the number of images used (0: not needed).

    The moving averages start at mean 0, variance 1 and forget them at ``momentum`` per
    step: after a few dozen steps (a small training from the Train page, a stopped run)
    they are still far from the statistics the network now produces, and a model that is
    right in training mode reads almost nothing right at evaluation. A short pass over
    the training images (no labels, no weight change) fixes that; a long run, whose
    averages have long forgotten their start, is left alone.

    One traced forward pass with momentum 0 leaves each batch's own statistics in the
    layers; their average is set at the end (a stopped run's model is saved a few
    seconds after Stop, not after a pass of eager calls)."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms or all(layer.momentum ** max(steps, 0) < 1e-3 for layer in norms):
        return 0
    momenta = [layer.momentum for layer in norms]
    batches = range(0, min(len(x), max_batches * batch_size), batch_size)
    means = [np.zeros(layer.moving_mean.shape, np.float64) for layer in norms]
    variances = [np.zeros(layer.moving_variance.shape, np.float64) for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        forward = tf.function(lambda a: model(a, training=True))
        for start in batches:
            forward(tf.constant(np.asarray(x[start: start + batch_size], np.float32)[..., None] / 255.0))
            for layer, mean, variance in zip(norms, means, variances):
                mean += layer.moving_mean.numpy()
                variance += layer.moving_variance.numpy()
        for layer, mean, variance in zip(norms, means, variances):
            layer.moving_mean.assign(mean / len(batches))
            layer.moving_variance.assign(variance / len(batches))
    finally:
        for layer, m in zip(norms, momenta):
            layer.momentum = m
    return min(len(x), len(batches) * batch_size)


# --- Progress and stopping --------------------------------------------------------------

# --- The training loop ------------------------------------------------------------------
# A plain loop over one traced function that runs up to STEPS_PER_CALL steps, not
# ``model.fit``: the loop is short enough to read, and it traces about a quarter of the
# graph that fit traces (fit's metrics, distribution and step-loop machinery). On the
# fast preset, 2 cores, the first call took 0.5 s against fit's 1.5-1.9 s, out of a
# whole `python -m digitrec train --preset fast` of about 10 s.

STEPS_PER_CALL = 8  # at most this many steps run inside one traced call before Python (progress, stop) runs...
CALL_SECONDS = 0.5  # ...and no more than take about this long: Stop is heard within a second or so


def steps_for_call(seconds_per_step: float | None, most: int = STEPS_PER_CALL,
                   seconds: float = CALL_SECONDS) -> int:
    """How many steps the next traced call runs: as many as take about ``seconds`` at the
    last call's pace (at least one, at most ``most``); one before any pace is known."""
    if not seconds_per_step:
        return 1
    return max(1, min(most, int(seconds / seconds_per_step)))


def make_train_steps(model: keras.Model, optimizer: keras.optimizers.Optimizer, loss_fn):
    """A traced function ``(iterator, n) -> (loss sum, correct, images)`` that takes
    ``n`` batches from ``iterator`` and makes one optimizer step on each."""
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_steps(iterator, n):
        loss_sum, correct, seen = tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)
        for _ in tf.range(n):
            x, y = next(iterator)
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                loss = loss_fn(y, probs)
                if model.losses:
                    loss += tf.add_n(model.losses)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            size = tf.cast(tf.shape(y)[0], tf.float32)
            hits = tf.equal(tf.argmax(probs, 1), tf.argmax(y, 1))
            loss_sum += tf.cast(loss, tf.float32) * size
            correct += tf.reduce_sum(tf.cast(hits, tf.float32))
            seen += size
        return loss_sum, correct, seen

    return train_steps


def run_training(model, dataset, steps_per_epoch: int, epochs: int, optimizer, loss_fn,
                 progress: Progress, every: int, val_data=None, verbose: int = 0) -> None:
    """Train ``model`` on ``dataset`` (repeated batches) for ``epochs`` x ``steps_per_epoch``
    steps. Every ``every`` steps, and at the end, it appends a point to
    ``progress.points``: the epoch's running loss and accuracy so far (and, with
    ``val_data``, validation loss and accuracy); it stops after the call in which
    ``progress.stop`` is set. Each call runs :func:`steps_for_call` steps: a few quick
    ones, or one slow one (a large batch, augmentation, a busy machine)."""
    train_steps = make_train_steps(model, optimizer, loss_fn)
    iterator = iter(dataset)
    total = steps_per_epoch * epochs
    every = max(1, every)
    pace = None  # seconds a step took in the last call (the first one also traces the graph)
    for epoch in range(epochs):
        progress.epoch = epoch
        sums = np.zeros(3)
        done = 0
        while done < steps_per_epoch:
            step = epoch * steps_per_epoch + done
            n = min(steps_for_call(pace), steps_per_epoch - done, every - step % every)
            began = time.perf_counter()
            sums += [float(v) for v in train_steps(iterator, tf.constant(n))]
            pace = (time.perf_counter() - began) / n
            done += n
            progress.step = step + n
            if progress.step % every == 0 or done == steps_per_epoch:
                point = {"step": progress.step, "epoch": epoch + done / steps_per_epoch,
                         "loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2]}
                if val_data is not None:
                    x, y = val_data
                    probs = model(x, training=False)
                    point["val_loss"] = float(keras.losses.sparse_categorical_crossentropy(y, probs).numpy().mean())
                    point["val_accuracy"] = float((np.argmax(probs, 1) == y).mean())
                progress.points.append(point)
                if verbose:
                    print(f"epoch {point['epoch']:.2f}/{epochs} step {progress.step}/{total}: "
                          + ", ".join(f"{k} {v:.4f}" for k, v in point.items() if k not in ("step", "epoch")),
                          flush=True)
            if progress.stop.is_set():
                progress.stopped = True
                return


# --- Saving -----------------------------------------------------------------------------

def warmup_cosine(peak: float, steps: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """The number networks' schedule: a twentieth of ``steps`` warming up from peak / 20 to
    ``peak``, then a cosine down to 2% of it."""
    warmup = max(1, steps // 20)
    return keras.optimizers.schedules.CosineDecay(peak / 20, max(1, steps - warmup), alpha=0.02,
                                                  warmup_target=peak, warmup_steps=warmup)


def machine() -> dict:
    """Where a model was made, for its card."""
    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")), "python": sys.version.split()[0],
            "tensorflow": tf.__version__, "keras": keras.__version__}


# --- Memory across runs -----------------------------------------------------------------
# Keras's optimizer sums gradients through tf.distribute's all_reduce, which TensorFlow
# wraps in a custom gradient. Each trace of a training step registers that gradient
# function in TensorFlow's global gradient registry, and it is never removed: its closure
# holds the traced graph, so every training run in a process keeps about 15 MB alive
# (tensorflow/tensorflow#80895; keras.backend.clear_session() does not help). A process
# may train again and again (the tests, benchmarks/train_speed.py; the app's trainings run in
# a process each, see digitrec.server.worker), so a run removes what it registered.

@contextmanager
def released_custom_gradients():
    """Remove the custom gradients registered inside the block when it ends.

    They are needed only while a step is traced; once the run is over nothing looks them
    up. (One training runs per process at a time: :mod:`digitrec.server.jobs` allows no more.)"""
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    before = set(registry) if isinstance(registry, dict) else None
    try:
        yield
    finally:
        if before is not None:
            for name in set(registry) - before:
                if name.startswith("CustomGradient-"):
                    registry.pop(name, None)


# --- Training ---------------------------------------------------------------------------

def train(config: TrainConfig, progress: Progress | None = None, mnist=None,
          verbose: int = 0, save: bool = True) -> TrainResult:
    """Train a model as ``config`` says, evaluate it on the test set, save it with its card."""
    with released_custom_gradients():
        return _train(config, progress, mnist, verbose, save)


def _train(config: TrainConfig, progress: Progress | None, mnist, verbose: int,
           save: bool) -> TrainResult:
    cfg = config.resolved()
    progress = progress or Progress()
    start = time.time()
    keras.utils.set_random_seed(cfg.seed)
    sets = load_sets(cfg.datasets, cfg.data, {"mnist": mnist} if mnist is not None else None)

    # Each set's training digits as the network reads them (datasets.prepared).
    raw, xs, ys, names, used = [], [], [], [], {}
    for name, dataset in sets.items():
        part = data_mod.prepared(dataset, "train")
        keep = np.flatnonzero(part.found)
        if cfg.limit:
            keep = keep[keep < cfg.limit]
        raw += list(dataset.x_train[keep])
        xs.append(part.x[keep])
        ys.append(part.y[keep])
        names.append(np.full(len(keep), name))
        used[name] = {"description": data_mod.spec(name).description, "train_images": int(len(keep)),
                      "no_digit": int((~part.found[: cfg.limit or None]).sum()),
                      "preprocessing": "as stored (MNIST's form)" if part.cached is None
                      else "digitrec.reading.normalize, as a user's picture"}
    x, y, groups = np.concatenate(xs), np.concatenate(ys), np.concatenate(names)
    val_data = None
    if cfg.validation:
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(x))
        val_idx, train_idx = order[: cfg.validation], order[cfg.validation:]
        val_data = (x[val_idx].astype("float32")[..., None] / 255.0, y[val_idx].astype("int64"))
        x, y, groups = x[train_idx], y[train_idx], groups[train_idx]
        raw = [raw[i] for i in train_idx]
    n_sets = len(x)
    x, y, plain, pipeline = add_pipeline_digits(x, y, cfg.pipeline_mix, cfg.seed)
    groups = np.concatenate([groups, np.full(len(x) - n_sets, "pipeline")])
    x, y, plain, groups, small = add_small_crops(raw, x, y, plain, groups, cfg.small_mix, cfg.seed)
    x, y, plain, groups, not_digits = add_nondigits(x, y, plain, groups, cfg.nondigits, cfg.data, cfg.seed,
                                                    cfg.letter_copies)
    x, y, plain, groups, (held_x, held_y, mine) = add_samples(x, y, plain, groups, cfg.samples)

    sizes = {g: int((groups == g).sum()) for g in dict.fromkeys(groups)}
    shares = epoch_shares(sizes, floored=[n for n in sets if len(sets) > 1] + (["samples"] if mine else []))
    for name in sets:
        used[name]["share"] = round(shares.get(name, 0.0), 4)
    order = epoch_order(groups, shares, cfg.epochs, cfg.seed) if len(sizes) > 1 else None
    train_ds = make_dataset(x, y, cfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed,
                            plain=plain, repeat=True, order=order)
    steps_per_epoch = int(np.ceil(len(x) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    progress.total_steps, progress.started = total, time.time()

    precision = training_precision(cfg.preset)
    model = initial_model(cfg.preset, cfg.init, dtype=precision)
    if PRESETS[cfg.preset].schedule == "onecycle":
        warmup = max(1, int(0.25 * total))
        lr = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate / 20, decay_steps=total - warmup, alpha=0.01,
            warmup_target=cfg.learning_rate, warmup_steps=warmup,
        )
    else:
        lr = cfg.learning_rate
    every = cfg.eval_every if val_data is not None else min(cfg.eval_every, 50)
    progress.phase = "training"
    run_training(model, train_ds, steps_per_epoch, cfg.epochs, keras.optimizers.Adam(lr),
                 keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                 progress, every, val_data, verbose)
    train_seconds = time.time() - start
    progress.phase = "testing"
    if precision or PRESETS[cfg.preset].fused_bn:
        # The weights are float32 already: move them into the plain float32 model.
        trained, model = model, build_model(cfg.preset)
        model.set_weights(trained.get_weights())
    recalibrated = settle_batch_norm(model, x, progress.step, cfg.batch_size)

    tests = test_scores(model, sets)
    calibration = calibrate(model, sets, cfg.data)
    if mine:
        mine["share"] = round(shares["samples"], 4)
        if len(held_y):
            mine["held_out_accuracy"] = scores(predict_batches(model, held_x), held_y)["accuracy"]
    first = "mnist" if "mnist" in tests else next(iter(sets))
    sums = {}
    for dataset in sets.values():
        sums.update(dataset.checksums)

    card = {
        "format": "digitrec-model-card/1",
        "preset": cfg.preset,
        "options": {k: v for k, v in asdict(cfg).items() if k not in ("command", "out", "data")},
        "architecture": describe(model),
        "epochs_completed": round(progress.step / steps_per_epoch, 3),
        "stopped_early": progress.stopped,
        "train_images": int(len(x)),
        "datasets": used,
        "epoch_shares": {g: round(v, 4) for g, v in shares.items()},
        **({"pipeline_digits": pipeline} if pipeline else {}),
        **({"small_crops": small} if small else {}),
        **({"not_a_digit": not_digits} if not_digits else {}),
        "calibration": calibration,
        **({"samples": mine} if mine else {}),
        **({"init": init_card(cfg.init)} if cfg.init else {}),
        "training_precision": precision or "float32",
        "batch_norm_recalibrated_on": recalibrated,
        "train_seconds": round(train_seconds, 1),
        "test": {"dataset": first, **{k: tests[first][k] for k in ("accuracy", "loss", "n")}},
        "tests": tests,
        "data_sha256": sums,
        "command": cfg.command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
    }
    if save:  # never over the shipped model unless asked to, by name
        progress.phase = "saving"
        path = save_model(model, cfg.out or store.new_model_path(cfg.preset), card)
    else:
        path = None
    result = TrainResult(model=model, card=card, history=progress.points, path=path)
    progress.result, progress.done = result, True
    return result
