"""The app's pages under streamlit.testing.v1.AppTest: widgets in, digitrec results out.

Every test points DIGITREC_MODELS_DIR at a temporary directory: the real models/ is
never written. The drawing canvas is a browser component that AppTest cannot draw on, so
the Draw tests replace st_canvas with a stand-in that returns a given image."""
from __future__ import annotations

import io
import sys
import time
import types

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from digitrec.server import jobs, registry
from tests.conftest import ROOT, paper_digit

TIMEOUT = 120  # seconds for one script run: 2 shared cores, first model load


@pytest.fixture(autouse=True)
def _own_models_dir(models_dir):
    """Every test here reads and writes models in a temporary directory."""
    return models_dir


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


def png(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


def texts(at: AppTest, key: str) -> str:
    """All the text shown inside the container with ``key``, in order."""
    node = at.get_by_key(key)
    out = []

    def walk(n):
        value = getattr(n, "value", None)
        if isinstance(value, str) and type(n).__name__ in (
                "Header", "Markdown", "Caption", "Error", "Info", "Warning", "Subheader"):
            out.append(value)
        for child in getattr(n, "children", {}).values():
            walk(child)

    walk(node)
    return "\n".join(out).replace("**", "")


@pytest.fixture()
def digits(mnist, recognizer):
    """Paper pictures of digits that the shipped model reads right, by label."""
    out = {}
    for i, label in enumerate(mnist.y_test[:500]):
        label = int(label)
        if label not in out:
            image = paper_digit(mnist.x_test[i])
            if recognizer.predict(image).digit == label:
                out[label] = image
    return out


# --- Draw ----------------------------------------------------------------------------------

def fake_canvas(monkeypatch, image: np.ndarray | None):
    """Stand in for streamlit_drawable_canvas (which cannot even be imported outside a
    running server): the canvas "returns" ``image`` as the component does, a PNG."""

    def st_canvas(**kwargs):
        assert kwargs["return_image_data"] is True
        if image is None:
            return types.SimpleNamespace(json_data={"objects": []}, image_data=None)
        decoded = np.asarray(Image.open(io.BytesIO(png(image))))
        return types.SimpleNamespace(json_data={"objects": [{"type": "path"}]},
                                     image_data=decoded)

    module = types.ModuleType("streamlit_drawable_canvas")
    module.st_canvas = st_canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)


def test_draw_blank_canvas_asks_for_a_digit(monkeypatch):
    fake_canvas(monkeypatch, None)
    at = page("draw").run()
    assert not at.exception
    assert texts(at, "prediction").startswith("No digit yet: draw a digit")
    assert not at.header  # never a guess


def test_draw_reads_the_drawing(monkeypatch, digits):
    drawing = np.dstack([digits[3]] * 3 + [np.full(digits[3].shape, 255, np.uint8)])  # RGBA
    fake_canvas(monkeypatch, drawing)
    at = page("draw").run()
    assert not at.exception
    text = texts(at, "prediction")
    assert text.startswith("3\n") and "confident" in text
    at.get_by_key("confidences")  # the bar chart's container is there


def test_draw_strokes_without_a_digit(monkeypatch):
    fake_canvas(monkeypatch, np.full((320, 320, 4), 255, np.uint8))  # white strokes on white
    at = page("draw").run()
    assert texts(at, "prediction").startswith("No digit found")


# --- Upload --------------------------------------------------------------------------------

def test_upload_many_files_one_unreadable(digits):
    at = page("upload").run()
    assert "No image yet" in at.info[0].value
    at.file_uploader(key="files").set_value([
        ("two.png", png(digits[2]), "image/png"),
        ("junk.png", b"<html>not an image</html>", "image/png"),
        ("five.jpg", png(digits[5], "JPEG"), "image/jpeg"),
    ]).run()
    assert not at.exception
    assert texts(at, "prediction-0").startswith("2\n")
    bad = texts(at, "prediction-1")
    assert bad.startswith("No digit found: cannot read junk.png") and "HTML" in bad
    assert texts(at, "prediction-2").startswith("5\n")
    at.get_by_key("confidences-0")
    at.get_by_key("confidences-2")


