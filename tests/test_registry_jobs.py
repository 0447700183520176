"""The active-model pointer and the background training jobs, without Streamlit."""
import os
import threading

import pytest

from digitrec import jobs, registry
from digitrec.train import TrainConfig


@pytest.fixture(autouse=True)
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "models"))
    return tmp_path / "models"


def test_shipped_is_active_by_default():
    assert registry.active_model_path() == registry.shipped_model()
    assert registry.is_shipped(registry.active_model_path())


def test_set_active_and_restore(models_dir):
    model = registry.new_model_path("fast")
    assert model.parent == models_dir / "user"
    model.write_bytes(b"weights")
    before = registry.cache_key()
    registry.set_active(model)
    assert registry.active_model_path() == model.resolve()
    assert registry.cache_key() != before
    assert not list(models_dir.glob(".active.*"))  # no temporary file left
    registry.restore_shipped()
    assert registry.active_model_path() == registry.shipped_model()
    registry.restore_shipped()  # twice is fine


def test_a_missing_or_broken_pointer_falls_back_to_shipped(models_dir):
    model = registry.new_model_path("fast")
    model.write_bytes(b"weights")
    registry.set_active(model)
    model.unlink()
    assert registry.active_model_path() == registry.shipped_model()
    (models_dir / "active.json").write_text("{not json")
    assert registry.active_model_path() == registry.shipped_model()


def test_set_active_refuses_a_missing_file(models_dir):
    with pytest.raises(FileNotFoundError):
        registry.set_active(models_dir / "nothing.keras")


def test_plan_gives_curves_a_few_dozen_points():
    small = jobs.plan(TrainConfig(preset="fast", epochs=1, batch_size=16, limit=600))
    assert small.validation == 100 and small.eval_every == 1
    full = jobs.plan(TrainConfig(preset="fast"))
    assert full.validation == jobs.MAX_VALIDATION
    assert 1 <= full.eval_every <= 100


def test_one_training_at_a_time_and_stop(monkeypatch):
    started = threading.Event()

    def fake_train(config, progress=None, mnist=None):
        started.set()
        progress.stop.wait(30)
        progress.stopped = True

    monkeypatch.setattr("digitrec.train.train", fake_train)
    job = jobs.start(TrainConfig(preset="fast"))
    try:
        assert started.wait(30) and job.running and jobs.current() is job
        with pytest.raises(jobs.Busy, match="already running"):
            jobs.start(TrainConfig(preset="fast"))
    finally:
        assert jobs.stop()
        jobs.wait(30)
    assert job.state == "stopped" and not jobs.stop()


def test_a_failing_training_reports_its_error(monkeypatch):
    def broken(config, progress=None, mnist=None):
        raise RuntimeError("out of disk")

    monkeypatch.setattr("digitrec.train.train", broken)
    job = jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert job.state == "failed" and "out of disk" in job.progress.error


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread priorities: Linux")
def test_training_runs_at_a_lower_priority(monkeypatch):
    """The visitors' predictions come first: the training thread, the threads it starts and
    TensorFlow's compute pools run at nice TRAIN_NICE, the caller's thread stays as it was."""
    import tensorflow as tf

    tf.reduce_sum(tf.ones((64, 64)) @ tf.ones((64, 64))).numpy()  # TF's pools exist now
    seen = {}

    def fake_train(config, progress=None, mnist=None):
        seen["self"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = threading.Thread(target=lambda: seen.__setitem__(
            "child", os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        child.start(), child.join()

    monkeypatch.setattr("digitrec.train.train", fake_train)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert seen == {"self": max(mine, jobs.TRAIN_NICE), "child": max(mine, jobs.TRAIN_NICE)}
    pools = [t for t in os.listdir("/proc/self/task")
             if open(f"/proc/self/task/{t}/comm").read().startswith("tf_")]
    assert pools
    assert all(os.getpriority(os.PRIO_PROCESS, int(t)) >= jobs.TRAIN_NICE for t in pools)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
