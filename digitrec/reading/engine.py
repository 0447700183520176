"""The reading engine: exported networks (``.tflite``) run by the LiteRT interpreter.

Every network the project trains is exported when it is saved
(:mod:`digitrec.training.export`); reading loads only that file, with NumPy, so that a
process that reads never imports TensorFlow (benchmarks/results/serving.md: the cost
of starting and the memory held).
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

SMALL = 8  # batches up to this size run on one thread (one canvas digit, a number's digits)
BATCH = 256  # larger ones in chunks of this many, on Network.threads threads
MAX_THREADS = 8  # the most threads a large batch takes by default (fewer where fewer cores)


class ModelError(RuntimeError):
    """A model file that cannot be loaded or run; ``str(exc)`` says which and why."""


# LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to file descriptor
# 2 the first time an interpreter runs in a process, and never again in that process. No
# option or environment variable turns it off (TF_CPP_MIN_LOG_LEVEL does not reach it), so
# that one run happens with fd 2 on /dev/null: under one lock, so that networks started at
# once from several threads cannot save each other's /dev/null as "the real stderr", and
# only once, so that later starts never touch the process's stderr.
_first_run_lock = threading.Lock()
_first_run_done = False


@contextlib.contextmanager
def _first_run_quiet():
    """The body (an interpreter's first run) with fd 2 on /dev/null if it is the first in
    the process; otherwise as it is. Whatever else the process writes to fd 2 during that
    one run (milliseconds) is lost with LiteRT's line."""
    global _first_run_done
    if not _first_run_done:
        with _first_run_lock:
            if not _first_run_done:
                with _stderr_to_devnull():
                    yield
                _first_run_done = True
                return
    yield


@contextlib.contextmanager
def _stderr_to_devnull():
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(int(cores or 1), MAX_THREADS))


class Network:
    """One exported network: ``network(*inputs)`` -> its output for a batch.

    Inputs are float32 arrays with the batch first; a network of several inputs takes
    them by name (:attr:`inputs`, the Keras model's input names). Two interpreters: a
    one-thread one for batches up to SMALL (a canvas digit, a number's digits), where
    threads cost more than they give and a server reads for several visitors at once, and
    one on ``threads`` threads (default: the cores, at most MAX_THREADS) for larger
    batches, made on first use. An interpreter holds one set of buffers, so each has its
    own lock: a visitor's digit never waits behind a large batch (a gallery of samples,
    an evaluation) running on the other one."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        self.threads = int(threads) if threads else _cores()
        if self.threads < 1:
            raise ValueError(f"threads must be 1 or more, not {threads!r}")
        try:
            self._content = self.path.read_bytes()
            small = Interpreter(model_content=self._content, num_threads=1)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load {self.path.name}: {exc}") from None
        signature = small.get_signature_list()
        if len(signature) != 1:
            raise ModelError(f"{self.path.name} is not an exported digitrec network")
        (self._key, names), = signature.items()
        self.inputs: list[str] = list(names["inputs"])
        self._output = names["outputs"][0]
        details = small.get_signature_runner(self._key).get_input_details()
        self._shapes = {name: [1, *details[name]["shape_signature"][1:]] for name in self.inputs}
        self._small = self._start(small)
        self._large = None
        self._small_lock = threading.Lock()
        self._large_lock = threading.Lock()

    def _start(self, interpreter):
        """A signature runner over ``interpreter``, run once on zeros (see
        :func:`_first_run_quiet`)."""
        runner = interpreter.get_signature_runner(self._key)
        zeros = {name: np.zeros(shape, np.float32) for name, shape in self._shapes.items()}
        with _first_run_quiet():
            runner(**zeros)
        return runner

    def __call__(self, *inputs: np.ndarray, **named: np.ndarray) -> np.ndarray:
        """The first output for a batch: one input positionally, or each by its name."""
        if inputs:
            named = dict(zip(self.inputs, inputs))
        if sorted(named) != sorted(self.inputs):
            raise ValueError(f"{self.path.name} takes the inputs {', '.join(self.inputs)}")
        arrays = {k: np.ascontiguousarray(x, np.float32) for k, x in named.items()}
        n = len(next(iter(arrays.values())))
        if n <= SMALL:
            with self._small_lock:
                return self._small(**arrays)[self._output]
        with self._large_lock:
            if self._large is None:
                self._large = self._start(Interpreter(model_content=self._content, num_threads=self.threads))
            return np.concatenate([self._large(**{k: x[i: i + BATCH] for k, x in arrays.items()})[self._output]
                                   for i in range(0, n, BATCH)])


def load(path: str | os.PathLike, threads: int | None = None) -> Network:
    """The network in ``path``, loaded once per version of the file (its modification
    time) and shared by every caller: the app's sessions share one copy. ``threads``: as
    :class:`Network`'s."""
    path = Path(path)
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        saved = path.with_suffix(".keras")
        if saved.exists():  # a model saved before models were exported when saved
            raise ModelError(f"{saved.name} has no {path.name} beside it, which reading needs; "
                             f"write it with: python -m digitrec export {saved}") from None
        raise ModelError(f"model file {path} not found") from None
    return _load(path, version, threads)


@functools.lru_cache(maxsize=8)
def _load(path: Path, version: int, threads: int | None) -> Network:
    return Network(path, threads)
