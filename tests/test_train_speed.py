"""What makes the fast preset fast must not change what it learns or what it saves."""
from __future__ import annotations

import numpy as np
import pytest

from digitrec.training.networks import build_fast, build_model


def test_make_dataset_visits_every_image_once_per_epoch():
    from digitrec.training.train import make_dataset

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 300)
    x[:, 0, 0] = np.arange(300) % 256  # a fingerprint per image
    x[:, 0, 1] = np.arange(300) // 256
    seen = []
    for a, b in make_dataset(x, y, 64, shuffle=True, seed=3):
        assert a.dtype.name == "float32" and a.shape[1:] == (28, 28, 1)
        a, b = a.numpy(), b.numpy()
        assert a.min() >= 0 and a.max() <= 1
        idx = np.rint(a[:, 0, 0, 0] * 255).astype(int) + 256 * np.rint(a[:, 0, 1, 0] * 255).astype(int)
        np.testing.assert_allclose(a[..., 0], x[idx] / 255.0, atol=1e-6)
        assert (b.argmax(1) == y[idx]).all() and np.allclose(b.sum(1), 1)
        seen.extend(idx)
    assert sorted(seen) == list(range(300))
    assert seen != list(range(300))  # shuffled


def test_bfloat16_weights_move_into_a_float32_model():
    mixed = build_fast(dtype="mixed_bfloat16")
    plain = build_model("fast")
    assert [w.shape for w in mixed.weights] == [w.shape for w in plain.weights]
    plain.set_weights(mixed.get_weights())
    assert all(w.dtype == "float32" for w in plain.weights)
    assert plain.dtype_policy.name == "float32"


@pytest.mark.slow
def test_fast_preset_saves_a_float32_model(mnist, tmp_path):
    import keras

    from digitrec.training.train import TrainConfig, train

    out = tmp_path / "f.keras"
    result = train(TrainConfig(preset="fast", limit=2048, out=str(out)), mnist=mnist)
    loaded = keras.models.load_model(out, compile=False)
    assert all(layer.dtype_policy.name == "float32" for layer in loaded.layers)
    assert result.card["training_precision"] in ("float32", "mixed_bfloat16")
    x = mnist.x_test[:64].astype(np.float32)[..., None] / 255.0
    np.testing.assert_allclose(loaded(x).numpy(), result.model(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_is_keras_batch_normalization(dtype):
    """Same outputs in training and inference, same moving statistics, same weights."""
    import keras

    from digitrec.training.networks import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = (rng.normal(2.0, 3.0, (16, 7, 7, 8))).astype(np.float32)
    fused = FusedBatchNorm(momentum=0.9, dtype=dtype)
    plain = keras.layers.BatchNormalization(momentum=0.9, dtype=dtype)
    fused.build(x.shape), plain.build(x.shape)
    gamma, beta = rng.uniform(0.5, 2, 8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    for layer in (fused, plain):
        layer.set_weights([gamma, beta, np.zeros(8, np.float32), np.ones(8, np.float32)])
    tol = 1e-4 if dtype == "float32" else 5e-2
    for _ in range(3):
        np.testing.assert_allclose(np.asarray(fused(x, training=True), np.float32),
                                   np.asarray(plain(x, training=True), np.float32), atol=tol, rtol=tol)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        # moving mean and variance; the fused kernel's variance has Bessel's n/(n-1)
        np.testing.assert_allclose(a, b, rtol=3e-3 if dtype == "float32" else 3e-2, atol=1e-3)
    assert not np.allclose(fused.get_weights()[2], 0)  # the statistics did move
    plain.set_weights(fused.get_weights())  # inference: the same statistics, the same output
    np.testing.assert_allclose(np.asarray(fused(x, training=False), np.float32),
                               np.asarray(plain(x, training=False), np.float32), atol=tol, rtol=tol)


def test_fast_trains_with_fused_batch_norm_and_saves_the_plain_layer():
    from digitrec.training.networks import FusedBatchNorm

    trained = build_model("fast", dtype="mixed_bfloat16", for_training=True)
    plain = build_model("fast")
    assert any(isinstance(layer, FusedBatchNorm) for layer in trained.layers)
    assert not any(isinstance(layer, FusedBatchNorm) for layer in plain.layers)
    plain.set_weights(trained.get_weights())
    x = np.random.default_rng(1).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(plain(x, training=False).numpy(),
                               np.asarray(trained(x, training=False), np.float32), atol=2e-2)
    best = build_model("best", for_training=True)
    assert not any(isinstance(layer, FusedBatchNorm) for layer in best.layers)
