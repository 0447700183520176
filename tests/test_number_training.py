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


@pytest.mark.parametrize("backbone", ["strip", "digits"])
def test_train_recognizer_briefly(DATA, tmp_path, capsys, backbone):
    out = tmp_path / "recognizer.keras"
    code = cli.main(["train-recognizer", "--rendered", "60", "--limit", "40", "--orand-copies", "1",
                     "--danish-copies", "1", "--epochs", "1", "--backbone", backbone, "--data", DATA,
                     "--out", str(out)])
    assert code == 0
    card = json.loads(store.card_path(out).read_text())
    assert card["options"]["backbone"] == backbone
    assert ("digit_model" in card) == (backbone == "digits")  # the digit model it started from, named
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


def test_recognizers_trained_apart_are_joined_into_one_that_reads_with_both(DATA, tmp_path, capsys):
    """Two recognizers (random weights will do) joined: one .keras and .tflite giving both
    networks' columns, its card naming both and measuring the held-out parts; what cannot
    be joined, or fine-tuned, refused with a message."""
    from digitrec.training.recognizer import build, members_of

    paths = []
    for i, shape in enumerate(({"backbone": "strip", "convs": 1}, {"backbone": "digits"})):
        path = tmp_path / f"member{i}.keras"
        build(seed=i, **shape).save(path)
        store.card_path(path).write_text(json.dumps({"format": "digitrec-recognizer-card/1",
                                                     "options": {"command": f"made {i}"}}))
        paths.append(str(path))
    out = tmp_path / "joined.keras"
    assert cli.main(["join-recognizers", *paths, "--limit", "10", "--data", DATA, "--out", str(out)]) == 0
    card = json.loads(store.card_path(out).read_text())
    assert [m["command"] for m in card["members"]] == ["made 0", "made 1"]
    assert all(len(m["sha256"]) == 64 for m in card["members"])
    assert set(card["held_out"]) == {"orand-train", "danish-rows"} and "held-out orand-train" in capsys.readouterr().out

    import keras

    joined = keras.models.load_model(out, compile=False)
    strips = np.random.default_rng(1).random((3, 32, 256, 1), dtype=np.float32)
    alone = [keras.models.load_model(p, compile=False)(strips, training=False) for p in paths]
    network = engine.load(store.lite_path(out))
    probs = network(strips)
    assert probs.shape == (3, 2, 64, 15) and np.allclose(probs, np.stack(alone, 1), atol=1e-4)
    assert len(members_of(joined)) == 2

    assert cli.main(["join-recognizers", str(out), paths[0], "--data", DATA, "--out", str(tmp_path / "again")]) == 2
    assert "holds joined recognizers already" in capsys.readouterr().err
    assert cli.main(["join-recognizers", paths[0], "--data", DATA, "--out", str(tmp_path / "one")]) == 2
    assert "two recognizers or more" in capsys.readouterr().err
    assert cli.main(["join-recognizers", paths[0], paths[0], "--data", DATA, "--out", str(tmp_path / "same")]) == 2
    assert "the same recognizer is given twice" in capsys.readouterr().err
    assert card["command"].startswith("python -m digitrec join-recognizers")

    # a joined file is no start for a fine-tune: said at once, before any example is made
    assert cli.main(["train-recognizer", "--init", str(out), "--data", DATA, "--out", str(tmp_path / "ft")]) == 2
    assert "holds joined recognizers" in capsys.readouterr().err
    assert cli.main(["train-recognizer", "--init", paths[1], "--backbone", "strip", "--data", DATA,
                     "--out", str(tmp_path / "ft")]) == 2
    assert "of another shape" in capsys.readouterr().err


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


def _boxes_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_boxes(path, rows):
    import csv

    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\r\n")
        out.writeheader()
        out.writerows(rows)


def _read_as_labelled(boxes: dict, text: dict) -> None:
    """Each box is that of a number the shipped reader reads as the cell's label."""
    from digitrec.reading.decode import load_image
    from digitrec.reading.digits import Recognizer

    reader = Recognizer.load()
    for path, box in boxes.items():
        numbers = reader.read(load_image(path)).numbers
        assert any(n.box == box and "".join(str(d.digit) for d in n.digits) == text[path] for n in numbers)


