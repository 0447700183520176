"""What makes the fast preset fast must not change what it learns or what it saves."""
from __future__ import annotations

import numpy as np
import pytest

from digitrec.model import build_fast, build_model


def test_make_dataset_visits_every_image_once_per_epoch():
    from digitrec.train import make_dataset

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

    from digitrec.train import TrainConfig, train

    out = tmp_path / "f.keras"
    result = train(TrainConfig(preset="fast", limit=2048, out=str(out)), mnist=mnist)
    loaded = keras.models.load_model(out, compile=False)
    assert all(layer.dtype_policy.name == "float32" for layer in loaded.layers)
    assert result.card["training_precision"] in ("float32", "mixed_bfloat16")
    x = mnist.x_test[:64].astype(np.float32)[..., None] / 255.0
    np.testing.assert_allclose(loaded(x).numpy(), result.model(x).numpy(), atol=1e-5)
