"""The active-model pointer and the background training jobs, without Streamlit."""
import json
import math
import os
import subprocess
import sys
import threading

import pytest

from digitrec import store
from digitrec.server import jobs, registry
from digitrec.training.recipes import TrainConfig
from tests.conftest import copy_shipped, wait_for


@pytest.fixture(autouse=True)
def _own_models_dir(models_dir):
    """Every test here reads and writes models in a temporary directory."""
    return models_dir


def test_shipped_is_active_by_default():
    assert registry.active_status() == (store.DIGIT_MODEL, None)
    assert registry.is_shipped(registry.active_model_path())


def test_set_active_and_restore(models_dir):
    model = copy_shipped(models_dir / "user")
    before = registry.cache_key()
    registry.set_active(model)
    assert registry.active_status() == (model.resolve(), None)
    assert registry.cache_key() != before
    assert not list(models_dir.glob(".active.*"))  # no temporary file left
    registry.restore_shipped()
    assert registry.active_model_path() == store.DIGIT_MODEL
    registry.restore_shipped()  # twice is fine


def test_a_missing_or_broken_pointer_falls_back_to_shipped(models_dir):
    model = copy_shipped(models_dir / "user")
    registry.set_active(model)
    model.unlink()
    assert registry.active_model_path() == store.DIGIT_MODEL
    (models_dir / "active.json").write_text("{not json")
    path, problem = registry.active_status()
    assert path == store.DIGIT_MODEL and "unreadable" in problem


def test_a_model_without_its_tflite_is_not_used(models_dir):
    """Reading loads the .tflite: a model saved before models were exported (or whose
    export was deleted) is reported missing, and the shipped model answers."""
    model = copy_shipped(models_dir / "user", "old")
    registry.set_active(model)
    store.lite_path(model).unlink()
    assert registry.active_status() == (store.DIGIT_MODEL, "the active model old.keras is missing")


def test_replacing_the_tflite_changes_the_cache_key(models_dir):
    model = copy_shipped(models_dir / "user")
    before = registry.cache_key(model)
    os.utime(store.lite_path(model), (1, 1))
    assert registry.cache_key(model) != before and registry.cache_key(model)[0] == str(model)


def test_stale_temporaries_are_removed_and_nothing_else(models_dir):
    """A save killed between its writes and its renames leaves hidden ``.NAME.*.tmp.SUFFIX``
    files (store.write_atomically): removed once older than the age given (a younger one
    may be a save in progress); models and other files are never touched."""
    user = models_dir / "user"
    keep = sorted(p.name for p in copy_shipped(user).parent.iterdir()) + ["notes.txt"]
    (user / "notes.txt").write_text("mine")
    stale = [user / ".m.keras.k2j4.tmp.keras", user / ".m.tflite.x9q1.tmp.tflite",
             models_dir / ".active.json.a1.tmp.json"]
    fresh = user / ".n.keras.p0w3.tmp.keras"
    for path in [*stale, fresh]:
        path.write_bytes(b"half a file")
    for path in stale:
        os.utime(path, (1, 1))
    assert sorted(registry.clean_stale_temporaries()) == sorted(stale)
    assert fresh.exists() and sorted(p.name for p in user.iterdir() if p != fresh) == keep
    assert registry.clean_stale_temporaries(max_age=0) == [fresh]


def test_the_models_trained_here_are_listed_newest_first(models_dir):
    assert registry.models() == []
    older, newer = copy_shipped(models_dir / "user", "older"), copy_shipped(models_dir / "user", "newer")
    for path, created in ((older, "2025-01-01T10:00:00"), (newer, "2025-02-01T10:00:00")):
        store.write_json(store.card_path(path), {**store.read_card(path), "created": created})
    halfway = copy_shipped(models_dir / "user", "halfway")
    store.lite_path(halfway).unlink()  # reading could not load it
    (models_dir / "user" / ".newest.keras.x.tmp.keras").write_bytes(b"")  # a save in progress
    listed = registry.models()
    assert [p.name for p, _ in listed] == ["newer.keras", "older.keras"]
    assert listed[0][1]["test"] == store.read_card(store.DIGIT_MODEL)["test"]  # each with its card


def test_set_active_refuses_a_missing_file(models_dir):
    with pytest.raises(FileNotFoundError):
        registry.set_active(models_dir / "nothing.keras")


def test_plan_gives_curves_a_few_dozen_points():
    """About CURVE_POINTS points on the curves whatever the run's length, and one at
    least every 100 batches on a long run."""
    def points(cfg, images=jobs.TRAIN_IMAGES):
        return math.ceil((images - cfg.validation) / cfg.batch_size) * cfg.epochs // cfg.eval_every

    small = jobs.plan(TrainConfig(preset="fast", epochs=1, batch_size=16, limit=600))
    assert small.validation == 100 and small.eval_every == 1 and points(small, 600) == 32
    full = jobs.plan(TrainConfig(preset="fast"))
    assert full.validation == jobs.MAX_VALIDATION
    assert jobs.CURVE_POINTS <= points(full) < 1.5 * jobs.CURVE_POINTS
    long = jobs.plan(TrainConfig(preset="fast", epochs=jobs.MAX_EPOCHS, batch_size=16))
    assert long.eval_every == 100


