"""Reading a whole archive: files, folders and glob patterns in, one results file out
(JSON lines, CSV or Parquet), resumable, read by several processes or on a Ray cluster.

    paths --inputs.expand--> pictures (by content) --minus those in the results file-->
          --pool.read (processes here) | cluster.read (Ray)--> records --output--> file

Each picture gives the record ``predict --json`` / ``read --json`` print for it
(:mod:`~digitrec.archive.records`). How the results file stays valid when a run is
stopped at any moment, and how a later run goes on from it: :mod:`~digitrec.archive.output`.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from dataclasses import dataclass, field

from digitrec.archive import inputs
from digitrec.archive.output import CHECKPOINT_S, ArchiveError, open_results
from digitrec.archive.records import COMMANDS

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "ArchiveError", "Summary", "read_archive"]


@dataclass
class Summary:
    """What a run did: pictures found, already in the results file, read now, in the
    results file with an error (from this run or an earlier one); files left out (path,
    why); patterns that matched nothing; whether it was stopped before the end."""

    output: str
    pictures: int = 0
    already: int = 0
    read: int = 0
    failed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    interrupted: bool = False

    def __str__(self) -> str:
        text = (f"{self.output}: {self.already + self.read} of {self.pictures} pictures "
                f"({self.read} read now, {self.already} already there")
        text += f", {self.failed} could not be read)" if self.failed else ")"
        if self.skipped:
            text += f"; {len(self.skipped)} files are not pictures"
        if self.interrupted:
            text += "; stopped before the end: run the same command again to go on"
        return text


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM ends a run as Ctrl-C does: the results file is finished, then the run stops."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def read_archive(paths: list[str], output: str, command: str, *, model: str | None = None,
                 jobs: int | None = None, engine: str = "local", address: str | None = None,
                 progress: bool | None = None, checkpoint_s: float = CHECKPOINT_S, log=None) -> Summary:
    """Read every picture in ``paths`` with ``command`` ("predict" or "read") and write
    its record to ``output`` (.jsonl, .csv or .parquet), leaving out those already there.

    ``jobs``: worker processes (``engine="local"``, default one per core) or Ray actors
    (``engine="ray"``, default one per CPU of the cluster at ``address``, or of a Ray
    started here). ``progress``: a progress bar on ``log`` (default: when ``log``, stderr by
    default, is a terminal). Files left out and patterns that match nothing are reported on
    ``log``. Ctrl-C or SIGTERM stops the run with a complete results file."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {COMMANDS}")
    if engine not in ENGINES:
        raise ArchiveError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if jobs is not None and jobs < 1:
        raise ArchiveError("--jobs must be 1 or more")
    if engine == "ray":
        from digitrec.archive import cluster

        cluster.require()
    log = log or sys.stderr
    summary = Summary(str(output))
    with open_results(output, command, checkpoint_s) as results, _terminate_as_interrupt():
        found = inputs.expand(paths, exclude=results.files, known=results.done.keys())
        summary.skipped, summary.unmatched = found.skipped, found.unmatched
        for path, why in found.skipped:
            print(f"{path}: skipped: {why}", file=log)
        for pattern in found.unmatched:
            print(f"{pattern}: no file matches", file=log)
        todo = [p for p in found.pictures if p not in results.done]
        summary.pictures, summary.already = len(found.pictures), len(found.pictures) - len(todo)
        if engine == "ray":
            records = cluster.read(todo, command, model, jobs, address)
        else:
            from digitrec.archive import pool

            records = pool.read(todo, command, model, jobs)
        show = progress if progress is not None else _is_terminal(log)
        try:
            with contextlib.closing(records), _bar(len(todo), show, log) as bar:
                for record in records:
                    results.add(record)
                    summary.read += 1
                    bar.update()
        except KeyboardInterrupt:
            summary.interrupted = True
        summary.failed = sum("error" in results.done.get(p, {}) for p in found.pictures)
    return summary


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _bar(total: int, show: bool, stream):
    """Done/total, pictures a second and time left, on ``stream`` (tqdm), or nothing."""
    from tqdm import tqdm

    return tqdm(total=total, unit=" pictures", file=stream, disable=not show, dynamic_ncols=True,
                smoothing=0.1, mininterval=0.5)
