"""digitrec.train: the pipeline, a brief real training run, the card, atomic saves."""
import json

import numpy as np
import pytest

from digitrec.predict import Recognizer
from digitrec.train import Progress, TrainConfig, make_dataset, save_atomic, train


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
    from digitrec.model import PRESETS
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
    assert card["data_sha256"] == mnist.checksums
    loaded = Recognizer.load(out)
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


def test_default_output_is_a_new_file_never_the_shipped_model(mnist, models_dir):
    from digitrec import registry
    from digitrec.predict import SHIPPED_MODEL

    shipped = SHIPPED_MODEL.read_bytes()
    result = train(TrainConfig(preset="fast", limit=600), mnist=mnist)
    assert result.path.parent == registry.user_dir() and result.path.name.startswith("fast-")
    assert result.path.exists() and result.path.with_suffix(".json").exists()
    assert SHIPPED_MODEL.read_bytes() == shipped


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    from digitrec.model import build_model
    model = build_model("fast")
    target = tmp_path / "m.keras"
    save_atomic(model, target, {"v": 1})
    before = target.read_bytes()

    def disk_full(self, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(model), "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_atomic(model, target, {"v": 2})
    assert target.read_bytes() == before
    assert json.loads(target.with_suffix(".json").read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]
