"""Reading pictures on a Ray cluster: Ray Data's batch inference, ``map_batches`` over the
files with a pool of actors, each holding one
:class:`~digitrec.reading.digits.Recognizer` loaded when it starts.

Ray is an optional extra (``pip install "ray[data]"``): nothing else imports this module's
Ray parts, and without Ray ``--engine ray`` stops with a message that says so.

The workers open the pictures themselves, by absolute path: the pictures must be on storage
every node sees at the same path (a shared or network file system), and so must a model
named with ``--model``. The code and the shipped networks travel with the run (Ray's
``working_dir``); each node needs the Python packages of requirements.txt. Without an
address a Ray of this machine alone is started for the run and stopped after it.

Ray Data's pipeline runs in a task on the cluster and streams the records back to this
process, which writes them: through a Ray Client connection (``ray://``) this process is
no Ray worker, and Ray Data does not run in it.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator

from digitrec import store
from digitrec.archive.output import ArchiveError
from digitrec.archive.records import answer

BATCH = 8  # pictures per call of an actor
MAX_BLOCKS = 2000  # the files are cut into at most this many blocks, results stream back per block
QUEUED = 64  # blocks of records done and not yet taken by this process, at most


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


def code() -> dict:
    """The runtime environment that takes this checkout's code and networks to a cluster's
    nodes (a few MB: the package and the exported networks, not the Keras files nor the
    tests), so that every node reads with what this machine has; an installed digitrec
    (no checkout) is left to the nodes' own install."""
    root = store.REPO_MODELS.parent
    if not (store.REPO_MODELS.is_dir() and (root / "digitrec").is_dir()):
        return {}
    return {"working_dir": str(root), "excludes": [
        ".venv", "tests", "benchmarks", "docs", "artifacts", "pages", "models/user", "models/candidates",
        "*.keras", "*.png", "*.sqlite3*", "__pycache__"]}


def require():
    """The ``ray`` module, with Ray Data; a clear error when Ray is not installed."""
    try:
        import ray
        import ray.data
        import ray.exceptions
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
        # a cluster's own settings stand; a Ray of this machine alone gets the CPUs asked for and no dashboard
        options = {"address": address, "runtime_env": code()} if address else {
            "address": "local", "num_cpus": jobs or os.cpu_count(), "include_dashboard": False,
            "log_to_driver": False}  # "local": a new Ray, even where one was started with `ray start`
        try:
            ray.init(**options, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ArchiveError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {exc}") from None
    from ray.util.queue import Empty, Queue

    task = None
    try:
        actors = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        items = [{"file": f, "path": os.path.abspath(f)} for f in files]
        # Ray Data runs in a task on the cluster, which hands the records back through a queue:
        # through a Ray Client connection (ray://) this process is no Ray worker, Ray Data
        # does not run in it, and a task's results cannot stream to it.
        queue = Queue(maxsize=QUEUED, actor_options={"num_cpus": 0})
        task = ray.remote(num_cpus=0)(_pipeline).remote(
            items, command, model and os.path.abspath(model), actors, batch, queue)
        while True:
            try:
                texts = queue.get(timeout=1.0)
            except Empty:
                if ray.wait([task], timeout=0)[0]:
                    ray.get(task)  # a pipeline that failed says why; one that ended has left its None
                continue
            if texts is None:
                break
            for text in texts:
                yield json.loads(text)
        ray.get(task)
        task = None
    except ray.exceptions.RayError as exc:  # a task or an actor failed on the cluster: its message, no trace
        raise ArchiveError(f"the run on Ray failed; the records written are kept: {exc}") from None
    finally:
        if task is not None:  # stopped early: the cluster stops too
            ray.cancel(task, force=True)
        if started:
            ray.shutdown()


def _pipeline(items: list[dict], command: str, model: str | None, actors: int, batch: int, queue) -> None:
    """On the cluster: Ray Data's ``map_batches`` over the files with ``actors``
    :class:`Reader` actors, each block's records (JSON) put on ``queue`` as it is done,
    then None."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the run shows its own...
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # ...and no notice that Ray's are off
    blocks = max(1, min(math.ceil(len(items) / batch), MAX_BLOCKS))
    data = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        Reader, fn_constructor_kwargs={"command": command, "model": model},
        batch_size=batch, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
    try:
        for block in data.iter_batches(batch_size=None, batch_format="numpy"):
            queue.put([str(text) for text in block["record"]])
    finally:
        queue.put(None)
