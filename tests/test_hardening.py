"""Hardening: bad input through the CLI and the Upload page, faults (killed training, corrupt
or unsafe active model, corrupt MNIST), and the security bounds (models only from the
models directory, Keras safe mode, server-side training limits, uploads kept in memory)."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import uuid

import numpy as np
import pytest
from PIL import Image

from digitrec import store
from digitrec.server import jobs, registry
from digitrec.training.recipes import TrainConfig
from tests.conftest import (
    ROOT,
    app_page,
    bad_files,
    check_answer,
    copy_shipped,
    data_dir,
    fake_canvas,
    png_declaring,
    texts,
    train_page,
    wait_for,
)

TIMEOUT = 180


@pytest.fixture(autouse=True)
def _own_models_dir(models_dir):
    """Every test here reads and writes models in a temporary directory."""
    return models_dir


# --- the bad-file list ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(mnist):
    return bad_files(mnist)


def test_the_bad_files_are_what_they_claim(files):
    sizes = {name: len(raw) for name, raw, _ in files}
    assert sizes["empty.png"] == 0 and sizes["bomb.png"] < 2000
    assert sizes["huge-4000.jpg"] < 10 * 2**20
    with Image.open(io.BytesIO(dict((n, r) for n, r, _ in files)["huge-4000.jpg"])) as im:
        assert im.size == (4000, 4000)


def check_record(name: str, expected, record: dict) -> None:
    if expected == "error":
        assert record["digit"] is None and record.get("error"), (name, record)
    elif expected == "none":
        # refused, no digit, or at most a reading flagged as unsure: never a confident digit
        assert record["digit"] is None or record["low_confidence"], (name, record)
    else:
        assert record.get("digit") == expected, (name, record)


def test_cli_predict_json_every_bad_file(files, tmp_path, capsys):
    from digitrec.cli import main

    paths = []
    for name, raw, _ in files:
        path = tmp_path / name
        path.write_bytes(raw)
        paths.append(str(path))
    paths.insert(3, str(tmp_path / "missing.png"))  # a file that is not there at all
    code = main(["predict", "--json", *paths])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    records = [json.loads(line) for line in out.out.splitlines()]
    assert [r["file"] for r in records] == paths  # one line per file, in order
    assert code == 1  # some files could not be read; the others were still processed
    expected = [e for _, _, e in files]
    expected.insert(3, "error")
    for path, want, record in zip(paths, expected, records):
        check_record(os.path.basename(path), want, record)
    by_name = {os.path.basename(r["file"]): r for r in records}
    assert "empty" in by_name["empty.png"]["error"]
    assert "HTML" in by_name["page.png"]["error"]
    assert "limit" in by_name["bomb.png"]["error"]
    assert "no such file" in by_name["missing.png"]["error"]


def test_upload_page_every_bad_file(files):
    at = app_page("upload").run()
    at.file_uploader(key="files").set_value(
        [(name, raw, "image/png" if name.endswith(".png") else "application/octet-stream")
         for name, raw, _ in files]).run()
    assert not at.exception
    for i, (name, _, expected) in enumerate(files):
        check_answer(texts(at, f"prediction-{i}"), name, expected)


@pytest.mark.parametrize("kind", ["white", "black", "noise", "lines"])
def test_no_confident_wrong_digit_on_blank_or_noise(recognizer, kind):
    rng = np.random.default_rng(7)
    image = {
        "white": np.full((280, 280), 255, np.uint8),
        "black": np.zeros((280, 280), np.uint8),
        "noise": rng.integers(0, 256, (280, 280), dtype=np.uint8),
        "lines": np.tile(np.where(np.arange(280) % 20 < 2, 0, 255).astype(np.uint8), (280, 1)),
    }[kind]
    pred = recognizer.predict(image)
    assert pred.digit is None or pred.low_confidence, pred.to_dict()
    number = recognizer.read_number(image)
    assert all(d.low_confidence for d in number.digits) or not number.digits


def test_decompression_bomb_peak_memory_is_bounded():
    """The bomb is refused from its header: the process's peak memory hardly moves (a
    decoded 50,000 x 50,000 image would take 2.5 GB)."""
    import inspect

    script = "import resource, struct, tracemalloc, zlib\n" + inspect.getsource(png_declaring) + \
        textwrap.dedent("""
        from digitrec.reading.decode import ImageError, load_image
        raw = png_declaring(50_000, 50_000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        for _ in range(3):
            try:
                load_image(raw)
                raise SystemExit("decoded a bomb")
            except ImageError as exc:
                message = str(exc)
        peak = tracemalloc.get_traced_memory()[1]
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(raw), peak, after - before, message)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    size, peak, rss_growth_kb, message = out.stdout.split(maxsplit=3)
    assert int(size) < 1000 and "limit" in message
    assert int(peak) < 5 * 2**20, f"Python allocations peaked at {int(peak) / 2**20:.1f} MB"
    assert int(rss_growth_kb) < 50 * 1024, f"peak RSS grew by {int(rss_growth_kb) / 1024:.0f} MB"


