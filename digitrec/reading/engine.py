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
BATCH = 256  # larger ones in chunks of this many, on every core


# The process's stderr is one file descriptor: two threads starting interpreters at once
# (two networks' first large batches in a server) would each save the other's stand-in.
_STDERR_LOCK = threading.Lock()


class ModelError(RuntimeError):
    """A model file that cannot be loaded or run; ``str(exc)`` says which and why."""


@contextlib.contextmanager
def _native_stderr_quiet():
    """LiteRT's runtime writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    to the process's stderr when an interpreter first runs, with no setting to turn it
    off; a command's output is its answer, so that first run happens in here."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured): nothing to hide
        yield
        return
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(fd)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def _cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(int(cores or 1), 8))


class Network:
    """One exported network: ``network(*inputs)`` -> its output for a batch.

    Inputs are float32 arrays with the batch first; a network of several inputs takes
    them by name (:attr:`inputs`, the Keras model's input names). Two interpreters: a one-thread one for
    small batches, where threads cost more than they give, and one on every core for
    large batches, made on first use. An interpreter holds one set of buffers, so calls
    take a lock."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
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
        self._lock = threading.Lock()

    def _start(self, interpreter):
        """A signature runner over ``interpreter``, run once on zeros (see
        :func:`_native_stderr_quiet`)."""
        runner = interpreter.get_signature_runner(self._key)
        zeros = {name: np.zeros(shape, np.float32) for name, shape in self._shapes.items()}
        with _native_stderr_quiet():
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
        with self._lock:
            if n <= SMALL:
                return self._small(**arrays)[self._output]
            if self._large is None:
                self._large = self._start(Interpreter(model_content=self._content, num_threads=_cores()))
            return np.concatenate([self._large(**{k: x[i: i + BATCH] for k, x in arrays.items()})[self._output]
                                   for i in range(0, n, BATCH)])


def load(path: str | os.PathLike) -> Network:
    """The network in ``path``, loaded once per version of the file (its modification
    time) and shared by every caller: the app's sessions share one copy."""
    path = Path(path)
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        saved = path.with_suffix(".keras")
        if saved.exists():  # a model saved before models were exported when saved
            raise ModelError(f"{saved.name} has no {path.name} beside it, which reading needs; "
                             f"write it with: python -m digitrec export {saved}") from None
        raise ModelError(f"model file {path} not found") from None
    return _load(path, version)


@functools.lru_cache(maxsize=8)
def _load(path: Path, version: int) -> Network:
    return Network(path)
