"""Training digits as the preprocessing pipeline delivers them.

At prediction time the model never sees a clean MNIST digit: it sees what
:func:`digitrec.reading.normalize.normalize` makes of a photo, a scan or a canvas, with grainy
chalk, thinned pencil, redrawn pen strokes and the odd remnant of a ruled line. Training
on such images closes that gap. Each image here is a *training* digit rendered by
:func:`digitrec.training.synth.render_digit` into one of its conditions and sizes, then read back
through ``normalize`` (``to_gray`` -> ``ink_mask`` -> ``to_mnist``).

    pipeline_digits(x28, y, n, seed, workers=None) -> PipelineDigits

This module imports no TensorFlow, so the worker processes start quickly.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

CHUNK = 250  # images per task: big enough to amortise the transfer, small enough to balance


@dataclass
class PipelineDigits:
    x: np.ndarray  # (n, 28, 28) uint8: what normalize() made of the rendered digits
    y: np.ndarray  # (n,) labels
    source: np.ndarray  # (n,) index of each image's digit in the x28 it was rendered from
    conditions: np.ndarray  # (n,) the synth condition of each image
    sizes: np.ndarray  # (n,) the 28-box side asked of render_digit
    dropped: int  # renders where normalize found no digit (never shown to the model either)
    seconds: float


def _map(fn, tasks: list, workers: int | None) -> list:
    """``fn`` over ``tasks``, in order, in ``workers`` processes (default: one per CPU)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        return [fn(t) for t in tasks]
    # spawn, not fork: the parent may hold TensorFlow's and OpenCV's threads
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, tasks))


def plan(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Condition and size of the ``n`` renders: every (condition, size) pair equally often."""
    from digitrec.training.synth import CONDITIONS, SIZES

    i = np.arange(n)
    return (np.asarray(CONDITIONS)[i % len(CONDITIONS)],
            np.asarray(SIZES)[(i // len(CONDITIONS)) % len(SIZES)])


def _render_chunk(task) -> tuple[np.ndarray, np.ndarray]:
    """One worker's share: render each digit, normalize it; (uint8 images, ok flags)."""
    import cv2

    from digitrec.reading.normalize import NoDigit, normalize
    from digitrec.training import synth

    cv2.setNumThreads(1)  # the processes are the parallelism
    digits, conditions, sizes, seed = task
    rng = np.random.default_rng(seed)
    out = np.zeros((len(digits), 28, 28), np.uint8)
    ok = np.zeros(len(digits), bool)
    for k, (d28, cond, size) in enumerate(zip(digits, conditions, sizes)):
        image = synth.render_digit(d28, str(cond), rng, size=int(size))
        try:
            out[k] = np.round(normalize(image).x28 * 255)
            ok[k] = True
        except NoDigit:
            pass
    return out, ok


def pipeline_digits(x28: np.ndarray, y: np.ndarray, n: int, seed: int,
                    workers: int | None = None) -> PipelineDigits:
    """``n`` digits drawn at random from ``x28`` (with their labels ``y``), rendered in
    every condition and size and read back through the preprocessing pipeline.

    Deterministic for a given ``seed`` whatever the number of ``workers`` (processes;
    default: one per CPU): each chunk of :data:`CHUNK` images has its own generator."""
    start = time.time()
    rng = np.random.default_rng([seed, 4])
    source = rng.choice(len(x28), size=n, replace=n > len(x28))
    conditions, sizes = plan(n)
    tasks = [(x28[source[i: i + CHUNK]], conditions[i: i + CHUNK], sizes[i: i + CHUNK], [seed, 4, i])
             for i in range(0, n, CHUNK)]
    results = _map(_render_chunk, tasks, workers)
    x = np.concatenate([r[0] for r in results]) if results else np.zeros((0, 28, 28), np.uint8)
    ok = np.concatenate([r[1] for r in results]) if results else np.zeros(0, bool)
    return PipelineDigits(x=x[ok], y=np.asarray(y)[source][ok], source=source[ok],
                          conditions=conditions[ok], sizes=sizes[ok], dropped=int((~ok).sum()),
                          seconds=round(time.time() - start, 1))