def test_the_server_refuses_uploads_over_the_decoders_limit():
    """Streamlit's server refuses an upload over maxUploadSize (MB) before the page sees
    it; load_image refuses the same size again, for every other caller."""
    from digitrec.reading.decode import MAX_BYTES

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_BYTES


def test_uploads_are_decoded_in_memory(files, tmp_path, monkeypatch):
    """The Upload page never writes an upload to disk: no file appears under the name the
    visitor chose (even one with ``..``), in the working directory or the temp dir."""
    tag = uuid.uuid4().hex
    names = [f"../../{tag}-evil.png", f"{tag}-two.png"]
    monkeypatch.chdir(tmp_path)
    seven = dict((n, r) for n, r, _ in files)["sixteen-bit.png"]
    at = app_page("upload").run()
    at.file_uploader(key="files").set_value([(n, seven, "image/png") for n in names]).run()
    assert not at.exception
    assert texts(at, "prediction-0").startswith("7\n")
    found = []
    for top in {tmp_path.parent.parent, tmp_path, tempfile.gettempdir(), ROOT}:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
            found += [os.path.join(dirpath, f) for f in filenames if tag in f]
    assert not found


# --- faults -----------------------------------------------------------------------------------

CHILD = """
import os, sys, threading, time
from digitrec.training import train as T
mode, out, data = sys.argv[1:4]
if mode == "save":  # stop inside store.write_atomically, its temporary files written
    real_replace = os.replace
    def slow_replace(src, dst):
        if str(dst).endswith(".keras"):
            print("SAVING", flush=True)
            time.sleep(600)
        real_replace(src, dst)
    os.replace = slow_replace
progress = T.Progress()
cfg = T.TrainConfig(preset="fast", epochs=2, limit=4000 if mode == "epoch" else 600, data=data, out=out)
threading.Thread(target=T.train, args=(cfg,), kwargs={"progress": progress}, daemon=True).start()
if mode == "epoch":
    while progress.step < 3 or not progress.total_steps:
        time.sleep(0.02)
    print("MID-EPOCH", progress.step, progress.total_steps, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["epoch", "save"])
def test_training_killed_leaves_the_active_model_intact(models_dir, mode):
    """SIGKILL a training process mid-epoch, or while it saves: the active model is the
    same file and still loads; no half-written model is visible as a model; the stale
    temporary files are cleaned."""
    if data_dir() is None:
        pytest.skip("MNIST not available")
    from digitrec.reading.digits import Recognizer

    active = copy_shipped(models_dir / "user")
    registry.set_active(active)
    before = {p.name: p.read_bytes() for p in active.parent.iterdir()}
    out = models_dir / "user" / "killed.keras"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(out), str(data_dir())], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("MID-EPOCH" if mode == "epoch" else "SAVING"), proc.stderr.read()[-2000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert registry.active_status() == (active.resolve(), None)
    assert Recognizer.load(registry.active_model_path()).predict(np.full((50, 50), 255, np.uint8)).digit is None
    leftovers = [p for p in active.parent.iterdir() if p.name.startswith(".")]
    if mode == "save":  # the killed save's temporary files, hidden: one per file of the model
        assert sorted(p.suffix for p in leftovers) == sorted(store.SUFFIXES), leftovers
    assert {p.name: p.read_bytes() for p in active.parent.iterdir() if p not in leftovers} == before
    removed = registry.clean_stale_temporaries(max_age=0)
    assert sorted(removed) == sorted(leftovers)
    assert sorted(p.name for p in active.parent.iterdir()) == sorted(before)


@pytest.mark.slow
def test_stop_and_closed_tab_keep_the_active_model(models_dir, mnist):
    """Stop pressed on a real training: it ends early, saves the model trained so far as a
    new file, and the active model is untouched (the job lives in the server, not in the
    tab: a closed tab changes nothing)."""
    active = copy_shipped(models_dir / "user")
    registry.set_active(active)
    at = train_page(images=6000, epochs=2, batch=32)
    at.button(key="start").click().run()
    job = jobs.current()
    assert job is not None and job.running, [e.value for e in at.error]
    del at  # the tab is closed: the training goes on
    wait_for(lambda: not job.running or job.progress.step >= 5, TIMEOUT)
    assert jobs.stop()
    jobs.wait(TIMEOUT)
    assert job.state == "stopped", job.progress.error
    saved = job.progress.result.path
    assert saved != active and all(saved.with_suffix(s).is_file() for s in store.SUFFIXES)
    assert registry.active_status() == (active.resolve(), None)


@pytest.mark.slow
def test_the_apps_training_process_killed_is_reported_and_changes_nothing(models_dir, mnist):
    """The Train page's training process dies mid-epoch (SIGKILL: out of memory, an
    operator): the job fails with a message, the server goes on, the active model is the
    same file, and no model is left from the run."""
    active = copy_shipped(models_dir / "user")
    registry.set_active(active)
    before = {p.name: p.read_bytes() for p in active.parent.iterdir()}
    job = jobs.start(jobs.plan(TrainConfig(preset="fast", epochs=1, batch_size=16, limit=3000)))
    wait_for(lambda: not job.running or job.progress.step >= 3, TIMEOUT)
    assert job.running, job.progress.error
    os.kill(job.process.pid, signal.SIGKILL)
    jobs.wait(60)
    assert job.state == "failed"
    assert job.progress.error == "the training process ended unexpectedly (exit code -9)"
    assert registry.active_status() == (active.resolve(), None)
    assert {p.name: p.read_bytes() for p in active.parent.iterdir()} == before  # nothing new, nothing changed


def lambda_model(path):
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def test_safe_mode_refuses_a_lambda_layer(tmp_path):
    """A .keras file can carry Python code in a Lambda layer; the places that still load a
    .keras file (exporting it, fine-tuning from it) refuse one. Reading loads only .tflite."""
    from digitrec.training.export import export_file
    from digitrec.training.train import initial_model

    path = lambda_model(tmp_path / "lambda.keras")
    refused = "(?i)lambda.*safe_mode|safe_mode.*lambda"
    with pytest.raises(ValueError, match=refused):
        export_file(path)
    with pytest.raises(ValueError, match=refused):
        initial_model("fast", str(path))
    assert not store.lite_path(path).exists()


def test_cli_export_refuses_a_lambda_layer_with_a_message(tmp_path, capsys):
    from digitrec.cli import main

    path = lambda_model(tmp_path / "lambda.keras")
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "lambda.keras" in err and "Traceback" not in err
    assert not store.lite_path(path).exists()


@pytest.mark.parametrize("problem", ["corrupt", "no-tflite", "missing", "outside", "pointer"])
def test_unusable_active_model_falls_back_with_a_warning(models_dir, tmp_path, problem, monkeypatch):
    """The Draw page still reads digits with the shipped model, and says why."""
    user = models_dir / "user"
    if problem == "corrupt":  # a truncated export
        model = copy_shipped(user, "broken")
        lite = store.lite_path(model)
        lite.write_bytes(lite.read_bytes()[: lite.stat().st_size // 3])
        registry.set_active(model)
        expect = "broken.keras cannot be loaded"
    elif problem == "no-tflite":
        registry.set_active(copy_shipped(user, "old"))
        store.lite_path(user / "old.keras").unlink()
        expect = "old.keras is missing"
    elif problem == "missing":
        registry.set_active(copy_shipped(user, "gone")).unlink()
        expect = "gone.keras is missing"
    elif problem == "outside":
        elsewhere = copy_shipped(tmp_path / "elsewhere")
        models_dir.mkdir(parents=True, exist_ok=True)
        (models_dir / "active.json").write_text(json.dumps({"path": str(elsewhere)}))
        expect = "outside the models directory"
    else:
        models_dir.mkdir(parents=True, exist_ok=True)
        (models_dir / "active.json").write_text("{half a reco")
        expect = "pointer active.json is unreadable"
    drawing = np.full((320, 320), 255, np.uint8)
    drawing[60:260, 150:170] = 0  # a 1
    fake_canvas(monkeypatch, np.dstack([drawing] * 3 + [np.full_like(drawing, 255)]))
    at = app_page("draw").run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(expect in w and "Using the shipped model" in w for w in warnings), warnings
    assert texts(at, "prediction").startswith("1\n")


def test_corrupt_mnist_is_caught_before_training(tmp_path, monkeypatch):
    import gzip

    from digitrec.training import train as train_mod
    from digitrec.training.datasets import CHECKSUMS, DataError

    source = data_dir()
    if source is None:
        pytest.skip("MNIST not available")
    copy = tmp_path / "mnist"
    copy.mkdir()
    for name in CHECKSUMS:
        for candidate in (source / f"{name}.gz", source / name):
            if candidate.exists():
                shutil.copy(candidate, copy / candidate.name)
    gz = copy / "train-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(gz.read_bytes()))
    raw[5000] ^= 0xFF  # one pixel changed: parses fine, the checksum differs
    gz.write_bytes(gzip.compress(bytes(raw)))

    def must_not_build(*a, **k):
        raise AssertionError("a model was built from corrupt data")

    monkeypatch.setattr(train_mod, "build_model", must_not_build)
    out = tmp_path / "models" / "x.keras"
    with pytest.raises(DataError, match="train-images.*SHA-256"):
        train_mod.train(TrainConfig(preset="fast", data=str(copy), out=str(out)))
    assert not out.exists()
    # and through the CLI: a message, exit code 2, no traceback
    from digitrec.cli import main
    assert main(["train", "--preset", "fast", "--data", str(copy), "--out", str(out)]) == 2


# --- security ---------------------------------------------------------------------------------

def test_set_active_only_inside_the_models_directory(models_dir, tmp_path):
    inside = copy_shipped(models_dir / "user")
    registry.set_active(inside)
    outside = copy_shipped(tmp_path, "outside")
    with pytest.raises(registry.OutsideModelsDir):
        registry.set_active(outside)
    with pytest.raises(registry.OutsideModelsDir):  # a path that climbs out with ..
        registry.set_active(models_dir / "user" / ".." / ".." / "outside.keras")
    link = models_dir / "user" / "link.keras"
    link.symlink_to(outside)  # a symlink inside that points outside
    with pytest.raises(registry.OutsideModelsDir):
        registry.set_active(link)
    assert registry.active_model_path() == inside.resolve()
    assert registry.is_allowed(store.DIGIT_MODEL)
    # a pointer edited by hand to point outside is not followed either
    (models_dir / "active.json").write_text(json.dumps({"path": "../outside.keras"}))
    path, problem = registry.active_status()
    assert path == store.DIGIT_MODEL and "outside" in problem


def test_app_loader_refuses_paths_outside(tmp_path):
    import app_shared

    outside = copy_shipped(tmp_path, "outside")
    with pytest.raises(registry.OutsideModelsDir):
        app_shared._load(str(outside), 0.0)


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 1000}, "epochs must be 1 to 30"),
    ({"epochs": 0}, "epochs must be 1 to 30"),
    ({"batch_size": 1_000_000}, "batch size must be 16 to 512"),
    ({"batch_size": 1}, "batch size must be 16 to 512"),
    ({"limit": 10**9}, "training images must be 200 to 60,000"),
    ({"limit": 5}, "training images must be 200 to 60,000"),
    ({"validation": 50_000}, "validation images"),
    ({"learning_rate": 50.0}, "learning rate"),
    ({"preset": "huge"}, "unknown preset"),
])
def test_training_bounds_are_enforced_server_side(monkeypatch, settings, message):
    def must_not_train(*a, **k):
        raise AssertionError("trained with settings out of bounds")

    monkeypatch.setattr("digitrec.training.train.train", must_not_train)
    before = jobs.current()
    with pytest.raises(jobs.Refused, match=message):
        jobs.start(TrainConfig(**({"preset": "fast"} | settings)))
    assert jobs.current() is before


def test_train_page_reports_a_refused_setting(monkeypatch, fake_worker):
    """A setting the server refuses (here a preset's learning rate, which no widget
    bounds) is shown as the refusal: no traceback, no training. (Streamlit itself puts a
    widget value outside the widget's bounds back to its default.)"""
    from dataclasses import replace

    from digitrec.training.recipes import PRESETS

    fake_worker("done")  # should a training start after all, nothing heavy runs
    monkeypatch.setitem(PRESETS, "fast", replace(PRESETS["fast"], learning_rate=50.0))
    at = train_page()
    before = jobs.current()
    at.button(key="start").click().run()
    assert not at.exception
    assert any("learning rate must be in (0, 1]" in e.value for e in at.error), [e.value for e in at.error]
    assert jobs.current() is before


def test_presets_fit_the_bounds():
    from digitrec.training.recipes import PRESETS

    for name in PRESETS:
        jobs.check(jobs.plan(TrainConfig(preset=name)))


def test_a_new_training_cleans_stale_temporaries(models_dir, fake_worker):
    fake_worker("done")
    user = models_dir / "user"
    user.mkdir(parents=True)
    stale, fresh = user / ".old.keras.abc123.tmp.keras", user / ".saving.keras.def456.tmp.keras"
    for path in (stale, fresh):
        path.write_bytes(b"half a model")
    os.utime(stale, (1, 1))  # from a save killed long ago; `fresh` may be a save in progress
    jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert not stale.exists() and fresh.exists()
