"""The active-model pointer and the background training jobs, without Streamlit."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from digitrec.server import jobs, registry
from digitrec.training.train import TrainConfig


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


def wait_for(condition, timeout=60.0):
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


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
def test_a_real_training_runs_apart_at_a_lower_priority_and_stops(models_dir, mnist, monkeypatch):
    """The visitors' predictions come first: the training runs in its own process, every
    thread of it (TensorFlow's pools, tf.data's) at nice TRAIN_NICE; this process keeps
    its priority. Stop ends it after a batch, with the model trained so far saved."""
    from tests.conftest import data_dir

    monkeypatch.setenv("DIGITREC_DATA", str(data_dir()))
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
    assert job.progress.result.path.exists() and job.progress.result.card["stopped_early"]
    assert job.progress.points and job.process.returncode == 0
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_a_finished_job_leaves_no_process_or_pipe_behind(fake_worker):
    fake_worker("done")
    job = jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert job.state == "done" and job.process.poll() == 0
    assert job.process.stdin.closed and job.process.stdout.closed
    job.tell("stop")  # too late: nothing happens, nothing raised
