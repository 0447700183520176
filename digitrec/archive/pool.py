"""Reading pictures in worker processes on this machine, each holding one
:class:`~digitrec.reading.digits.Recognizer`, loaded once when the process starts.

Processes are started by *spawn*, not fork: the parent may hold threads (LiteRT's, a
progress bar's) whose locks a forked child would inherit held. Files go to the workers a
few at a time (fewer messages than one by one, and a worker is never idle long waiting
for the next); records come back as each chunk ends, in no fixed order. A worker ignores
Ctrl-C (the parent decides when to stop) and exits on its own when the parent dies, even
by SIGKILL, so that no worker is left running.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from digitrec.archive.output import ArchiveError
from digitrec.archive.records import answer

# Files sent to a worker at a time, at most (fewer when there are few files). A digit's
# picture is read in under 2 ms and a cheque amount's in about 17 (archive.md, one job):
# digits go four times as many at a time, for as few messages per second.
CHUNK = {"predict": 32, "read": 8}
AHEAD = 2  # chunks queued per worker beyond the one it reads


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_recognizer = None  # the worker's own, made by _start
_failure: Exception | None = None  # why it could not be made: raised by each _read, message and all


def _start(model: str | None) -> None:
    global _recognizer, _failure
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # leave when the parent does, however it ended
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True).start()
    from digitrec.reading.digits import Recognizer
    from digitrec.reading.engine import ModelError

    try:
        _recognizer = Recognizer.load(model)
    except ModelError as exc:  # an initializer that raises only says that the pool broke
        _failure = exc


def _read(command: str, files: list[str]) -> list[dict]:
    if _failure is not None:
        raise _failure
    return [answer(_recognizer, command, file).record for file in files]


def read(files: list[str], command: str, model: str | None = None, jobs: int | None = None,
         chunk: int | None = None) -> Iterator[dict]:
    """Each file's record (:func:`~digitrec.archive.records.answer`), read by ``jobs``
    processes (default: one per core); one job reads in this process, in order. A model
    that cannot be loaded raises :class:`~digitrec.reading.engine.ModelError`."""
    if not files:
        return
    jobs = max(1, min(jobs or cores(), len(files)))
    if jobs == 1:
        from digitrec.reading.digits import Recognizer

        recognizer = Recognizer.load(model)
        for file in files:
            yield answer(recognizer, command, file).record
        return
    size = max(1, min(chunk or CHUNK[command], len(files) // (jobs * (AHEAD + 1))))
    chunks = iter([files[i: i + size] for i in range(0, len(files), size)])
    pool = ProcessPoolExecutor(jobs, multiprocessing.get_context("spawn"), initializer=_start, initargs=(model,))
    try:
        running = {pool.submit(_read, command, c) for c in _take(chunks, jobs * (AHEAD + 1))}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield from future.result()
            running |= {pool.submit(_read, command, c) for c in _take(chunks, len(finished))}
    except BrokenProcessPool:
        raise ArchiveError("a worker process died (out of memory?); the records written are kept: "
                           "run again to read the rest") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _take(items: Iterator, n: int) -> list:
    return [item for _, item in zip(range(n), items)]