def test_cells_without_a_box_are_boxed_where_the_reader_reads_the_label(DATA, tmp_path):
    """The boxes of the first cells taken out, the labeller boxes such cells again: each
    new box is that of a number the reader reads as the cell's label, most where the boxes
    taken out were, and no other cell's box changes."""
    from digitrec.training import danish_boxes
    from digitrec.training.detector import iou

    rows = _boxes_rows(real_numbers.BOXES)
    cells = real_numbers.danish(DATA, verify=False)
    root = cells[0].path.parent.parent
    given = {str(n.path.relative_to(root)): n.box for n in cells[:50] if n.box}
    assert len(given) >= 40
    boxes_csv = tmp_path / "danish_boxes.csv"
    _write_boxes(boxes_csv, [r for r in rows if r["file"] not in given])
    before = {n.path: n.box for n in real_numbers.danish(DATA, verify=False, boxes_csv=boxes_csv)}
    tried, added = danish_boxes.label(DATA, "a test", boxes_csv=boxes_csv, limit=60)
    assert tried == 60 and added >= 0.8 * len(given)
    after = real_numbers.danish(DATA, verify=False, boxes_csv=boxes_csv)
    new = {n.path: n.box for n in after if before[n.path] is None and n.box is not None}
    assert len(new) == added == boxes_csv.read_text().count("a test")
    assert all(n.box == before[n.path] for n in after if before[n.path] is not None)  # kept as they were
    _read_as_labelled(new, {n.path: n.text for n in after})
    again = [iou(box, given[str(p.relative_to(root))]) for p, box in new.items() if str(p.relative_to(root)) in given]
    assert np.mean(np.array(again) >= 0.5) >= 0.8


def test_every_cell_read_again_gets_the_box_its_label_is_read_in(DATA, tmp_path):
    """``every``: the first cells' boxes spoiled (each the whole picture) and one taken out,
    the labeller reads those cells again and puts in place the box of the number it reads as
    the label; the cell that had none gets its box after the others, and the other rows stay
    as they were, in their order."""
    import cv2

    from digitrec.training import danish_boxes

    rows = _boxes_rows(real_numbers.BOXES)
    cells = real_numbers.danish(DATA, verify=False)
    root = cells[0].path.parent.parent
    first = {str(n.path.relative_to(root)): n for n in cells[:30]}
    spoiled, dropped = [], None
    for r in rows:
        if r["file"] in first:
            if dropped is None:
                dropped = r["file"]
                continue
            h, w = cv2.imread(str(first[r["file"]].path), cv2.IMREAD_GRAYSCALE).shape
            r = {**r, "x": "0", "y": "0", "w": str(w), "h": str(h)}
        spoiled.append(r)
    boxes_csv = tmp_path / "danish_boxes.csv"
    _write_boxes(boxes_csv, spoiled)
    boxed = sum(1 for r in rows if r["file"] in first)
    tried, given = danish_boxes.label(DATA, "a test", boxes_csv=boxes_csv, limit=30, every=True)
    assert tried == 30 and given >= 0.8 * boxed
    after = _boxes_rows(boxes_csv)
    assert [r["file"] for r in after[: len(spoiled)]] == [r["file"] for r in spoiled]  # in place, in order
    appended = after[len(spoiled):]
    assert dropped in [r["file"] for r in appended]  # read again, and given a box after the others
    assert all(r["by"] == "a test" and r["file"] in first for r in appended)
    assert len({r["file"] for r in after}) == len(after)  # none twice
    redone = [r for r in after if r["by"] == "a test"]
    assert len(redone) == given
    assert all(a == b for a, b in zip(after, spoiled) if a["by"] != "a test")
    _read_as_labelled({first[r["file"]].path: tuple(int(r[k]) for k in "xywh") for r in redone},
                      {n.path: n.text for n in first.values()})
    for r in redone:  # a box round the number, not the whole cell
        h, w = cv2.imread(str(first[r["file"]].path), cv2.IMREAD_GRAYSCALE).shape
        assert int(r["w"]) * int(r["h"]) < 0.5 * w * h


