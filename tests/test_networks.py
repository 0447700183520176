"""digitrec.training.networks: every preset builds, takes 28x28x1 and returns ten probabilities."""
import numpy as np
import pytest

from digitrec.training.networks import PRESETS, build_model, describe


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_output_is_a_distribution(preset):
    model = build_model(preset)
    out = model(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32), training=False)
    out = np.asarray(out)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert (out >= 0).all()


def test_best_is_at_least_as_strong_as_the_seeds_model():
    # At least the seeds' Conv32-Pool-Conv64-Pool-Dense128 capacity, with batch norm.
    best, seed = describe(build_model("best")), describe(build_model("seed"))
    kinds = [layer["type"] for layer in best["layers"]]
    assert kinds.count("Conv2D") >= 4 and "BatchNormalization" in kinds and "Dropout" in kinds
    assert best["parameters"] > 0 and seed["parameters"] > 0


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        build_model("huge")
