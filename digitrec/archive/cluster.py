"""Reading pictures on a Ray cluster: Ray Data's batch inference, ``map_batches`` over the
files with a pool of actors, each holding one
:class:`~digitrec.reading.digits.Recognizer` loaded when it starts.

Ray is an optional extra (``pip install "ray[data]"``): nothing else imports this module's
Ray parts, and without Ray ``--engine ray`` stops with a message that says so.

The workers open the pictures themselves, by absolute path, and load the model from their
own checkout: every node needs digitrec installed at the same path and the pictures on
storage every node sees at the same path (a shared or network file system). Without an
address a Ray of this machine alone is started for the run and stopped after it.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator

from digitrec.archive.output import ArchiveError
from digitrec.archive.records import answer

BATCH = 8  # pictures per call of an actor
MAX_BLOCKS = 2000  # the files are cut into at most this many blocks, results stream back per block


class Reader:
    """The callable class of ``map_batches``: loads the model once per actor, then gives
    each batch of files (``file`` as written, ``path`` absolute) its records as JSON."""

    def __init__(self, command: str, model: str | None = None):
        from digitrec.reading.digits import Recognizer

        self.command = command
        self.recognizer = Recognizer.load(model)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        records = [answer(self.recognizer, self.command, str(file), str(path)).record
                   for file, path in zip(batch["file"], batch["path"])]
        return {"record": np.array([json.dumps(r) for r in records], dtype=object)}


def require():
    """The ``ray`` module, with Ray Data; a clear error when Ray is not installed."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ArchiveError("--engine ray needs Ray: pip install \"ray[data]\" "
                           "(it is in requirements-dev.txt), or use the local engine") from None
    return ray


def read(files: list[str], command: str, model: str | None = None, jobs: int | None = None,
         address: str | None = None, batch: int = BATCH) -> Iterator[dict]:
    """Each file's record, read by ``jobs`` Ray actors (default: one per CPU of the
    cluster) on the cluster at ``address`` (``ray://HOST:10001``, or ``auto``), or on a
    Ray started here with ``jobs`` CPUs."""
    ray = require()
    if not files:
        return
    from digitrec.reading.digits import Recognizer

    Recognizer.load(model)  # a missing or broken model stops here, with its message, not in an actor
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": jobs or os.cpu_count()}
        try:
            ray.init(**options, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ArchiveError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {exc}") from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the run shows its own...
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # ...and no notice that Ray's are off
        actors = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        items = [{"file": f, "path": os.path.abspath(f)} for f in files]
        blocks = max(1, min(math.ceil(len(items) / batch), MAX_BLOCKS))
        data = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            Reader, fn_constructor_kwargs={"command": command, "model": model and os.path.abspath(model)},
            batch_size=batch, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
        for row in data.iter_rows():
            yield json.loads(row["record"])
    finally:
        if started:
            ray.shutdown()
