"""Training in a background thread, one at a time per process.

The Train page starts a job and polls its :class:`~digitrec.train.Progress`; other pages
and other browser sessions keep working meanwhile. A second :func:`start` while a job
runs raises :class:`Busy` with a message for the user. :func:`stop` asks the running job
to stop after the current batch; the model trained so far is still evaluated and saved.
The training runs at a lower CPU priority (:func:`lower_priority`), so that it takes the
cores the visitors' predictions leave idle.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field, replace

from digitrec.train import Progress, TrainConfig

log = logging.getLogger(__name__)

TRAIN_IMAGES = 60_000  # MNIST's training set
MAX_VALIDATION = 2_000
CURVE_POINTS = 30  # about this many points on the live curves, whatever the run's length


# What one visitor may ask of the machine (the Train page's widgets offer no more; jobs
# enforces it again, server-side, whatever a client sends).
MAX_EPOCHS = 30
BATCH_RANGE = (16, 512)
MIN_IMAGES = 200


# The nice value of the training's threads (0 = as the server; 19 = only idle CPU).
TRAIN_NICE = int(os.environ.get("DIGITREC_TRAIN_NICE", "10"))


class Busy(RuntimeError):
    """A training is already running."""


class Refused(ValueError):
    """A training setting outside the bounds above."""


def check(config: TrainConfig) -> TrainConfig:
    """The config resolved from its preset, or :class:`Refused` naming the bad setting."""
    try:
        cfg = config.resolved()
    except ValueError as exc:
        raise Refused(str(exc)) from None
    problems = []
    if not (isinstance(cfg.epochs, int) and 1 <= cfg.epochs <= MAX_EPOCHS):
        problems.append(f"epochs must be 1 to {MAX_EPOCHS} (got {cfg.epochs!r})")
    lo, hi = BATCH_RANGE
    if not (isinstance(cfg.batch_size, int) and lo <= cfg.batch_size <= hi):
        problems.append(f"batch size must be {lo} to {hi} (got {cfg.batch_size!r})")
    if cfg.limit is not None and not (isinstance(cfg.limit, int) and MIN_IMAGES <= cfg.limit <= TRAIN_IMAGES):
        problems.append(f"training images must be {MIN_IMAGES:,} to {TRAIN_IMAGES:,} (got {cfg.limit!r})")
    if not (isinstance(cfg.validation, int) and 0 <= cfg.validation <= MAX_VALIDATION):
        problems.append(f"validation images must be 0 to {MAX_VALIDATION:,} (got {cfg.validation!r})")
    if not (isinstance(cfg.learning_rate, (int, float)) and 0 < cfg.learning_rate <= 1):
        problems.append(f"learning rate must be in (0, 1] (got {cfg.learning_rate!r})")
    if problems:
        raise Refused("Training refused: " + "; ".join(problems) + ".")
    return cfg


@dataclass
class Job:
    config: TrainConfig
    progress: Progress = field(default_factory=Progress)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def state(self) -> str:
        """'running', 'done', 'stopped' or 'failed'."""
        if self.running:
            return "running"
        if self.progress.error:
            return "failed"
        return "stopped" if self.progress.stopped else "done"


_lock = threading.Lock()
_current: Job | None = None


def plan(config: TrainConfig, train_images: int | None = None) -> TrainConfig:
    """Fill in the validation size and how often to record a point, so that the curves
    get a few dozen points whatever the run's length (and one at least every 100 batches)."""
    cfg = config.resolved()
    n = min(cfg.limit or TRAIN_IMAGES, train_images or TRAIN_IMAGES)
    validation = cfg.validation or min(MAX_VALIDATION, max(50, n // 6))
    steps = math.ceil((n - validation) / cfg.batch_size) * cfg.epochs
    eval_every = max(1, min(100, steps // CURVE_POINTS))
    return replace(cfg, validation=validation, eval_every=eval_every)


def lower_priority(nice: int = TRAIN_NICE) -> list[int]:
    """Lower the CPU priority of the calling thread and of TensorFlow's compute threads.

    Linux gives each thread its own nice value, inherited by the threads it creates. The
    training's work runs in this thread, in the threads it starts (tf.data's) and in
    TensorFlow's thread pools ("tf_*"), which may already exist, made by whichever thread
    used TensorFlow first. At nice 10 a training gets about a tenth of a core that a
    prediction wants, and every idle cycle otherwise. The pools stay at that priority
    (raising it again needs privileges); other TensorFlow work in this process is rare
    (the app predicts with TFLite, in its own threads). Returns the thread ids changed;
    a no-op where threads cannot be listed (not Linux)."""
    changed = []
    ids = [threading.get_native_id()]
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().startswith("tf_"):
                    ids.append(int(tid))
    except OSError:
        return changed
    for tid in ids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed.append(tid)
        except OSError:  # the thread ended meanwhile
            pass
    return changed


def current() -> Job | None:
    """The running job, or the last one that ran in this process."""
    return _current


def start(config: TrainConfig, mnist=None) -> Job:
    """Start training in a background thread. Raises :class:`Busy` if one is running and
    :class:`Refused` for settings outside the bounds (epochs, batch size, images)."""
    global _current
    from digitrec.train import train

    check(config)
    from digitrec import registry

    registry.clean_stale_temporaries()  # what a killed save left behind, an hour old or more
    with _lock:
        if _current is not None and _current.running:
            done = _current.progress.fraction
            raise Busy("A training is already running "
                       f"({done:.0%} done). Wait for it to finish, or stop it first.")
        job = Job(config=config)

        def run():
            lower_priority()
            try:
                train(job.config, progress=job.progress, mnist=mnist)
            except Exception as exc:  # shown on the page, logged with its traceback
                log.error("training failed:\n%s", traceback.format_exc())
                job.progress.error = f"{type(exc).__name__}: {exc}"
            finally:
                job.finished = time.time()

        job.thread = threading.Thread(target=run, name="digitrec-training", daemon=True)
        _current = job
        job.thread.start()
    return job


def stop() -> bool:
    """Ask the running job to stop after its current batch. False if none runs."""
    job = _current
    if job is None or not job.running:
        return False
    job.progress.stop.set()
    return True


def wait(timeout: float | None = None) -> Job | None:
    """Block until the current job ends (tests, scripts)."""
    job = _current
    if job is not None and job.thread is not None:
        job.thread.join(timeout)
    return job
