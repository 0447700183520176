"""Issue 6: bad input through the CLI and the Upload page, faults (killed training, corrupt
or unsafe active model, corrupt MNIST), and the security bounds (models only from the
models directory, Keras safe mode, server-side training limits, uploads kept in memory)."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import uuid
import zlib

import numpy as np
import pytest
from PIL import Image

from digitrec.server import jobs, registry
from digitrec.training.train import TrainConfig
from tests.conftest import ROOT, data_dir, paper_digit

TIMEOUT = 180


@pytest.fixture(autouse=True)
def _own_models_dir(models_dir):
    """Every test here reads and writes models in a temporary directory."""
    return models_dir


# --- the bad-file list ------------------------------------------------------------------------

def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header declares width x height pixels."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


SEVEN = 0  # mnist.x_test[0] is a 7


def check_answer(text: str, name: str, expected) -> None:
    """What a page shows for one of :func:`bad_files`: an error naming the file, no digit
    (or a reading marked "Not sure"), or the expected digit."""
    if expected == "error":
        assert text.startswith(f"No digit found: cannot read {name}"), (name, text)
    elif expected == "none":
        assert text.startswith("No digit found") or "Not sure" in text, (name, text)
    else:
        assert text.startswith(f"{expected}\n"), (name, text)


def bad_files(mnist) -> list[tuple[str, bytes, str]]:
    """(file name, bytes, expected): expected is "error" (the file is refused with a
    message), "none" (read, but no digit: never a confident guess) or a digit."""
    seven = paper_digit(mnist.x_test[SEVEN])  # 300x400, dark 7 on light paper
    pil = Image.fromarray(seven)
    png_full = encode(pil, "PNG")
    jpg_full = encode(pil.convert("RGB"), "JPEG", quality=90)
    palette = pil.convert("P", palette=Image.ADAPTIVE, colors=16)
    paper_index = int(np.asarray(palette)[2, 2])
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to display
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(seven, 1))).convert("RGB")
    frames = [pil, Image.new("L", pil.size, 235)]
    huge = Image.fromarray(paper_digit(mnist.x_test[SEVEN], size=2600, canvas=(4000, 4000)))
    noise = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
    return [
        ("empty.png", b"", "error"),
        ("random.png", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "error"),
        ("truncated.png", png_full[: len(png_full) // 2], "error"),
        ("truncated.jpg", jpg_full[: len(jpg_full) // 2], "error"),
        ("page.png", b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>", "error"),
        ("one-pixel.png", encode(Image.new("L", (1, 1), 0), "PNG"), "none"),
        ("bomb.png", png_declaring(50_000, 50_000), "error"),
        ("sixteen-bit.png", encode(Image.fromarray(seven.astype(np.uint16) * 257, "I;16"), "PNG"), 7),
        ("cmyk.jpg", encode(pil.convert("CMYK"), "JPEG", quality=95), 7),
        ("animated.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), 7),
        ("palette-transparent.png", encode(palette, "PNG", transparency=paper_index), 7),
        ("exif-rotated.jpg", encode(rotated, "JPEG", exif=exif, quality=95), 7),
        ("white.png", encode(Image.new("L", (300, 300), 255), "PNG"), "none"),
        ("black.png", encode(Image.new("L", (300, 300), 0), "PNG"), "none"),
        ("noise.png", encode(Image.fromarray(noise), "PNG"), "none"),
        ("huge-4000.jpg", encode(huge, "JPEG", quality=85), 7),
    ]


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
    from tests.test_app import page, texts

    at = page("upload").run()
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


def test_upload_limits_are_enforced_by_the_server():
    from digitrec.reading.decode import MAX_BYTES

    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert "maxUploadSize = 10" in config.replace(" ", " ")  # MB, refused by Streamlit's server
    assert MAX_BYTES == 10 * 2**20  # and again by load_image, for every other caller


def test_uploads_are_decoded_in_memory(files, tmp_path, monkeypatch):
    """The Upload page never writes an upload to disk: no file appears under the name the
    visitor chose (even one with ``..``), in the working directory or the temp dir."""
    from tests.test_app import page, texts

    tag = uuid.uuid4().hex
    names = [f"../../{tag}-evil.png", f"{tag}-two.png"]
    monkeypatch.chdir(tmp_path)
    seven = dict((n, r) for n, r, _ in files)["sixteen-bit.png"]
    at = page("upload").run()
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

def copy_shipped(models_dir, name="mine.keras"):
    target = models_dir / "user" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(registry.shipped_model(), target)
    return target


CHILD = """
import os, sys, threading, time
from digitrec.training import train as T
mode, out, data = sys.argv[1:4]
if mode == "save":  # stop inside save_atomic, with the temporary files written
    real_replace = os.replace
    def slow_replace(src, dst):
        if str(dst).endswith(".keras"):
            print("SAVING", flush=True)
            time.sleep(600)
        real_replace(src, dst)
    T.os.replace = slow_replace
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

    active = copy_shipped(models_dir)
    registry.set_active(active)
    before = active.read_bytes()
    out = models_dir / "user" / "killed.keras"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(out), str(data_dir())], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("MID-EPOCH" if mode == "epoch" else "SAVING"), proc.stderr.read()[-2000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert registry.active_status() == (active.resolve(), None)
    assert active.read_bytes() == before
    assert Recognizer.load(registry.active_model_path()).predict(np.full((50, 50), 255, np.uint8)).digit is None
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert registry.user_models() == [active]
    leftovers = [p for p in (models_dir / "user").iterdir() if p.name.startswith(".")]
    if mode == "save":
        assert leftovers  # the killed save's temporary files, hidden
    removed = registry.clean_stale_temporaries(max_age=0)
    assert sorted(removed) == sorted(leftovers)
    assert sorted(p.name for p in (models_dir / "user").iterdir()) == ["mine.keras"]


@pytest.mark.slow
def test_stop_and_closed_tab_keep_the_active_model(models_dir, mnist):
    """Stop pressed on a real training: it ends early, saves the model trained so far as a
    new file, and the active model is untouched (the job lives in the server, not in the
    tab: a closed tab changes nothing)."""
    from tests.test_app import page

    active = copy_shipped(models_dir)
    registry.set_active(active)
    at = page("train").run()
    at.number_input(key="images").set_value(6000)
    at.slider(key="epochs-fast").set_value(2)
    at.select_slider(key="batch-fast").set_value(32)
    at.button(key="start").click().run()
    job = jobs.current()
    assert job is not None and job.running, [e.value for e in at.error]
    del at  # the tab is closed: the training goes on
    import time
    while job.running and job.progress.step < 5:
        time.sleep(0.05)
    assert jobs.stop()
    jobs.wait(TIMEOUT)
    assert job.state == "stopped", job.progress.error
    assert job.progress.result.path.exists() and job.progress.result.path != active
    assert registry.active_status() == (active.resolve(), None)


@pytest.mark.slow
def test_the_apps_training_process_killed_is_reported_and_changes_nothing(models_dir, mnist):
    """The Train page's training process dies mid-epoch (SIGKILL: out of memory, an
    operator): the job fails with a message, the server goes on, the active model is the
    same file, and no model is left from the run."""
    import time

    active = copy_shipped(models_dir)
    registry.set_active(active)
    before = active.read_bytes()
    job = jobs.start(jobs.plan(TrainConfig(preset="fast", epochs=1, batch_size=16, limit=3000)))
    end = time.time() + TIMEOUT
    while job.running and job.progress.step < 3 and time.time() < end:
        time.sleep(0.05)
    assert job.running, job.progress.error
    os.kill(job.process.pid, signal.SIGKILL)
    jobs.wait(60)
    assert job.state == "failed"
    assert job.progress.error == "the training process ended unexpectedly (exit code -9)"
    assert registry.active_status() == (active.resolve(), None) and active.read_bytes() == before
    assert registry.user_models() == [active]


def corrupt_keras(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = registry.shipped_model().read_bytes()
    path.write_bytes(raw[: len(raw) // 3])  # a truncated zip
    return path


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
    from digitrec.reading.digits import Recognizer

    path = lambda_model(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="(?i)lambda.*safe_mode|safe_mode.*lambda"):
        Recognizer.load(path)


@pytest.mark.parametrize("problem", ["corrupt", "lambda", "missing", "outside", "pointer"])
def test_unusable_active_model_falls_back_with_a_warning(models_dir, tmp_path, problem, monkeypatch):
    """The Draw page still reads digits with the shipped model, and says why."""
    from tests.test_app import fake_canvas, page, texts

    user = models_dir / "user"
    if problem == "corrupt":
        registry.set_active(corrupt_keras(user / "broken.keras"))
        expect = "broken.keras cannot be loaded"
    elif problem == "lambda":
        registry.set_active(lambda_model(user / "lambda.keras"))
        expect = "lambda.keras cannot be loaded"
    elif problem == "missing":
        registry.set_active(copy_shipped(models_dir, "gone.keras")).unlink()
        expect = "gone.keras is missing"
    elif problem == "outside":
        elsewhere = shutil.copy(registry.shipped_model(), tmp_path / "elsewhere.keras")
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
    at = page("draw").run()
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
    inside = copy_shipped(models_dir)
    registry.set_active(inside)
    outside = shutil.copy(registry.shipped_model(), tmp_path / "outside.keras")
    with pytest.raises(registry.OutsideModelsDir):
        registry.set_active(outside)
    with pytest.raises(registry.OutsideModelsDir):  # a path that climbs out with ..
        registry.set_active(models_dir / "user" / ".." / ".." / "outside.keras")
    link = models_dir / "user" / "link.keras"
    link.symlink_to(outside)  # a symlink inside that points outside
    with pytest.raises(registry.OutsideModelsDir):
        registry.set_active(link)
    assert registry.active_model_path() == inside.resolve()
    assert registry.is_allowed(registry.shipped_model())
    # a pointer edited by hand to point outside is not followed either
    (models_dir / "active.json").write_text(json.dumps({"path": "../outside.keras"}))
    path, problem = registry.active_status()
    assert path == registry.shipped_model() and "outside" in problem


def test_app_loader_refuses_paths_outside(tmp_path):
    import app_shared

    outside = shutil.copy(registry.shipped_model(), tmp_path / "outside.keras")
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


def test_train_page_reports_a_refused_setting(monkeypatch):
    """Whatever reaches the page (a tampered widget value), the refusal is shown, no
    traceback, no training."""
    from tests.test_app import train_page

    monkeypatch.setattr(jobs, "MAX_EPOCHS", 1)
    at = train_page(epochs=3)
    at.button(key="start").click().run()
    assert not at.exception
    assert any("epochs must be 1 to 1" in e.value for e in at.error), [e.value for e in at.error]


def test_presets_fit_the_bounds():
    from digitrec.training.networks import PRESETS

    for name in PRESETS:
        jobs.check(jobs.plan(TrainConfig(preset=name)))


def test_a_new_training_cleans_stale_temporaries(models_dir, fake_worker):
    fake_worker("done")
    user = models_dir / "user"
    user.mkdir(parents=True)
    stale, fresh = user / ".old.abc123.keras", user / ".saving.def456.keras"
    for path in (stale, fresh):
        path.write_bytes(b"half a model")
    os.utime(stale, (1, 1))  # from a save killed long ago; `fresh` may be a save in progress
    jobs.start(TrainConfig(preset="fast"))
    jobs.wait(30)
    assert not stale.exists() and fresh.exists()
