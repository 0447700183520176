"""Issue 4 end to end: rendered real-world pictures of MNIST *test* digits read through
the shipped model, numbers, blanks, and the ``read --json`` CLI contract."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from digitrec import cli, synth
from digitrec.predict import LOW_CONFIDENCE, Prediction

# Test digits the model reads on plain MNIST, one of each class.
PICKS = None


def _picks(mnist, recognizer, k=10):
    global PICKS
    if PICKS is None:
        x = mnist.x_test[:300]
        ok = recognizer.probabilities(x / 255.0).argmax(1) == mnist.y_test[:300]
        chosen = []
        for d in range(10):
            idx = np.flatnonzero((mnist.y_test[:300] == d) & ok)
            chosen.append(int(idx[0]))
        PICKS = chosen
    return PICKS[:k]


@pytest.mark.parametrize("condition", synth.CONDITIONS)
def test_condition_digits_read_right(condition, mnist, recognizer):
    rng = np.random.default_rng([4, synth.CONDITIONS.index(condition)])
    idx = _picks(mnist, recognizer)
    images = [synth.render_digit(mnist.x_test[i], condition, rng, size=synth.SIZES[j % 4])
              for j, i in enumerate(idx)]
    preds = recognizer.predict_batch(images)
    right = sum(p.digit == mnist.y_test[i] for p, i in zip(preds, idx))
    assert right >= 8, f"{condition}: {right}/10 [{[p.digit for p in preds]}]"


@pytest.mark.parametrize("kind", synth.BLANKS)
def test_blank_gives_no_digit_with_reason(kind, recognizer):
    pred = recognizer.predict(synth.render_blank(kind, np.random.default_rng([5, 1])))
    assert pred.digit is None and pred.reason
    assert pred.to_dict() == {"digit": None, "reason": pred.reason}


def test_numbers_read_exactly(mnist, recognizer):
    idx = _picks(mnist, recognizer)
    right = 0
    cases = [(0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 0, 2, 4, 6)]
    for n, digits in enumerate(cases):
        rng = np.random.default_rng([6, n])
        image, _, _ = synth.render_number([mnist.x_test[idx[d]] for d in digits], rng, condition="scan")
        number = recognizer.read_number(image)
        right += number.text == "".join(str(d) for d in digits)
        xs = [d.box[0] for d in number.digits]
        assert xs == sorted(xs)
    assert right >= 3


def test_touching_and_broken_number(mnist, recognizer):
    idx = _picks(mnist, recognizer)
    rng = np.random.default_rng(8)
    image, _, _ = synth.render_number([mnist.x_test[idx[d]] for d in (3, 0, 4)], rng,
                                      condition="tablet_thin", touching=1.0, broken=1.0)
    assert len(recognizer.read_number(image).digits) == 3


def test_low_confidence_is_marked():
    p = Prediction(digit=3, confidence=LOW_CONFIDENCE / 2, probabilities=np.full(10, 0.1))
    assert p.low_confidence and p.to_dict()["low_confidence"] is True


def test_cli_read_json_contract(tmp_path, mnist, recognizer, capsys):
    idx = _picks(mnist, recognizer)
    image, _, _ = synth.render_number([mnist.x_test[idx[d]] for d in (2, 0, 2, 6)],
                                      np.random.default_rng(2026), condition="scan")
    good = tmp_path / "number.png"
    cv2.imwrite(str(good), image if image.ndim == 2 else image[..., ::-1])
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((80, 120), 240, np.uint8))
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    code = cli.main(["read", "--json", str(good), str(blank), str(bad)])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert code == 1  # one file could not be read
    assert [r["file"] for r in lines] == [str(good), str(blank), str(bad)]
    first = lines[0]
    assert first["text"] == "2026"
    assert [d["digit"] for d in first["digits"]] == [2, 0, 2, 6]
    for d in first["digits"]:
        assert 0 <= d["confidence"] <= 1 and len(d["box"]) == 4
    assert [d["box"][0] for d in first["digits"]] == sorted(d["box"][0] for d in first["digits"])
    assert lines[1]["text"] is None and lines[1]["digits"] == [] and lines[1]["reason"]
    assert lines[2]["text"] is None and "error" in lines[2]


def test_cli_predict_blank_json(tmp_path, capsys):
    blank = tmp_path / "paper.jpg"
    cv2.imwrite(str(blank), np.full((90, 90, 3), 230, np.uint8))
    assert cli.main(["predict", "--json", str(blank)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["digit"] is None and record["reason"]
