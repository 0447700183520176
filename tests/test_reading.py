"""The reading path runs without TensorFlow: the library and the CLI in a fresh process,
the LiteRT engine's batches and named inputs, and model files that cannot be read."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from digitrec import store
from digitrec.reading import engine
from digitrec.reading.digits import Recognizer
from tests.conftest import ROOT

HEAVY = ("tensorflow", "keras")  # what reading must never import


def heavy(modules, training: bool = False) -> list[str]:
    """The TensorFlow / Keras modules (and, with ``training``, digitrec.training ones) among ``modules``."""
    return sorted(m for m in modules if m.split(".")[0] in HEAVY
                  or (training and m.startswith("digitrec.training")))


def python(*args: str, **kw) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh process at the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120, **kw)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A drawn 1, and a row 1 0 1: read the same by any digit model worth shipping."""
    d = tmp_path_factory.mktemp("reading")
    one = np.full((120, 120), 235, np.uint8)
    cv2.line(one, (60, 20), (60, 100), 20, 9)
    zero = np.full((120, 120), 235, np.uint8)
    cv2.ellipse(zero, (60, 60), (26, 40), 0, 0, 360, 20, 9)
    cv2.imwrite(str(d / "one.png"), one)
    cv2.imwrite(str(d / "row.png"), np.concatenate([one, zero, one], axis=1))
    return {"one": d / "one.png", "row": d / "row.png"}


LIBRARY = """
import json, sys
import digitrec
from digitrec import Recognizer, load_image
recognizer = Recognizer.load()
digit = recognizer.predict(load_image(sys.argv[1]))
number = recognizer.read_number(load_image(sys.argv[2]))
print(json.dumps({"digit": digit.digit, "text": number.text, "confidence": number.confidence,
                  "modules": sorted(sys.modules)}))
"""


def test_the_library_reads_without_tensorflow_or_training_code(pictures):
    out = python("-c", LIBRARY, str(pictures["one"]), str(pictures["row"]))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["digit"], result["text"]) == (1, "101")
    assert result["confidence"] > 0  # the detector and the recognizer ran
    assert heavy(result["modules"], training=True) == []


# The CLI as `python -m digitrec ...`, the modules it loaded written to a file at exit.
CLI = """
import atexit, runpy, sys
modules_file = sys.argv.pop(1)
atexit.register(lambda: open(modules_file, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "digitrec"
runpy.run_module("digitrec", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("command, answer", [("predict", ": 1  confidence"), ("read", ": 101")])
def test_the_cli_reads_without_tensorflow_and_prints_only_its_answer(pictures, tmp_path, command, answer):
    file = pictures["one" if command == "predict" else "row"]
    modules = tmp_path / "modules.txt"
    out = python("-c", CLI, str(modules), command, str(file))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{file}{answer}"), out.stdout
    assert out.stderr == ""  # no TensorFlow, absl or LiteRT lines
    assert heavy(modules.read_text().split()) == []


def test_python_m_digitrec_predict_writes_nothing_on_stderr(pictures):
    out = python("-m", "digitrec", "predict", "--json", str(pictures["one"]))
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert json.loads(out.stdout)["digit"] == 1


# --- the engine -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digit_network():
    return engine.load(store.lite_path(store.DIGIT_MODEL))


@pytest.mark.parametrize("n", [engine.SMALL + 1, engine.BATCH + engine.SMALL + 3])
def test_a_large_batch_gives_what_one_at_a_time_gives(digit_network, n):
    """Past SMALL the batch runs on another interpreter (every core), past BATCH in chunks."""
    x = np.random.default_rng(n).random((n, 28, 28, 1), dtype=np.float32)
    batch = digit_network(x)
    singles = np.concatenate([digit_network(x[i: i + 1]) for i in range(n)])
    assert batch.shape == (n, 11)
    np.testing.assert_allclose(batch, singles, atol=1e-5)


MANY_THREADS = """
import os, sys, threading
from digitrec import store
from digitrec.reading import engine

paths = [store.lite_path(p) for p in (store.DIGIT_MODEL, store.DETECTOR, store.RECOGNIZER)]
start = threading.Barrier(8)
failed = []

def build(i):
    start.wait()
    try:
        for k in range(3):
            engine.Network(paths[(i + k) % 3])  # each start: its first run, as loading does
        engine.load(paths[i % 3])
    except Exception as exc:
        failed.append(repr(exc))

