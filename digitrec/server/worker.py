"""The training process: one training, started and watched by :mod:`digitrec.server.jobs`.

    python -m digitrec.server.worker      (digitrec.server.jobs starts it; not meant to be run by hand)

Why a process of its own: a training in the app's server process held Python's GIL for
its Keras step loop, so every visitor's prediction waited behind it, and TensorFlow kept
some memory from every run; a process that ends gives all of it back. It runs at a lower
CPU priority (nice ``DIGITREC_TRAIN_NICE``, default 10, set before TensorFlow starts its
threads, so that all of them inherit it): it gets the cores the visitors leave idle.

The protocol, one JSON object per line:

* stdin: the :class:`~digitrec.training.train.TrainConfig` (its fields), then ``stop`` to stop after
  the current batch (a second or so: :data:`digitrec.training.train.CALL_SECONDS`), test
  the model trained so far and save it. Before the first batch has been trained there is
  nothing to keep: the process ends at once. End of input (the server went away) stops it too;
* stdout: ``{"progress": {...}}`` a few times a second while it changes (the new curve
  points only, and the phase: preparing, training, testing, saving), then
  ``{"result": {"card": ..., "path": ...}}`` (both null: stopped before the first batch)
  or ``{"error": "..."}``.

Anything else the process prints goes to stderr, the server's log.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import traceback

from digitrec.server.jobs import TRAIN_NICE

REPORT_SECONDS = 0.25


class Channel:
    """Writes protocol lines to the real stdout; stdout itself now goes to stderr, so that
    nothing TensorFlow or a library prints can break the protocol."""

    def __init__(self):
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def send(self, **message) -> None:
        with self._lock:
            self._out.write(json.dumps(message) + "\n")


def snapshot(progress, sent: int) -> dict:
    return {"total_steps": progress.total_steps, "step": progress.step, "epoch": progress.epoch,
            "started": progress.started, "stopped": progress.stopped, "phase": progress.phase,
            "points": list(progress.points[sent:])}


def lower_priority(nice: int = TRAIN_NICE) -> None:
    """This process at nice ``nice``: every thread it has (Linux gives each thread its own
    nice value; importing numpy and OpenCV started some) and, by inheritance, every thread
    started later (TensorFlow's pools, tf.data's)."""
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the calling thread, and those it starts
        threads = [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # the thread ended meanwhile
            pass


def main() -> int:
    lower_priority()  # before TensorFlow starts its threads
    channel = Channel()
    try:
        fields = json.loads(sys.stdin.readline() or "null")
        if not isinstance(fields, dict):
            raise ValueError("no training settings on stdin")
    except ValueError as exc:
        channel.send(error=f"ValueError: {exc}")
        return 2

    from digitrec.training.recipes import Progress, TrainConfig
    from digitrec.training.train import train

    progress = Progress()

    def listen() -> None:  # "stop", or the server went away: stop after this batch
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        progress.stop.set()
        if progress.step == 0:  # nothing trained yet (the data, the network, the first trace): nothing to keep
            progress.stopped = True
            for child in multiprocessing.active_children():  # the processes making the data go too
                child.terminate()
            channel.send(progress={**snapshot(progress, len(progress.points)), "points": []})
            channel.send(result={"card": None, "path": None})
            os._exit(0)

    threading.Thread(target=listen, name="listen", daemon=True).start()

    finished = threading.Event()
    sent = 0

    def report() -> None:
        nonlocal sent
        last = None
        while True:
            ending = finished.wait(REPORT_SECONDS)
            state = snapshot(progress, sent)
            if state != last:
                channel.send(progress=state)
                sent += len(state["points"])
                last = {**state, "points": []}
            if ending:
                return

    reporter = threading.Thread(target=report, name="report", daemon=True)
    reporter.start()
    try:
        result = train(TrainConfig(**fields), progress=progress)
        path = None if result.path is None else str(result.path)
        outcome, code = {"result": {"card": result.card, "path": path}}, 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        traceback.print_exc()
        outcome, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    finished.set()
    reporter.join()  # its last progress report goes out before the outcome
    channel.send(**outcome)
    return code


if __name__ == "__main__":
    sys.exit(main())
