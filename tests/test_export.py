"""digitrec.training.export: every shipped ``.tflite`` reads as its ``.keras`` on real
inputs, and a model is saved as its three files together, or not at all."""
from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from digitrec import cli, store
from digitrec.reading import detect, engine, ink, recognize
from digitrec.training import export
from tests.conftest import number_rows


def keras_model(path):
    from digitrec.training import networks  # noqa: F401  (registers the digit model's layers for loading)

    return keras.models.load_model(path, compile=False)


def assert_agree(lite: np.ndarray, expected) -> None:
    expected = np.asarray(expected)
    assert lite.shape == expected.shape
    worst = float(np.abs(lite - expected).max())
    assert worst <= export.AGREEMENT, worst


# --- the shipped models, on what they read ---------------------------------------------------

def test_the_shipped_digit_model_reads_mnist_as_its_keras_model(mnist):
    x = (mnist.x_test[:1000].astype(np.float32) / 255.0)[..., None]
    lite = engine.load(store.lite_path(store.DIGIT_MODEL))(x)
    expected = keras_model(store.DIGIT_MODEL).predict(x, batch_size=250, verbose=0)
    assert_agree(lite, expected)
    assert np.array_equal(lite.argmax(1), expected.argmax(1))


def _text(columns) -> str:
    return "".join(c.char for c in recognize.best_reading(columns))


def test_the_shipped_recognizer_reads_strips_as_its_keras_model(mnist):
    """The exported recognizer has its GRUs unrolled (builtin LiteRT operations); the saved
    one loops: the same columns all the same."""
    x = _strips(mnist)
    lite = engine.load(store.lite_path(store.RECOGNIZER))(x)
    expected = keras_model(store.RECOGNIZER).predict(x, batch_size=16, verbose=0)
    assert_agree(lite, expected)
    assert [_text(c) for c in lite] == [_text(c) for c in expected]


def test_the_shipped_detector_maps_pictures_as_its_keras_model(mnist):
    x = np.stack([detect.prepare(ink.gray(image))[0] for image, _, _ in number_rows(mnist, 4, seed=34)])[..., None]
    lite = engine.load(store.lite_path(store.DETECTOR))(x)
    expected = keras_model(store.DETECTOR).predict(x, batch_size=4, verbose=0)
    assert_agree(lite, expected)


# --- saving ------------------------------------------------------------------------------------

def tiny(seed: int, inputs: int = 1) -> keras.Model:
    """A small untrained network, one input (a 28x28 digit) or two (and a geometry)."""
    keras.utils.set_random_seed(seed)
    crop = keras.Input((28, 28, 1), name="crop")
    h = keras.layers.Flatten()(keras.layers.Conv2D(4, 5, strides=3, activation="relu")(crop))
    if inputs == 1:
        return keras.Model(crop, keras.layers.Dense(10, activation="softmax")(h))
    geometry = keras.Input((6,), name="geometry")
    h = keras.layers.Concatenate()([h, geometry])
    return keras.Model([crop, geometry], keras.layers.Dense(1, activation="sigmoid")(h))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny model saved with save_model: (model, its .keras path)."""
    model = tiny(seed=1)
    path = export.save_model(model, tmp_path_factory.mktemp("saved") / "tiny", {"format": "test-card/1"})
    return model, path


def test_save_model_writes_the_keras_model_its_export_and_its_card(saved):
    model, path = saved
    assert path.name == "tiny.keras"
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.json", "tiny.keras", "tiny.tflite"]
    card = store.read_card(path)
    assert card == {"format": "test-card/1", "files": {"keras": "tiny.keras", "tflite": "tiny.tflite"}}
    x = np.random.default_rng(2).random((20, 28, 28, 1), dtype=np.float32)
    assert_agree(engine.load(store.lite_path(path))(x), model(x))
    np.testing.assert_array_equal(keras_model(path)(x), model(x))


def test_a_network_of_two_inputs_is_exported_with_their_names(tmp_path):
    model = tiny(seed=2, inputs=2)
    path = export.save_model(model, tmp_path / "two.keras", {})
    network = engine.load(store.lite_path(path))
    assert network.inputs == ["crop", "geometry"]
    rng = np.random.default_rng(3)
    crop, geometry = rng.random((9, 28, 28, 1), dtype=np.float32), rng.random((9, 6), dtype=np.float32)
    assert_agree(network(geometry=geometry, crop=crop), model([crop, geometry]))


def test_an_export_of_another_network_is_refused(saved):
    model, path = saved
    other = tiny(seed=5)
    with pytest.raises(ValueError, match="differs from the Keras model"):
        export.check_agreement(other, store.lite_path(path).read_bytes(), export.probe_inputs(other))


def test_a_failed_export_check_leaves_the_saved_files_as_they_were(saved, tmp_path, monkeypatch):
    _, path = saved
    folder = tmp_path / "models"
    shutil.copytree(path.parent, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def differs(*args):
        raise ValueError("the exported network differs from the Keras model by 0.1")

    monkeypatch.setattr(export, "check_agreement", differs)
    with pytest.raises(ValueError, match="differs"):
        export.save_model(tiny(seed=6), folder / "tiny.keras", {"format": "test-card/2"})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing half-written left either


# --- exporting a model saved before models were exported ------------------------------------------

def _digits(mnist) -> np.ndarray:
    return (mnist.x_test[:200].astype(np.float32) / 255.0)[..., None]


def _strips(mnist) -> np.ndarray:
    rows = [ink.gray(image) for image, _, _ in number_rows(mnist, 8, seed=33)]
    return np.stack([recognize.strip(g, (0, 0, g.shape[1], g.shape[0]), 0.0).x for g in rows])[..., None]


@pytest.mark.slow
@pytest.mark.parametrize("shipped, inputs", [(store.DIGIT_MODEL, _digits), (store.RECOGNIZER, _strips)],
                         ids=["digits", "recognizer"])
def test_export_writes_a_working_tflite_beside_a_saved_model(shipped, inputs, mnist, tmp_path, capsys):
    """``python -m digitrec export MODEL.keras`` on a copy of a shipped model (its card
    says which kind, the recognizer's GRUs are unrolled) writes a .tflite that reads as the
    shipped one."""
    copy = tmp_path / shipped.name
    shutil.copyfile(shipped, copy)
    shutil.copyfile(store.card_path(shipped), store.card_path(copy))
    assert cli.main(["export", str(copy)]) == 0
    assert capsys.readouterr().out == f"wrote {store.lite_path(copy)}\n"
    made, original = engine.load(store.lite_path(copy)), engine.load(store.lite_path(shipped))
    assert len(made.inputs) == len(original.inputs)  # names follow Keras's tensor names, not the model
    x = inputs(mnist)
    assert_agree(made(x), original(x))