threads = [threading.Thread(target=build, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
os.write(2, b"fd 2 still reaches stderr\\n")
print("sys.stderr too", file=sys.stderr, flush=True)
print(failed)
"""


def test_networks_started_from_many_threads_at_once_leave_stderr_as_it_was():
    """Eight threads start the shipped networks at once: afterwards the process's stderr
    is still its stderr, and LiteRT's "Created ... delegate" line was not let through."""
    out = python("-c", MANY_THREADS)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
    assert out.stderr == "fd 2 still reaches stderr\nsys.stderr too\n", out.stderr


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
@pytest.mark.parametrize("threads", [1, 3])
def test_a_network_runs_on_the_threads_it_says(threads):
    """Batches up to SMALL start no thread; a larger batch runs on ``network.threads``
    threads (the caller's and threads - 1 more), and on no more."""
    before = _threads()
    network = engine.Network(store.lite_path(store.DIGIT_MODEL), threads=threads)
    network(np.zeros((engine.SMALL, 28, 28, 1), np.float32))
    assert network.threads == threads and _threads() == before
    network(np.zeros((engine.BATCH + 1, 28, 28, 1), np.float32))
    assert _threads() == before + threads - 1


def test_the_default_threads_are_the_cores_at_most_max_threads():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    network = engine.Network(store.lite_path(store.DIGIT_MODEL))
    assert network.threads == min(cores, engine.MAX_THREADS)
    with pytest.raises(ValueError, match="threads must be 1 or more"):
        engine.Network(store.lite_path(store.DIGIT_MODEL), threads=-2)


def test_a_digit_does_not_wait_behind_a_large_batch():
    """A large batch holds its own interpreter only: while one runs (its lock held here),
    a single digit is read on the one-thread interpreter."""
    network = engine.Network(store.lite_path(store.DIGIT_MODEL))
    read = threading.Event()
    with network._large_lock:  # a large batch in progress
        worker = threading.Thread(target=lambda: (network(np.zeros((1, 28, 28, 1), np.float32)), read.set()))
        worker.start()
        assert read.wait(60), "a single digit waited for the large batch"
    worker.join()


def test_a_file_is_loaded_once_per_version(tmp_path):
    path = tmp_path / "m.tflite"
    shutil.copyfile(store.lite_path(store.DIGIT_MODEL), path)
    first = engine.load(path)
    assert engine.load(path) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file rewritten
    assert engine.load(path) is not first


def test_recognizers_share_the_loaded_networks():
    a, b = Recognizer.load(), Recognizer.load(store.lite_path(store.DIGIT_MODEL))
    assert a.network is b.network and a.detector is b.detector and a.recognizer is b.recognizer
    assert a.card == b.card and a.card["test"]["n"] == 10000
    alone = Recognizer.load(numbers=False)
    assert alone.network is a.network
    with pytest.raises(engine.ModelError, match="no detector"):
        alone.read(np.zeros((40, 40), np.uint8))


# --- model files that cannot be read ----------------------------------------------------------

@pytest.fixture
def bad_models(tmp_path):
    """A missing model, a text file and a cut-short one named .tflite, and a .keras
    saved without its .tflite."""
    (tmp_path / "notes.tflite").write_text("not a network\n")
    (tmp_path / "short.tflite").write_bytes(store.lite_path(store.DIGIT_MODEL).read_bytes()[:5000])
    shutil.copyfile(store.DIGIT_MODEL, tmp_path / "mine.keras")
    return tmp_path


@pytest.mark.parametrize("name, message", [
    ("missing.tflite", r"missing\.tflite not found"),
    ("notes.tflite", r"cannot load notes\.tflite"),
    ("short.tflite", r"cannot load short\.tflite"),
    ("mine.keras", r"mine\.keras has no mine\.tflite .*python -m digitrec export .*mine\.keras"),
])
def test_a_model_that_cannot_be_read_is_named(bad_models, name, message):
    with pytest.raises(engine.ModelError, match=message):
        Recognizer.load(bad_models / name)


@pytest.mark.parametrize("name", ["notes.tflite", "mine.keras"])
def test_the_cli_says_in_one_line_which_model_it_cannot_read(bad_models, pictures, name):
    out = python("-m", "digitrec", "predict", "--model", str(bad_models / name), str(pictures["one"]))
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("error: "), out.stderr
    assert name in out.stderr
