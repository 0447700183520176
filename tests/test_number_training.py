"""Short real trainings of the two number networks: real numbers (orand-train,
danish-rows) and rendered ones in, a model with its .tflite and card out, the held-out
parts scored and never trained on."""
from __future__ import annotations

import json

import numpy as np
import pytest

from digitrec import cli, store
from digitrec.reading import engine
from digitrec.training import real_numbers
from tests.conftest import data_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def DATA():
    directory = data_dir()
    if directory is None or not (directory.parent / "orand-train").is_dir():
        pytest.skip("the real number sets are not available beside MNIST")
    return str(directory)


def test_held_out_parts_are_apart_and_fixed(DATA):
    for name in ("orand-train", "danish-rows"):
        train, held = real_numbers.split(name, DATA, verify=False)
        assert held and train and not {n.path for n in train} & {n.path for n in held}
        again = real_numbers.split(name, DATA, verify=False)[1]
        assert [n.path for n in again] == [n.path for n in held]
    train, held = real_numbers.split("danish-rows", DATA, verify=False)
    assert not {n.group for n in train} & {n.group for n in held}  # whole books held out


def test_orand_boxes_hold_every_digit_box(DATA):
    train, _ = real_numbers.split("orand-train", DATA, limit=20)
    for n in train:
        x, y, w, h = n.box
        assert w > 0 and h > 0 and len(n.text) >= 1


def test_train_recognizer_briefly(DATA, tmp_path, capsys):
    out = tmp_path / "recognizer.keras"
    code = cli.main(["train-recognizer", "--rendered", "60", "--limit", "40", "--orand-copies", "1",
                     "--danish-copies", "1", "--epochs", "1", "--data", DATA, "--out", str(out)])
    assert code == 0
    card = json.loads(store.card_path(out).read_text())
    made = card["examples"]["by_source"]
    assert made["orand-train"] == 40 and made["rendered"] == pytest.approx(60, abs=5)
    assert 20 <= made["danish-rows"] <= 40  # the cells of the 40 that have a box
    assert set(card["held_out"]) == {"orand-train", "danish-rows"}
    assert all(0 <= h["read_exactly"] <= 1 and h["numbers"] > 0 for h in card["held_out"].values())
    assert "train-recognizer" in card["options"]["command"]
    network = engine.load(store.lite_path(out))
    probs = network(np.zeros((2, 32, 256, 1), np.float32))
    assert probs.shape == (2, 64, 15) and np.allclose(probs.sum(-1), 1, atol=1e-4)
    assert "held-out danish-rows" in capsys.readouterr().out


def test_train_detector_briefly(DATA, tmp_path):
    out = tmp_path / "detector.keras"
    code = cli.main(["train-detector", "--pages", "64", "--limit", "30", "--epochs", "1", "--batch-size", "16",
                     "--data", DATA, "--out", str(out)])
    assert code == 0
    card = json.loads(store.card_path(out).read_text())
    assert card["examples"]["pictures"] >= 60 and set(card["examples"]["by_kind"]) <= {
        "page", "amount", "cell", "column", "large", "blank"}
    assert card["held_out"]["orand-train"]["pictures"] == 30
    network = engine.load(store.lite_path(out))
    assert network(np.zeros((1, 256, 256, 1), np.float32)).shape == (1, 64, 64, 5)
