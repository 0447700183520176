"""digitrec.training.networks: every preset builds, takes 28x28x1 and returns ten probabilities."""
import json

import numpy as np
import pytest

from digitrec.training.networks import PRESETS, build_model, describe


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_output_is_a_distribution(preset):
    model = build_model(preset)
    out = model(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32), training=False)
    out = np.asarray(out)
    assert out.shape == (3, 11)  # ten digits and "not a digit"
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert (out >= 0).all()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_cards_architecture_is_the_network(preset):
    """describe() is what a model card says of the network: JSON as written, every layer
    in order, from the 28x28x1 picture to the eleven probabilities (ten digits, "not a digit")."""
    model = build_model(preset)
    summary = describe(model)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["parameters"] == model.count_params()
    assert [layer["type"] for layer in summary["layers"]] == [type(layer).__name__ for layer in model.layers]
    assert summary["layers"][0]["output"] == [28, 28, 1] and summary["layers"][-1]["output"] == [11]


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        build_model("huge")
