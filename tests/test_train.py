"""digitrec.training.train: the pipeline, a brief real training run, the card, atomic saves."""
import json

import numpy as np
import pytest

from digitrec import store
from digitrec.reading.digits import Recognizer
from digitrec.training.export import save_model
from digitrec.training.recipes import Progress, TrainConfig
from digitrec.training.train import (
    add_pipeline_digits,
    initial_model,
    make_dataset,
    run_training,
    train,
)


def test_dataset_scales_and_augments(mnist):
    x, y = mnist.x_train[:64], mnist.y_train[:64]
    plain = next(iter(make_dataset(x, y, 64)))
    images, labels = plain[0].numpy(), plain[1].numpy()
    assert images.shape == (64, 28, 28, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_allclose(images[..., 0], x / 255.0, atol=1e-6)
    assert (labels.argmax(1) == y).all()
    augmented = next(iter(make_dataset(x, y, 64, augment=True)))[0].numpy()
    assert augmented.shape == images.shape
    assert np.abs(augmented - images).mean() > 0.01  # something moved
    assert 0.0 <= augmented.min() and augmented.max() <= 1.0


def test_config_takes_preset_defaults_and_overrides():
    from digitrec.training.networks import PRESETS
    cfg = TrainConfig(preset="fast", epochs=7).resolved()
    assert cfg.epochs == 7 and cfg.batch_size == PRESETS["fast"].batch_size
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig(preset="nope").resolved()


@pytest.mark.slow
def test_brief_training_learns_and_saves_a_card(mnist, tmp_path):
    out = tmp_path / "brief.keras"
    progress = Progress()
    result = train(TrainConfig(preset="fast", epochs=2, batch_size=32, limit=6000, validation=1000,
                               eval_every=40, out=str(out), command="test"),
                   progress=progress, mnist=mnist)
    # 5000 images, two epochs: far better than chance (10%) on the 10,000 test images.
    assert result.card["test"]["accuracy"] > 0.85
    assert result.card["test"]["n"] == 10000
    assert progress.done and progress.fraction == 1.0
    points = progress.points
    assert len(points) >= 3 and all("val_accuracy" in p for p in points)
    assert points[-1]["val_accuracy"] > points[0]["val_accuracy"]
    card = json.loads(out.with_suffix(".json").read_text())
    for key in ("architecture", "preset", "options", "train_seconds", "data_sha256", "test", "command"):
        assert key in card
    assert card["architecture"]["parameters"] > 0
    assert card["data_sha256"].items() >= mnist.checksums.items()  # MNIST's files, as verified
    assert card["files"] == {"keras": "brief.keras", "tflite": "brief.tflite"}
    loaded = Recognizer.load(out)  # reads the .tflite saved with it
    probs = loaded.probabilities(mnist.x_test[:200] / 255.0)
    assert (probs.argmax(1) == mnist.y_test[:200]).mean() > 0.8


@pytest.mark.slow
def test_stop_flag_ends_training_early(mnist, tmp_path):
    progress = Progress()
    progress.stop.set()
    result = train(TrainConfig(preset="fast", epochs=3, limit=2000, out=str(tmp_path / "s.keras")),
                   progress=progress, mnist=mnist)
    assert result.card["stopped_early"] is True
    assert progress.step < progress.total_steps


def test_training_loop_records_points_on_schedule_and_learns(mnist):
    import keras

    from digitrec.training.networks import build_model

    x, y = mnist.x_train[:1000], mnist.y_train[:1000]
    model = build_model("fast")
    before = [w.copy() for w in model.get_weights()]
    progress = Progress(total_steps=2 * 32)
    run_training(model, make_dataset(x, y, 32, shuffle=True, repeat=True), 32, 2,
                 keras.optimizers.Adam(3e-3), keras.losses.CategoricalCrossentropy(),
                 progress, every=10, val_data=(x[:200, ..., None] / 255.0, y[:200]))
    # a point every 10 steps and at each epoch's end (32 steps an epoch)
    assert [p["step"] for p in progress.points] == [10, 20, 30, 32, 40, 50, 60, 64]
    assert [p["epoch"] for p in progress.points][3] == 1.0
    assert progress.step == 64 and not progress.stopped
    # running means of the epoch so far, and the network learnt (weights and accuracy moved)
    first, last = progress.points[0], progress.points[-1]
    assert last["accuracy"] > first["accuracy"]
    assert last["loss"] < first["loss"]
    assert last["val_accuracy"] > 0.6
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights()))