def test_a_cell_listed_twice_has_every_row_read_again(DATA, tmp_path):
    """A hand-edited CSV that lists a cell twice: both rows get the box read again (the
    loader keeps the last), nothing is appended."""
    from digitrec.training import danish_boxes

    rows = _boxes_rows(real_numbers.BOXES)
    cell = real_numbers.danish(DATA, verify=False)[0]
    root = cell.path.parent.parent
    name = str(cell.path.relative_to(root))
    base = next(r for r in rows if r["file"] == name)
    twice = [base, *(r for r in rows if r["file"] != name), {**base, "x": "0", "y": "0", "w": "5", "h": "5"}]
    boxes_csv = tmp_path / "danish_boxes.csv"
    _write_boxes(boxes_csv, twice)
    assert danish_boxes.label(DATA, "a test", boxes_csv=boxes_csv, limit=1, every=True) == (1, 1)
    after = _boxes_rows(boxes_csv)
    assert len(after) == len(twice) and [r["by"] for r in after if r["file"] == name] == ["a test"] * 2
    assert real_numbers.danish(DATA, verify=False, boxes_csv=boxes_csv)[0].box != (0, 0, 5, 5)
    assert [p.name for p in tmp_path.iterdir()] == ["danish_boxes.csv"]  # no temporary file left


@pytest.mark.parametrize("shape", [{"backbone": "strip", "convs": 1}, {"backbone": "strip", "convs": 2},
                                   {"backbone": "digits"}])
def test_the_recognizer_is_exported_unrolled_with_its_shape_and_weights(shape):
    from digitrec.training.recognizer import build, shape_of, unrolled

    model = build(seed=3, **shape)
    reading = unrolled(model)
    assert shape_of(model) == shape_of(reading) == shape
    strips = np.random.default_rng(0).random((2, 32, 256, 1), dtype=np.float32)
    assert np.allclose(model(strips, training=False), reading(strips, training=False), atol=1e-5)


def test_the_digit_backbone_starts_from_the_digit_model_and_slides_it_along_the_strip():
    """Each of the recognizer's 64 columns sees a 28x28 window of the strip (resized to 28
    rows) centred on its 4-pixel frame, through the digit model's own convolutions; the
    first block stays as the digit model learnt it."""
    import keras
    import tensorflow as tf

    from digitrec.reading.recognize import FRAMES, WIDTH
    from digitrec.training.recognizer import FROZEN, build, keep_first_block, start_from_digits

    model = build(backbone="digits")
    start_from_digits(model, str(store.DIGIT_MODEL))
    keep_first_block(model)
    digits = keras.models.load_model(store.DIGIT_MODEL, compile=False)
    convs = [layer for layer in digits.layers if isinstance(layer, keras.layers.Conv2D)]
    mine = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(mine) == len(convs) == 7
    assert all(np.array_equal(a.get_weights()[0], b.get_weights()[0]) for a, b in zip(convs, mine))
    weighted = [layer for layer in model.layers if layer.weights]
    assert [layer.trainable for layer in weighted[:FROZEN + 1]] == [False] * FROZEN + [True]

    # where each column looks: the input's weight in its features, centred on its frame
    features = keras.Model(model.input, mine[-1].output)
    x = np.random.default_rng(1).random((1, 32, WIDTH, 1), dtype=np.float32)
    centres = []
    for column in (0, 20, FRAMES - 1):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            total = tf.reduce_sum(features(xt, training=False)[0, 0, column])
        weight = np.abs(tape.gradient(total, xt).numpy()[0, :, :, 0]).sum(axis=0)
        assert np.count_nonzero(weight) <= 28 + 14  # a digit's width (and the resize's reach)
        centres.append((weight * np.arange(WIDTH)).sum() / weight.sum())
    assert abs(centres[1] - (4 * 20 + 2)) <= 3
    assert centres[0] < centres[1] < centres[2]
    assert features.output.shape[1:] == (1, FRAMES, 128)
