"""The fast inference paths give the Keras model's probabilities, whatever the batch size."""
from __future__ import annotations

import numpy as np
import pytest

from digitrec import predict
from digitrec.reading.digits import Recognizer
from digitrec.training.networks import build_fast

ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(3)
    return build_fast()  # untrained is enough: the paths must agree on any weights


@pytest.fixture(scope="module")
def lite(model):
    return Recognizer(model, runtime="lite")


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


def keras_probs(model, x):
    return model(x[..., None], training=False).numpy()


@pytest.mark.parametrize("n", [1, 3, Recognizer.SMALL_BATCH, Recognizer.SMALL_BATCH + 1, 50])
def test_every_path_matches_keras(model, lite, n):
    x = images(n, seed=n)
    got = lite.probabilities(x)
    assert got.shape == (n, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, keras_probs(model, x), atol=ATOL)


def test_lite_runtime_is_used_for_small_batches(lite):
    assert lite.runtime == "tflite" and lite.lite_error is None


def test_lite_batches_match_keras(model, lite):
    x = images(predict._LiteRunner.BATCH * 2 + 5, seed=6)  # two full batches and a padded one
    np.testing.assert_allclose(lite._lite(x[..., None], small=0), keras_probs(model, x), atol=ATOL)


@pytest.mark.parametrize("runtime", ["lite", "tf"])
def test_batch_equals_one_at_a_time(model, lite, runtime):
    rec = lite if runtime == "lite" else Recognizer(model, runtime="tf")
    x = images(Recognizer.CHUNK + 37, seed=1)  # a padded last batch; a chunk boundary (tf)
    batch = rec.probabilities(x)
    singles = np.concatenate([rec.probabilities(x[i: i + 1]) for i in range(0, len(x), 97)])
    np.testing.assert_allclose(batch[::97], singles, atol=ATOL)
    np.testing.assert_allclose(batch.sum(1), 1.0, atol=1e-5)


def test_traced_only_runtime(model):
    rec = Recognizer(model, runtime="tf")
    assert rec.runtime == "tf.function"
    x = images(4, seed=2)
    np.testing.assert_allclose(rec.probabilities(x), keras_probs(model, x), atol=ATOL)


def test_bad_runtime_name(model):
    with pytest.raises(ValueError):
        Recognizer(model, runtime="onnx")


def test_conversion_is_cached_beside_the_model(model, tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "LITE_CACHE", tmp_path / "user-cache")
    path = tmp_path / "m.keras"
    model.save(path)
    first = Recognizer.load(path)  # auto: converts in the background
    assert first.wait_ready(timeout=120)
    cached = list(tmp_path.glob(".m.*.tflite"))
    assert len(cached) == 1
    second = Recognizer.load(path)  # picks the cached file up at once, no thread
    assert second.runtime == "tflite" and not hasattr(second, "_lite_thread")
    x = images(2, seed=4)
    np.testing.assert_allclose(second.probabilities(x), keras_probs(second.model, x), atol=ATOL)


def test_a_wrong_cached_file_is_never_served(tmp_path, monkeypatch):
    import keras

    monkeypatch.setattr(predict, "LITE_CACHE", tmp_path / "user-cache")
    keras.utils.set_random_seed(1)
    one, other = build_fast(), build_fast()
    path = tmp_path / "m.keras"
    one.save(path)
    # Put the *other* model's conversion where the cache for this file would be.
    impostor = Recognizer(other, runtime="tf")
    digest = predict._file_sha256(path)
    predict.lite_cache_candidates(path, digest)[0].write_bytes(
        predict.convert_to_lite(impostor._forward, other))
    rec = Recognizer.load(path)
    rec.wait_ready(timeout=120)
    x = images(3, seed=5)
    np.testing.assert_allclose(rec.probabilities(x), keras_probs(rec.model, x), atol=ATOL)


def test_shipped_model_reads_the_same_digits_on_both_paths(mnist):
    fast = Recognizer.load(runtime="lite")
    slow = Recognizer(fast.model, runtime="tf")
    x = mnist.x_test[:200].astype(np.float32) / 255.0
    one_by_one = np.stack([fast.probabilities(x[i: i + 1])[0] for i in range(len(x))])
    np.testing.assert_allclose(one_by_one, slow.probabilities(x), atol=ATOL)
    assert (one_by_one.argmax(1) == mnist.y_test[:200]).mean() > 0.97