def test_upload_whole_number(digits):
    row = np.concatenate([digits[d][:, 60:300] for d in (9, 0, 4)], axis=1)
    at = page("upload").run()
    at.radio(key="mode").set_value("a whole number")
    at.file_uploader(key="files").set_value(("n.png", png(row), "image/png")).run()
    assert not at.exception
    assert texts(at, "prediction-0").startswith("904\n")


def test_webcam_snapshot(digits):
    at = page("upload").run()
    at.toggle(key="webcam").set_value(True).run()
    at.camera_input(key="camera").set_value(("snap.jpg", png(digits[6], "JPEG"), "image/jpeg"))
    at.run()
    assert not at.exception
    assert texts(at, "prediction-camera").startswith("6\n")


# --- Train ---------------------------------------------------------------------------------

def train_page(images=300, epochs=1, batch=32) -> AppTest:
    at = page("train").run()
    assert not at.exception
    at.number_input(key="images").set_value(images)
    at.slider(key="epochs-fast").set_value(epochs)
    at.select_slider(key="batch-fast").set_value(batch)
    return at


@pytest.mark.slow
def test_train_activate_restore(models_dir, mnist):
    at = train_page()
    at.button(key="start").click().run()
    job = jobs.current()
    assert job is not None and job.config.limit == 300, [e.value for e in at.error]
    jobs.wait(300)
    assert job.state == "done", job.progress.error
    assert job.progress.points and "val_accuracy" in job.progress.points[-1]
    new_model = job.progress.result.path
    assert new_model.parent == models_dir / "user" and new_model.exists()

    at.run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["New model: test accuracy", "Active model: test accuracy"]
    assert at.metric[1].value == "99.18%" or at.metric[1].value.endswith("%")
    at.button(key="activate").click().run()
    assert registry.active_model_path() == new_model.resolve()
    assert "The new model is the active model" in at.info[0].value

    at.button(key="restore").click().run()
    assert registry.active_model_path() == registry.shipped_model()
    assert not (ROOT / "models" / "active.json").exists()


def test_second_training_is_refused(fake_worker):
    fake_worker("wait")
    at = train_page()
    at.button(key="start").click().run()
    try:
        assert jobs.current().running
        at.button(key="start").click().run()
        assert any("already running" in e.value for e in at.error)
    finally:
        jobs.stop()
        jobs.wait(60)


def test_stop_button_stops(fake_worker):
    fake_worker("wait")
    at = train_page()
    at.button(key="start").click().run()
    job = jobs.current()
    end = time.time() + 60
    while job.progress.step < 1 and time.time() < end:
        time.sleep(0.05)
    at.run()
    at.button(key="stop").click().run()
    jobs.wait(30)
    assert job.state == "stopped"


def test_the_model_loads_once_per_file_for_every_run_and_session():
    """One cached loader: every rerun of every page shares one Recognizer per model file
    (a page that loaded the model on each rerun would double the time to a prediction)."""
    import app_shared

    key = registry.cache_key(registry.shipped_model())
    first = app_shared._load(*key)
    assert app_shared._load(*key) is first


def test_reruns_do_not_walk_the_tensorflow_heap():
    """Once TensorFlow is in, the objects alive then are out of the garbage collector's
    sight, and the app turns off Streamlit's full collection after each script run: each
    walked some 400,000 objects with the GIL held (0.2 s that every session waited for)."""
    import gc
    import tomllib

    import app_shared

    app_shared._load(*registry.cache_key(registry.shipped_model()))
    assert gc.get_freeze_count() > 100_000
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_upload_file_names_show_as_text_never_as_markdown(digits):
    """A visitor's file name is shown as written: no link, no image fetched from elsewhere."""
    import app_shared

    sneaky = "![x](http://example.invalid/pixel.png)*bold*.png"
    at = page("upload").run()
    at.file_uploader(key="files").set_value([
        (sneaky, png(digits[2]), "image/png"),
        ("[link](http://example.invalid)" + ".png", b"not an image", "image/png"),
    ]).run()
    assert not at.exception
    headers = [h.value for h in at.subheader]
    assert app_shared.plain(sneaky) in headers
    assert all("](" not in h and "*bold*" not in h for h in headers)
    error = texts(at, "prediction-1")
    assert "\\[link\\]\\(http" in error and "](" not in error