def test_training_loop_stops_after_the_call_in_which_it_is_asked(mnist):
    import keras

    from digitrec.training.networks import build_model

    x, y = mnist.x_train[:512], mnist.y_train[:512]
    progress = Progress(total_steps=3 * 16)
    progress.stop.set()
    run_training(build_model("fast"), make_dataset(x, y, 32, repeat=True), 16, 3,
                 keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(), progress, every=50)
    assert progress.stopped and progress.step == 1  # the first call runs one step (it also traces)


def test_a_call_runs_as_many_steps_as_fit_in_its_time():
    """Quick steps go a few to a call; a slow one (a big batch, augmentation, a busy
    machine) alone, so that Stop is heard after it."""
    from digitrec.training.train import CALL_SECONDS, STEPS_PER_CALL, steps_for_call

    assert steps_for_call(None) == 1
    assert steps_for_call(0.001) == STEPS_PER_CALL
    assert steps_for_call(CALL_SECONDS / 3) == 3
    assert steps_for_call(5 * CALL_SECONDS) == 1


def test_default_output_is_a_new_file_never_the_shipped_model(mnist, models_dir):
    shipped = {s: store.DIGIT_MODEL.with_suffix(s).read_bytes() for s in store.SUFFIXES}
    result = train(TrainConfig(preset="fast", limit=600), mnist=mnist)
    assert result.path.parent == store.user_dir() and result.path.name.startswith("fast-")
    assert all(result.path.with_suffix(s).is_file() for s in store.SUFFIXES)
    assert {s: store.DIGIT_MODEL.with_suffix(s).read_bytes() for s in store.SUFFIXES} == shipped


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    """A save that fails halfway (the disk full while Keras writes) leaves the previous
    model's three files as they were, and no temporary file."""
    from digitrec.training.networks import build_model
    model = build_model("fast")
    target = tmp_path / "m.keras"
    save_model(model, target, {"v": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["m.json", "m.keras", "m.tflite"]

    def disk_full(self, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(model), "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_model(model, target, {"v": 2})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert json.loads(target.with_suffix(".json").read_text())["v"] == 1


# --- pipeline-made digits and fine-tuning --------------------------------------------------

def test_pipeline_digits_are_training_digits_read_back_through_the_pipeline(mnist):
    from digitrec.reading.normalize import NoDigit, normalize
    from digitrec.training import synth
    from digitrec.training.number_data import pipeline_digits

    x, y = mnist.x_train[:300], mnist.y_train[:300]
    made = pipeline_digits(x, y, 56, seed=3, workers=1)  # every (condition, size) once
    assert made.x.shape == (56 - made.dropped, 28, 28) and made.x.dtype == np.uint8
    assert made.dropped <= 3
    assert (made.y == y[made.source]).all() and made.source.max() < 300
    sources, conditions, sizes = render_plan(len(x), 56, seed=3)
    assert set(conditions) == set(synth.CONDITIONS) and set(sizes) == set(synth.SIZES)
    # Each image is exactly what normalize() makes of its digit rendered in its condition.
    rng = np.random.default_rng([3, 4, 0])  # the first chunk's generator
    expected = []
    for source, cond, size in zip(sources, conditions, sizes):
        image = synth.render_digit(x[source], cond, rng, size=size)
        try:
            expected.append(np.round(normalize(image).x28 * 255).astype(np.uint8))
        except NoDigit:
            pass
    np.testing.assert_array_equal(made.x, np.stack(expected))
    assert not any((made.x[k] == x[s]).all() for k, s in enumerate(made.source))


def render_plan(n_digits, n, seed):
    """Source digit, condition and size of every render of pipeline_digits(x, y, n, seed)
    with len(x) == n_digits, the dropped ones too."""
    from digitrec.training.number_data import plan

    source = np.random.default_rng([seed, 4]).choice(n_digits, size=n, replace=n > n_digits)
    conditions, sizes = plan(n)
    return source, [str(c) for c in conditions], [int(s) for s in sizes]


def test_pipeline_digits_do_not_depend_on_the_number_of_workers(mnist):
    from digitrec.training.number_data import pipeline_digits

    x, y = mnist.x_train[:400], mnist.y_train[:400]
    one = pipeline_digits(x, y, 300, seed=5, workers=1)
    two = pipeline_digits(x, y, 300, seed=5, workers=2)
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.y, two.y)


def test_add_pipeline_digits_appends_plain_images(mnist):
    x, y = mnist.x_train[:300], mnist.y_train[:300]
    same = add_pipeline_digits(x, y, 0.0, seed=1)
    assert same[0] is x and not same[2].any() and same[3] is None
    mx, my, plain, info = add_pipeline_digits(x, y, 0.1, seed=1)
    assert len(mx) == len(my) == len(plain) == 300 + info["images"]
    assert info["images"] + info["dropped_no_digit"] == 30 and info["from"] == "training digits"
    np.testing.assert_array_equal(mx[:300], x)
    assert not plain[:300].any() and plain[300:].all()


def test_augmentation_leaves_plain_images_alone(mnist):
    x, y = mnist.x_train[:64], mnist.y_train[:64]
    plain = np.arange(64) % 2 == 0
    images = next(iter(make_dataset(x, y, 64, augment=True, plain=plain)))[0].numpy()[..., 0]
    np.testing.assert_allclose(images[plain], x[plain] / 255.0, atol=1e-6)
    assert np.abs(images[~plain] - x[~plain] / 255.0).mean() > 0.01


def test_initial_model_takes_the_weights_of_init(tmp_path):
    from digitrec.training.networks import build_model
    base = build_model("fast")
    base.save(tmp_path / "base.keras")
    model = initial_model("fast", str(tmp_path / "base.keras"))
    for a, b in zip(model.get_weights(), base.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not a 'best' model"):
        initial_model("best", str(tmp_path / "base.keras"))


def test_a_model_of_ten_digits_gains_not_a_digit_when_fine_tuned(tmp_path):
    """The head of a ten-digit model moves into the eleven-class one: its digits read as
    before, "not a digit" starts unlikely."""
    import keras

    from digitrec.training.networks import build_model
    old = build_model("fast")
    ten = keras.Model(old.input, keras.layers.Dense(10, activation="softmax")(old.layers[-2].output))
    ten.save(tmp_path / "ten.keras")
    model = initial_model("fast", str(tmp_path / "ten.keras"))
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    before, after = ten.predict(x, verbose=0), model.predict(x, verbose=0)
    assert after.shape == (8, 11) and (after[:, 10] < 0.1).all()
    np.testing.assert_allclose(after[:, :10] / after[:, :10].sum(1, keepdims=True), before, atol=1e-4)


@pytest.mark.slow
def test_brief_training_with_cvl_and_not_a_digit_is_calibrated(tmp_path):
    """Letters and scribbles join as the eleventh class; CVL's other writers fit and
    measure the temperature; the card says all of it."""
    result = train(TrainConfig(preset="fast", epochs=1, batch_size=64, limit=1500, datasets="mnist,cvl",
                               nondigits=300, out=str(tmp_path / "nd.keras")))
    card = result.card
    assert card["not_a_digit"]["letters"] > 500 and card["not_a_digit"]["scribbles"] > 250
    assert card["epoch_shares"]["not a digit"] > 0 and card["tests"]["cvl"]["n"] > 6900
    calibration = card["calibration"]
    assert 0.05 < calibration["temperature"] < 20
    assert set(calibration["measured"]) == {"cvl (other half)", "mnist"}
    assert result.model.output.shape[-1] == 11


@pytest.mark.slow
def test_fine_tuning_with_pipeline_digits(mnist, tmp_path):
    base = train(TrainConfig(preset="fast", epochs=2, batch_size=32, limit=4000,
                             out=str(tmp_path / "base.keras"), command="base"), mnist=mnist)
    tuned = train(TrainConfig(preset="fast", epochs=1, batch_size=32, limit=1000, pipeline_mix=0.5,
                              learning_rate=1e-3, init=str(tmp_path / "base.keras"),
                              out=str(tmp_path / "tuned.keras"), command="tuned"), mnist=mnist)
    card = tuned.card
    assert card["init"]["command"] == "base" and card["init"]["test"] == base.card["test"]
    assert card["pipeline_digits"]["images"] + card["pipeline_digits"]["dropped_no_digit"] == 500
    assert card["train_images"] == 1000 + card["pipeline_digits"]["images"]
    assert card["options"]["pipeline_mix"] == 0.5
    # Fine-tuning starts from the base model, and one short epoch keeps what it knew.
    assert card["test"]["accuracy"] > 0.85


def test_settle_batch_norm_sets_the_average_of_the_batches():
    import keras

    from digitrec.training.train import settle_batch_norm

    inputs = keras.Input((28, 28, 1))
    norm = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Model(inputs, norm(keras.layers.Flatten()(inputs)))
    x = np.random.default_rng(0).integers(0, 256, (96, 28, 28)).astype(np.uint8)
    assert settle_batch_norm(model, x, steps=1000, batch_size=32) == 0  # a long run: left alone
    assert np.allclose(norm.moving_mean.numpy(), 0)
    assert settle_batch_norm(model, x, steps=5, batch_size=32) == 96
    means = [(x[i:i + 32] / 255.0).reshape(32, -1).mean(0) for i in (0, 32, 64)]
    np.testing.assert_allclose(norm.moving_mean.numpy(), np.mean(means, 0), atol=1e-5)
    assert norm.momentum == 0.9


@pytest.mark.slow
def test_a_short_run_reads_digits_at_evaluation(mnist, tmp_path):
    """A dozen steps of the fast preset: its moving statistics would still be near their
    start (about 14% on the test set before they were settled after training)."""
    result = train(TrainConfig(preset="fast", limit=3200, validation=0, out=str(tmp_path / "s.keras")),
                   mnist=mnist)
    assert result.card["batch_norm_recalibrated_on"] > 0
    assert result.card["test"]["accuracy"] > 0.6


def test_a_run_leaves_no_traced_graph_behind(mnist, tmp_path):
    """A process may train again and again (the tests, benchmarks/train_speed.py): a run
    must not leave its traced training step behind (a graph of about 15 MB, held by
    TensorFlow's gradient registry; tensorflow/tensorflow#80895)."""
    import gc

    import tensorflow as tf

    def graphs():
        gc.collect()
        return sum(isinstance(o, tf.Graph) for o in gc.get_objects())

    config = TrainConfig(preset="fast", limit=300, validation=0)
    train(config, mnist=mnist, save=False)  # whatever TensorFlow keeps once per process
    before = graphs()
    for _ in range(2):
        train(config, mnist=mnist, save=False)
    assert graphs() == before


TRAINING_IMPORTS = """
import os, sys
import digitrec.server.worker  # the training process's imports, in its order
import digitrec.training.train as train
print(os.environ["TF_CPP_MIN_LOG_LEVEL"], train.machine()["gpus"])
"""


@pytest.mark.parametrize("level, shown", [(None, "3"), ("1", "1")])
def test_the_training_log_has_no_cuda_init_error_and_a_chosen_level_stays(level, shown):
    """TensorFlow starts (and looks for a GPU) as a training starts: its C++ errors, CUDA's
    "failed call to cuInit" on a machine without a GPU among them, stay out of the log; a
    level the user set is kept."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    out = subprocess.run([sys.executable, "-c", TRAINING_IMPORTS], capture_output=True, text=True,
                         cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == shown
    if level is None:
        assert "cuInit" not in out.stderr and "E0000" not in out.stderr, out.stderr