def test_one_training_at_a_time_and_stop(fake_worker):
    fake_worker("wait")
    job = jobs.start(TrainConfig(preset="fast"))
    try:
        wait_for(lambda: job.progress.step >= 1)
        assert job.running and jobs.current() is job and job.progress.total_steps == 100
        assert job.progress.points[0]["loss"] == 2.0  # the curves' points come through
        with pytest.raises(jobs.Busy, match="already running"):
            jobs.start(TrainConfig(preset="fast"))
    finally:
        assert jobs.stop()
        jobs.wait(30)
    assert job.state == "stopped" and not jobs.stop()
    assert job.process.returncode == 0 and job.progress.result.card["preset"] == "fast"


def test_a_failing_training_reports_its_error(fake_worker):
    fake_worker("fail")
    job = jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert job.state == "failed" and job.progress.error == "RuntimeError: out of disk"


def test_a_training_process_that_dies_is_reported(fake_worker):
    fake_worker("crash")
    job = jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert job.state == "failed"
    assert job.progress.error == "the training process ended unexpectedly (exit code 9)"


def test_the_worker_refuses_a_missing_config():
    out = subprocess.run([sys.executable, "-m", "digitrec.server.worker"], input="", text=True,
                         capture_output=True, env=jobs.worker_env(), timeout=60)
    assert out.returncode == 2
    assert json.loads(out.stdout) == {"error": "ValueError: no training settings on stdin"}


def nice_of_threads(pid: int) -> dict[str, int]:
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:  # the thread ended meanwhile
            continue
        found[f"{stat[stat.index('(') + 1:stat.rindex(')')]}-{tid}"] = int(stat[stat.rindex(")") + 2:].split()[16])
    return found


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread priorities: Linux")
def test_a_real_training_runs_apart_at_a_lower_priority_and_stops(models_dir, mnist):
    """The visitors' predictions come first: the training runs in its own process, every
    thread of it (TensorFlow's pools, tf.data's) at nice TRAIN_NICE; this process keeps
    its priority. Stop ends it after a batch, with the model trained so far saved."""
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job = jobs.start(jobs.plan(TrainConfig(preset="fast", epochs=1, batch_size=16, limit=3000)))
    try:
        wait_for(lambda: job.progress.step >= 2 or not job.running, timeout=120)
        assert job.running, job.progress.error
        threads = nice_of_threads(job.process.pid)
        assert len(threads) > 3 and any(name.startswith("tf_") for name in threads), threads
        assert all(nice >= max(mine, jobs.TRAIN_NICE) for nice in threads.values()), threads
        assert job.process.pid != os.getpid()
    finally:
        jobs.stop()
        jobs.wait(120)
    assert job.state == "stopped", job.progress.error
    assert job.progress.result.card["stopped_early"]
    assert all(job.progress.result.path.with_suffix(s).is_file() for s in store.SUFFIXES)
    assert job.progress.points and job.process.returncode == 0
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_stop_before_the_first_batch_ends_the_training_process_at_once(models_dir, mnist):
    """Stop while the data and the network are being made: nothing is trained yet, so
    nothing is kept and nothing waits for a batch; the job ends stopped, with no model."""
    job = jobs.start(jobs.plan(TrainConfig(preset="fast", epochs=1, limit=600)))
    try:
        assert job.progress.step == 0 and jobs.stop()
    finally:
        jobs.wait(120)
    assert job.state == "stopped" and job.progress.result is None, job.progress.error
    assert job.process.returncode == 0
    assert not list(store.user_dir().glob("*.keras")) if store.user_dir().exists() else True


def test_progress_counts_batches_within_the_epoch():
    from digitrec.training.recipes import Progress

    p = Progress(total_steps=3 * 227)
    assert p.position(3) == (1, 0, 227)
    p.step = 242
    assert p.position(3) == (2, 15, 227)  # not "epoch 2, batch 242 of 681"
    p.step = 227
    assert p.position(3) == (1, 227, 227)  # the first epoch's last batch
    p.step = 3 * 227
    assert p.position(3) == (3, 227, 227)


def test_a_finished_job_leaves_no_process_or_pipe_behind(fake_worker):
    fake_worker("done")
    job = jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert job.state == "done" and job.process.poll() == 0
    assert job.process.stdin.closed and job.process.stdout.closed
    job.tell("stop")  # too late: nothing happens, nothing raised
