"""The app's pages under streamlit.testing.v1.AppTest: widgets in, digitrec results out.

Every test points DIGITREC_MODELS_DIR at a temporary directory: the real models/ is
never written. The drawing canvas is a browser component that AppTest cannot draw on, so
the Draw tests replace st_canvas with a stand-in that returns a given image."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from digitrec import store
from digitrec.server import jobs, registry
from digitrec.training import synth
from tests.conftest import ROOT, app_page, encode, fake_canvas, picks, readable_digits, texts, train_page


@pytest.fixture(autouse=True)
def _own_models_dir(models_dir):
    """Every test here reads and writes models in a temporary directory."""
    return models_dir


@pytest.fixture()
def digits(mnist, recognizer):
    """Paper pictures of digits that the shipped model reads right, by label."""
    return readable_digits(mnist, recognizer)


def rgba(gray: np.ndarray) -> np.ndarray:
    """A grayscale picture as the canvas returns it: RGBA, opaque."""
    return np.dstack([gray] * 3 + [np.full(gray.shape, 255, np.uint8)])


def percent(card: dict) -> str:
    return f"{card['test']['accuracy']:.2%}"


# --- Draw ----------------------------------------------------------------------------------

def test_draw_blank_canvas_asks_for_a_digit(monkeypatch):
    fake_canvas(monkeypatch, None)
    at = app_page("draw").run()
    assert not at.exception
    assert texts(at, "prediction").startswith("No digit yet: draw a digit")
    assert not at.header  # never a guess


def test_the_heap_loaded_with_the_model_is_frozen_out_of_the_collectors_walks(monkeypatch):
    """Streamlit collects garbage after every script run; what is loaded with the model
    (libraries, networks) is frozen as it loads, so that collection walks only what
    the runs made since (benchmarks/load.py: a third of the server's CPU a reading)."""
    import gc
    import weakref

    import streamlit as st

    st.cache_resource.clear()
    gc.unfreeze()
    fake_canvas(monkeypatch, None)
    at = app_page("draw").run()
    assert not at.exception
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # the libraries' objects, at least

    class Node:
        pass

    node = Node()
    node.itself = node  # a cycle: only the collector frees it
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None  # what the runs make is still collected
    # and the frozen heap stays frozen: only the few frozen objects that die by their
    # reference count (a finished thread's frame, a replaced cache entry) leave it
    assert frozen - 1_000 < gc.get_freeze_count() <= frozen


def test_draw_reads_the_drawing(monkeypatch, digits):
    fake_canvas(monkeypatch, rgba(digits[3]))
    at = app_page("draw").run()
    assert not at.exception
    text = texts(at, "prediction")
    assert text.startswith("3\n") and "confident" in text
    at.get_by_key("confidences")  # the bar chart's container is there


def test_answers_beside_a_drawing_are_saved_and_clear_the_canvas(monkeypatch, digits, models_dir):
    from digitrec.server.samples import SampleStore

    fake_canvas(monkeypatch, rgba(digits[3]))
    at = app_page("draw").run()
    at.button(key="right").click().run()
    assert not at.exception
    at.get_by_key("was").set_value("8").run()  # "It was: 8"
    assert not at.exception
    saved = sorted(SampleStore(models_dir / "samples.sqlite3").samples(), key=lambda s: s.id)
    assert [(s.true_digit, s.read_digit, s.source) for s in saved] == [(3, 3, "draw"), (8, 3, "draw")]
    assert saved[0].x28.max() > 200  # the 28x28 the model saw, ink bright
    assert at.session_state["drawings"] == 2  # a new canvas after each answer
    assert at.get_by_key("was").value is None  # ready for the next answer


def test_an_answer_beside_an_uploaded_digit_is_saved_with_its_picture(digits, models_dir):
    from digitrec.server.samples import SampleStore

    at = app_page("upload").run()
    at.file_uploader(key="files").set_value([("two.png", encode(digits[2]), "image/png"),
                                             ("five.png", encode(digits[5]), "image/png")]).run()
    at.get_by_key("was-1").set_value("6").run()  # the second file: "It was: 6"
    assert not at.exception
    db = SampleStore(models_dir / "samples.sqlite3")
    (saved,) = db.samples()
    assert (saved.true_digit, saved.read_digit, saved.source) == (6, 5, "upload")
    assert db.picture(saved.id).startswith(b"\x89PNG")


def test_draw_says_a_star_is_not_a_digit_and_takes_a_correction(monkeypatch, models_dir):
    """A star on the canvas: "Not a digit", the bar chart with its eleventh bar, and the
    digits to say what it was had it been one."""
    from digitrec.server.samples import SampleStore
    from digitrec.training.nondigits import scribble

    star = scribble("star", np.random.default_rng(7))
    fake_canvas(monkeypatch, rgba(np.pad(star, 104, constant_values=255)))
    at = app_page("draw").run()
    assert not at.exception
    assert texts(at, "prediction").startswith("Not a digit\n")
    assert "? = not a digit" in texts(at, "confidences")
    at.get_by_key("was").set_value("4").run()
    (saved,) = SampleStore(models_dir / "samples.sqlite3").samples()
    assert (saved.true_digit, saved.read_digit) == (4, None)


def test_draw_strokes_without_a_digit(monkeypatch):
    fake_canvas(monkeypatch, np.full((320, 320, 4), 255, np.uint8))  # white strokes on white
    at = app_page("draw").run()
    assert texts(at, "prediction").startswith("No digit found")


def test_draw_reads_a_number_in_number_mode(monkeypatch, mnist, recognizer):
    pages = readable_digits(mnist, recognizer, {1, 4, 7})
    row = np.concatenate([pages[d][:, 90:300] for d in (4, 1, 7)], axis=1)
    fake_canvas(monkeypatch, rgba(row))
    at = app_page("draw").run()
    assert texts(at, "several").startswith("This drawing holds 3 digits")  # read as one digit first
    at.button(key="as-number").click().run()  # "Read it as a number"
    assert not at.exception
    assert at.get_by_key("draw-mode").value == "A number"
    assert texts(at, "prediction").startswith("417\n3 digits")
    at.get_by_key("confidences")


def test_a_drawn_number_corrected_keeps_its_digits(monkeypatch, mnist, recognizer, models_dir):
    from digitrec.server.samples import SampleStore

    pages = readable_digits(mnist, recognizer, {1, 4, 7})
    fake_canvas(monkeypatch, rgba(np.concatenate([pages[d][:, 90:300] for d in (4, 1, 7)], axis=1)))
    at = app_page("draw").run()
    at.get_by_key("draw-mode").set_value("A number").run()
    at.text_input(key="typed-draw").set_value("427").run()
    assert not at.exception
    saved = sorted(SampleStore(models_dir / "samples.sqlite3").samples(), key=lambda s: s.id)
    assert [(s.true_digit, s.read_digit, s.source) for s in saved] == [(4, 4, "draw"), (2, 1, "draw"), (7, 7, "draw")]
    assert at.session_state["drawings"] == 1 and at.text_input(key="typed-draw").value == ""


# --- Upload --------------------------------------------------------------------------------

def test_a_number_uploaded_as_one_digit_is_said_to_be_one(mnist, recognizer, models_dir):
    """One digit's reading of a row: the page says that it holds three digits, shows the
    number, switches to reading numbers on request, and a typed correction is saved digit
    by digit and kept for the download."""
    from digitrec.server.samples import SampleStore

    pages = readable_digits(mnist, recognizer, {1, 4, 7})
    row = np.concatenate([pages[d][:, 90:300] for d in (4, 1, 7)], axis=1)
    at = app_page("upload").run()
    at.file_uploader(key="files").set_value(("row.png", encode(row), "image/png")).run()
    assert "holds 3 digits" in texts(at, "several-0") and "417" in texts(at, "several-0")
    at.button(key="as-number-0").click().run()
    assert at.radio(key="mode").value == "every number in it"
    assert texts(at, "prediction-0").startswith("417\n")
    at.text_input(key="typed-0").set_value("427").run()
    assert not at.exception
    saved = SampleStore(models_dir / "samples.sqlite3").samples()
    assert sorted(s.true_digit for s in saved) == [2, 4, 7]
    assert [b.proto.label for b in (at.get_by_key("csv"), at.get_by_key("json"))] == [
        "Download the readings (CSV)", "Download the readings (JSON)"]


def test_a_single_digit_upload_has_no_number_hint(digits):
    at = app_page("upload").run()
    at.file_uploader(key="files").set_value(("three.png", encode(digits[3]), "image/png")).run()
    assert texts(at, "prediction-0").startswith("3\n")
    with pytest.raises(KeyError):
        at.get_by_key("several-0")


def test_the_examples_are_read(recognizer):
    at = app_page("upload").run()
    at.get_by_key("examples").set_value(["digit-photo.jpg", "cheque.jpg", "row.png"]).run()
    assert not at.exception
    assert texts(at, "prediction-digit-photo").startswith("7\n")
    assert "holds 4 digits" in texts(at, "several-cheque") and "3.827" in texts(at, "several-cheque")
    assert "14959" in texts(at, "several-row")
    at.radio(key="mode").set_value("every number in it").run()
    assert texts(at, "prediction-cheque").startswith("3.827\n")
    assert texts(at, "prediction-row").startswith("14959\n")

def test_upload_many_files_one_unreadable(digits):
    at = app_page("upload").run()
    assert "No picture yet" in at.info[0].value
    at.file_uploader(key="files").set_value([
        ("two.png", encode(digits[2]), "image/png"),
        ("junk.png", b"<html>not an image</html>", "image/png"),
        ("five.jpg", encode(digits[5], "JPEG"), "image/jpeg"),
    ]).run()
    assert not at.exception
    assert texts(at, "prediction-0").startswith("2\n")
    bad = texts(at, "prediction-1")
    assert bad.startswith("Cannot read junk.png: ") and "HTML" in bad, bad
    assert "No digit found" not in bad  # the file was never read: not the same as no digit in it
    assert texts(at, "prediction-2").startswith("5\n")
    at.get_by_key("confidences-0")
    at.get_by_key("confidences-2")


def test_pictures_are_read_once_not_again_when_a_correction_reruns_the_page(digits, monkeypatch):
    from digitrec.reading.digits import Recognizer

    calls, reads = [], []
    predict, read = Recognizer.predict, Recognizer.read
    monkeypatch.setattr(Recognizer, "predict", lambda self, image: calls.append(1) or predict(self, image))
    monkeypatch.setattr(Recognizer, "read", lambda self, image: reads.append(1) or read(self, image))
    at = app_page("upload").run()
    at.file_uploader(key="files").set_value([("three.png", encode(digits[3]), "image/png"),
                                             ("four.png", encode(digits[4]), "image/png")]).run()
    assert len(calls) == 2 and texts(at, "prediction-1").startswith("4\n")
    at.get_by_key("was-0").set_value("8").run()  # a correction reruns the page
    assert not at.exception and len(calls) == 2
    assert texts(at, "prediction-0").startswith("3\n") and texts(at, "prediction-1").startswith("4\n")
    at.radio(key="mode").set_value("every number in it").run()  # another mode: read again
    assert not at.exception and len(reads) == 2 and "digit" in texts(at, "prediction-0")


def test_upload_whole_number(digits):
    row = np.concatenate([digits[d][:, 90:300] for d in (9, 0, 4)], axis=1)
    at = app_page("upload").run()
    at.radio(key="mode").set_value("every number in it")
    at.file_uploader(key="files").set_value(("n.png", encode(row), "image/png")).run()
    assert not at.exception
    assert texts(at, "prediction-0").startswith("904\n")


def test_upload_a_page_of_numbers(mnist, recognizer):
    """Two numbers on a page, apart: both read, in reading order, each boxed on the picture."""
    idx = picks(mnist, recognizer)
    page, _, boxes, kept = synth.render_page(
        [[mnist.x_test[idx[d]] for d in (3, 8)], [mnist.x_test[idx[d]] for d in (7, 2, 5)]],
        np.random.default_rng(11), condition="scan", height=800, digit_height=(0.07, 0.09), touching=0, broken=0)
    assert kept == [0, 1]
    expected = " ".join(("38", "725")[k] for k in sorted(range(2), key=lambda k: (boxes[k][1], boxes[k][0])))
    at = app_page("upload").run()
    at.radio(key="mode").set_value("every number in it")
    at.file_uploader(key="files").set_value(("page.png", encode(page), "image/png")).run()
    assert not at.exception
    shown = texts(at, "prediction-0")
    read = shown.split("\n")[0].split(" ")
    assert [len(t) for t in read] == [len(t) for t in expected.split(" ")] and "2 numbers" in shown, shown
    assert sum(a == b for a, b in zip("".join(read), expected.replace(" ", ""))) >= 4, shown  # of 5 digits


def test_webcam_snapshot(digits):
    at = app_page("upload").run()
    at.toggle(key="webcam").set_value(True).run()
    at.camera_input(key="camera").set_value(("snap.jpg", encode(digits[6], "JPEG"), "image/jpeg"))
    at.run()
    assert not at.exception
    assert texts(at, "prediction-camera").startswith("6\n")


def test_upload_file_names_show_as_text_never_as_markdown(digits):
    """A visitor's file name is shown as written: no link, no image fetched from elsewhere."""
    import app_shared

    sneaky = "![x](http://example.invalid/pixel.png)*bold*.png"
    at = app_page("upload").run()
    at.file_uploader(key="files").set_value([
        (sneaky, encode(digits[2]), "image/png"),
        ("[link](http://example.invalid)" + ".png", b"not an image", "image/png"),
    ]).run()
    assert not at.exception
    headers = [h.value for h in at.subheader]
    assert app_shared.plain(sneaky) in headers
    assert all("](" not in h and "*bold*" not in h for h in headers)
    error = texts(at, "prediction-1")
    assert "\\[link\\]\\(http" in error and "](" not in error


# --- Train ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_model_trained_on_the_train_page_is_used_by_every_page(models_dir, mnist, monkeypatch, digits):
    """A short real training started from the Train page: it saves a model with its
    .tflite, the page compares it with the active model, one click makes it the model
    the Draw page reads with, and another restores the shipped one."""
    import app_shared

    at = train_page()
    at.button(key="start").click().run()
    job = jobs.current()
    assert job is not None and job.config.limit == 300, [e.value for e in at.error]
    jobs.wait(300)
    assert job.state == "done", job.progress.error
    assert job.progress.points and "val_accuracy" in job.progress.points[-1]
    new_model = job.progress.result.path
    assert new_model.parent == models_dir / "user"
    assert all(new_model.with_suffix(s).is_file() for s in store.SUFFIXES)

    at.run()
    assert not at.exception
    assert [(m.label, m.value) for m in at.metric] == [
        ("New model: test accuracy", percent(store.read_card(new_model))),
        ("Active model: test accuracy", percent(store.read_card(store.DIGIT_MODEL)))]
    at.button(key="activate").click().run()
    assert registry.active_status() == (new_model.resolve(), None)
    assert "The new model is the active model" in at.info[0].value

    fake_canvas(monkeypatch, rgba(digits[1]))
    draw = app_page("draw").run()
    assert not draw.exception and not draw.warning  # no fallback to the shipped model
    assert app_shared.recognizer().path == new_model.resolve()
    new_reading = texts(draw, "prediction")
    assert new_reading.startswith(f"{app_shared.recognizer().predict(rgba(digits[1])).digit}\n")

    at.button(key="restore").click().run()
    assert registry.active_status() == (store.DIGIT_MODEL, None)
    assert app_shared.recognizer().path == store.DIGIT_MODEL
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


def test_the_busy_message_goes_once_that_training_has_ended(fake_worker):
    fake_worker("wait")
    at = train_page()
    at.button(key="start").click().run()
    try:
        at.button(key="start").click().run()
        assert any("already running" in e.value for e in at.error)
    finally:
        jobs.stop()
        jobs.wait(60)
    at.run()
    assert not any("already running" in e.value for e in at.error)


def test_a_worse_new_model_is_said_to_be_worse_and_keeping_is_the_first_choice(fake_worker):
    fake_worker("worse")
    at = train_page()
    at.button(key="start").click().run()
    jobs.wait(60)
    at.run()
    assert not at.exception
    shown = texts(at, "result")
    assert "worse than the active one" in shown and "1.47 points fewer" in shown, shown
    assert (at.button(key="keep").proto.type, at.button(key="activate").proto.type) == ("primary", "secondary")
    assert at.button(key="activate").label == "Use the new model anyway"
    at.button(key="keep").click().run()
    assert registry.active_status()[0] == store.DIGIT_MODEL
    assert "The active model stays" in texts(at, "result")


def test_an_earlier_model_can_be_made_active(models_dir):
    from tests.conftest import copy_shipped

    earlier = copy_shipped(models_dir / "user", "fast-20250101-120000")
    at = app_page("train").run()
    assert not at.exception
    options = at.selectbox(key="chosen").options
    assert len(options) == 2 and options[0].startswith("shipped model") and options[1].startswith(
        f"fast-20250101-120000 (best, test accuracy {percent(store.read_card(earlier))}")
    assert at.button(key="make-active").disabled  # the shipped model is the active one
    at.selectbox(key="chosen").set_value(str(earlier)).run()
    at.button(key="make-active").click().run()
    assert registry.active_status() == (earlier.resolve(), None)
    assert at.button(key="make-active").disabled and at.selectbox(key="chosen").value == str(earlier.resolve())


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


# --- the server --------------------------------------------------------------------------

def test_the_model_loads_once_per_file_for_every_run_and_session():
    """One cached loader: every rerun of every page shares one Recognizer per model file
    (a page that loaded the model on each rerun would double the time to a prediction)."""
    import app_shared

    key = registry.cache_key(store.DIGIT_MODEL)
    first = app_shared._load(*key)
    assert app_shared._load(*key) is first


SERVE = textwrap.dedent("""
    import json, sys
    from streamlit.testing.v1 import AppTest
    from tests.conftest import canvas_module, texts
    from PIL import Image
    import numpy as np

    digit = np.asarray(Image.open(sys.argv[1]))
    sys.modules["streamlit_drawable_canvas"] = canvas_module(np.dstack([digit] * 3 + [digit * 0 + 255]))
    at = AppTest.from_file(sys.argv[3], default_timeout=120).run()
    assert not at.exception, at.exception
    shown = {"draw": texts(at, "prediction"), "sidebar": [c.value for c in at.sidebar.caption]}
    at.switch_page("pages/upload.py").run()
    at.radio(key="mode").set_value("every number in it")
    at.file_uploader(key="files").set_value(("n.png", open(sys.argv[2], "rb").read(), "image/png")).run()
    shown["number"] = texts(at, "prediction-0")
    at.radio(key="mode").set_value("one digit")
    at.file_uploader(key="files").set_value(("d.png", open(sys.argv[1], "rb").read(), "image/png")).run()
    assert not at.exception, at.exception
    shown["digit"] = texts(at, "prediction-0")
    shown["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps(shown))
""")


def test_serving_draw_and_upload_imports_no_tensorflow(digits, tmp_path):
    """The whole app (streamlit_app.py: its navigation, the model loaded as the first page
    opens) reads a drawing, a number and a digit upload without TensorFlow or Keras in the
    process."""
    digit, row = tmp_path / "digit.png", tmp_path / "row.png"
    digit.write_bytes(encode(digits[3]))
    row.write_bytes(encode(np.concatenate([digits[d][:, 90:300] for d in (4, 1, 7)], axis=1)))
    out = subprocess.run([sys.executable, "-c", SERVE, str(digit), str(row), str(ROOT / "streamlit_app.py")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    assert shown["draw"].startswith("3\n"), shown
    assert any(c.startswith("Active model: shipped model") for c in shown["sidebar"]), shown
    assert shown["number"].startswith("417\n") and shown["digit"].startswith("3\n"), shown
    assert shown["modules"] == []


# --- Your digits on the Train page ---------------------------------------------------------

def test_your_digits_are_shown_misreads_first_and_can_be_deleted(mnist, recognizer, models_dir):
    from digitrec.server.samples import SampleStore

    db = SampleStore(models_dir / "samples.sqlite3")
    x, y = mnist.x_test[:12], mnist.y_test[:12]
    assert (recognizer.probabilities(x.astype(np.float32) / 255).argmax(1) == y).all()  # all read right
    for i in range(11):
        db.add(x[i], int(y[i]))
    wrong = db.add(x[11], (int(y[11]) + 1) % 10)  # a label the model does not read
    at = app_page("train").run()
    assert not at.exception
    shown = texts(at, "your-digits")
    assert "12 of your digits" in shown and "misreads 1 of them" in shown
    at.button(key=f"delete-{wrong}").click().run()
    assert db.count() == 11 and "misreads 0 of them" in texts(at, "your-digits")
    assert at.button(key="delete-all").disabled  # not without saying so first
    at.checkbox(key="sure").check().run()
    at.button(key="delete-all").click().run()
    assert db.count() == 0
    assert "None yet" in texts(at, "your-digits")
