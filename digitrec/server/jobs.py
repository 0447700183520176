"""Training in a process of its own, one at a time per server.

The Train page starts a job and polls its :class:`~digitrec.training.train.Progress`; other pages
and other browser sessions keep working meanwhile. A second :func:`start` while a job
runs raises :class:`Busy` with a message for the user. :func:`stop` asks the running job
to stop after the current batch; the model trained so far is still evaluated and saved
(a job stopped before its first batch ends with no model).

The training itself runs in :mod:`digitrec.server.worker`, a child process at a lower CPU
priority: it holds no lock the visitors' predictions need (Python's GIL), it takes the
cores they leave idle, and its memory goes back to the system when it ends. A thread here
reads its reports into the job's ``Progress``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from digitrec import store
from digitrec.training.recipes import Progress, TrainConfig, TrainResult

log = logging.getLogger(__name__)

TRAIN_IMAGES = 60_000  # MNIST's training set
MAX_VALIDATION = 2_000
CURVE_POINTS = 30  # about this many points on the live curves, whatever the run's length


# What one visitor may ask of the machine (the Train page's widgets offer no more; jobs
# enforces it again, server-side, whatever a client sends).
MAX_EPOCHS = 30
BATCH_RANGE = (16, 512)
MIN_IMAGES = 200


# The nice value of the training process (0 = as the server; 19 = only idle CPU).
TRAIN_NICE = int(os.environ.get("DIGITREC_TRAIN_NICE", "10"))
# The command that runs one training (tests put a stand-in here).
WORKER = [sys.executable, "-m", "digitrec.server.worker"]
ROOT = Path(__file__).resolve().parents[2]  # the folder holding digitrec (a checkout, site-packages)


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
    process: subprocess.Popen | None = None
    thread: threading.Thread | None = None  # reads the process's reports until it ends
    _stdin_lock: threading.Lock = field(default_factory=threading.Lock)

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

    def tell(self, line: str) -> None:
        with self._stdin_lock:
            try:
                self.process.stdin.write(line + "\n")
                self.process.stdin.flush()
            except (OSError, ValueError):  # it has ended: nothing to tell
                pass


_lock = threading.Lock()
_current: Job | None = None


# A quick fine-tune of the active model on your digits: one short epoch of MNIST digits
# replayed beside them (so that it keeps what it knew), at a low learning rate.
QUICK_REPLAY = 5_000  # MNIST training digits in the epoch, beside your digits' share
QUICK_LEARNING_RATE = 2e-4  # the peak of its one-cycle schedule


def quick_config(active: Path, samples: Path) -> TrainConfig:
    """The config of a quick fine-tune of ``active`` (a .keras with its card) on the
    samples in ``samples``."""
    card = store.read_card(active)
    return TrainConfig(
        preset=card.get("preset", "best"), init=str(active), epochs=1, limit=QUICK_REPLAY,
        learning_rate=QUICK_LEARNING_RATE, datasets=["mnist"], pipeline_mix=0.0, small_mix=0.0,
        augment=True, samples=str(samples), out=str(store.new_model_path("yours")),
        command="Train page: quick fine-tune of the active model on your digits")


def plan(config: TrainConfig, train_images: int | None = None) -> TrainConfig:
    """Fill in the validation size and how often to record a point, so that the curves
    get a few dozen points whatever the run's length (and one at least every 100 batches)."""
    cfg = config.resolved()
    n = min(cfg.limit or TRAIN_IMAGES, train_images or TRAIN_IMAGES)
    validation = cfg.validation or min(MAX_VALIDATION, max(50, n // 6))
    steps = math.ceil((n - validation) / cfg.batch_size) * cfg.epochs
    eval_every = max(1, min(100, steps // CURVE_POINTS))
    return replace(cfg, validation=validation, eval_every=eval_every)


def current() -> Job | None:
    """The running job, or the last one that ran in this process."""
    return _current


def worker_env() -> dict:
    """The server's environment for the training process, with its nice value and the
    repository on its import path."""
    env = dict(os.environ)
    env["DIGITREC_TRAIN_NICE"] = str(TRAIN_NICE)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _follow(job: Job) -> None:
    """Read the training process's reports into ``job.progress`` until it ends."""
    p = job.progress
    try:
        for line in job.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("training process: %s", line.rstrip()[:200])
                continue
            if "progress" in message:
                state = message["progress"]
                p.points.extend(state.pop("points", []))
                for name in ("total_steps", "step", "epoch", "started", "stopped", "phase"):
                    setattr(p, name, state.get(name, getattr(p, name)))
            elif "result" in message:
                result = message["result"]
                path = Path(result["path"]) if result.get("path") else None
                if result.get("card") is not None:
                    p.result = TrainResult(model=None, card=result["card"], history=p.points, path=path)
                else:  # stopped before the first batch: no model
                    p.stopped = True
                p.done = True
            elif "error" in message:
                p.error = message["error"]
        code = job.process.wait()
        if p.result is None and p.error is None and not (p.done and p.stopped):
            p.error = f"the training process ended unexpectedly (exit code {code})"
    finally:
        with job._stdin_lock:
            for pipe in (job.process.stdin, job.process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        job.finished = time.time()


def start(config: TrainConfig) -> Job:
    """Start training in a process of its own. Raises :class:`Busy` if one is running and
    :class:`Refused` for settings outside the bounds (epochs, batch size, images)."""
    global _current
    check(config)
    from digitrec.server import registry

    registry.clean_stale_temporaries()  # what a killed save left behind, an hour old or more
    with _lock:
        if _current is not None and _current.running:
            done = _current.progress.fraction
            raise Busy("A training is already running "
                       f"({done:.0%} done). Wait for it to finish, or stop it first.")
        job = Job(config=config)
        job.process = subprocess.Popen(
            WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            env=worker_env())
        job.tell(json.dumps(asdict(config)))
        job.thread = threading.Thread(target=_follow, args=(job,), name="digitrec-training",
                                      daemon=True)
        _current = job
        job.thread.start()
    return job


def stop() -> bool:
    """Ask the running job to stop after its current batch. False if none runs."""
    job = _current
    if job is None or not job.running:
        return False
    job.progress.stop.set()
    job.tell("stop")
    return True


def wait(timeout: float | None = None) -> Job | None:
    """Block until the current job ends (tests, scripts)."""
    job = _current
    if job is not None and job.thread is not None:
        job.thread.join(timeout)
    return job
