"""The CLI's contracts: predict --json and read --json (one object per line per file,
errors named, exit code), --show, evaluate --json, and train's options."""
import json
import re
import sys

import cv2
import numpy as np
import pytest

from digitrec.cli import build_parser, main
from digitrec.training import synth
from tests.conftest import UNSURE, paper_digit, picks, readable_digits, unsure_row


@pytest.fixture(scope="module")
def files(tmp_path_factory, mnist):
    d = tmp_path_factory.mktemp("cli")
    seven = d / "seven.png"
    cv2.imwrite(str(seven), paper_digit(mnist.x_test[0]))  # a 7
    two = d / "two.jpg"
    cv2.imwrite(str(two), paper_digit(mnist.x_test[1]))  # a 2
    blank = d / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160), 250, np.uint8))
    broken = d / "broken.png"
    broken.write_bytes(b"<html><body>not a picture</body></html>")
    return {"seven": seven, "two": two, "blank": blank, "broken": broken}


def lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_json_one_object_per_file(files, capsys):
    code = main(["predict", "--json", str(files["seven"]), str(files["two"])])
    assert code == 0
    seven, two = lines(capsys)
    assert seven["file"] == str(files["seven"]) and seven["digit"] == 7
    assert two["digit"] == 2
    for record in (seven, two):
        assert set(record) == {"file", "digit", "confidence", "probabilities", "not_a_digit", "low_confidence"}
        assert len(record["probabilities"]) == 10 and record["low_confidence"] is False
        assert record["confidence"] == pytest.approx(max(record["probabilities"]), abs=1e-3)


def test_predict_json_blank_and_unreadable(files, capsys):
    code = main(["predict", "--json", str(files["broken"]), str(files["blank"]), str(files["seven"])])
    assert code == 1  # a file could not be read
    broken, blank, seven = lines(capsys)
    assert broken["digit"] is None and "HTML" in broken["error"]
    assert blank["digit"] is None and blank["reason"] and "error" not in blank
    assert seven["digit"] == 7  # the others are still processed
    assert main(["predict", "--json", str(files["blank"])]) == 0  # no digit is an answer, not an error
    (blank,) = lines(capsys)
    assert blank["digit"] is None and blank["reason"]


def test_predict_missing_file(tmp_path, capsys):
    assert main(["predict", "--json", str(tmp_path / "nope.png")]) == 1
    (record,) = lines(capsys)
    assert record["digit"] is None and "no such file" in record["error"]


@pytest.mark.parametrize("command", ["predict", "read"])
def test_a_missing_file_is_named_once(command, tmp_path, capsys):
    missing = str(tmp_path / "missing.png")
    assert main([command, missing]) == 1
    text = capsys.readouterr().out.strip()
    assert text == f"{missing}: error: no such file" and text.count("missing.png") == 1


def test_predict_plain_text_and_show(files, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["predict", "--show", str(out), str(files["seven"])]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{files['seven']}: 7")
    figure = cv2.imread(str(out))
    assert figure is not None and figure.shape[1] > figure.shape[0]  # three panels side by side


def test_predict_says_a_scribble_is_not_a_digit(tmp_path, capsys):
    """A star drawn where a digit was expected: "not a digit", in text and in JSON."""
    import numpy as np

    from digitrec.training.nondigits import scribble
    path = tmp_path / "star.png"
    cv2.imwrite(str(path), scribble("star", np.random.default_rng(7)))
    assert main(["predict", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: not a digit (")
    assert main(["predict", "--json", str(path)]) == 0
    (record,) = lines(capsys)
    assert record["digit"] is None and record["reason"] == "not a digit" and record["not_a_digit"] > 0.5
    assert len(record["probabilities"]) == 10


def test_evaluate_json_on_the_shipped_model(capsys, tmp_path, mnist, recognizer):
    """evaluate reads through the exported network, calibrated as reading is: the
    accuracy of the card, which training measured with Keras, within a digit or two (the
    temperature moves no digit's winner), and the loss the calibrated probabilities'."""
    assert main(["evaluate", "--json", "--data", str(mnist.directory),
                 "--confusion", str(tmp_path / "c.png")]) == 0
    (report,) = lines(capsys)
    card = recognizer.card["test"]
    assert report["n"] == card["n"] == 10000
    assert report["accuracy"] >= 0.995
    assert abs(report["accuracy"] - card["accuracy"]) <= 2 / 10000
    assert 0 < report["loss"] < 0.1
    assert report["errors"] == round((1 - report["accuracy"]) * report["n"])
    assert len(report["per_class"]) == 10 and min(report["per_class"]) >= 0.99
    assert (tmp_path / "c.png").stat().st_size > 0


def test_train_options_parse():
    args = build_parser().parse_args(
        ["train", "--preset", "fast", "--epochs", "3", "--batch-size", "64", "--seed", "5",
         "--data", "/d", "--out", "/tmp/x.keras", "--no-augment"])
    assert (args.preset, args.epochs, args.batch_size, args.seed, args.data, args.out, args.augment) == (
        "fast", 3, 64, 5, "/d", "/tmp/x.keras", False)


def test_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    code = main(["evaluate", "--data", str(tmp_path / "missing")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_read_json_contract(tmp_path, mnist, recognizer, capsys):
    """read --json: one line per file; every number on a page with its box and digits, in
    reading order; a blank page says why; an unreadable file says what is wrong."""
    idx = picks(mnist, recognizer)
    page, _, boxes, kept = synth.render_page(
        [[mnist.x_test[idx[d]] for d in (2, 0, 2, 6)], [mnist.x_test[idx[d]] for d in (1, 5)]],
        np.random.default_rng(7), condition="scan", height=900, digit_height=(0.08, 0.1))
    assert kept == [0, 1]
    good = tmp_path / "page.png"
    cv2.imwrite(str(good), page if page.ndim == 2 else page[..., ::-1])
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((80, 120), 240, np.uint8))
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    code = main(["read", "--json", str(good), str(blank), str(bad)])
    first, empty, unreadable = lines(capsys)
    assert code == 1  # one file could not be read
    assert [r["file"] for r in (first, empty, unreadable)] == [str(good), str(blank), str(bad)]
    assert set(first) == {"file", "text", "numbers"}
    order = sorted(range(2), key=lambda k: (boxes[k][1], boxes[k][0]))  # top to bottom
    expected = [("2026", "15")[k] for k in order]
    texts = [n["text"] for n in first["numbers"]]
    assert first["text"] == " ".join(texts)
    assert [len(t) for t in texts] == [len(e) for e in expected]  # each number whole, in reading order
    assert sum(a == b for t, e in zip(texts, expected) for a, b in zip(t, e)) >= 5  # of its 6 digits
    for number, k in zip(first["numbers"], order):
        assert set(number) == {"text", "box", "confidence", "low_confidence", "digits"}
        x, y, w, h = number["box"]
        bx, by, bw, bh = boxes[k]
        assert x <= bx + 0.1 * bw and y <= by + 0.1 * bh and x + w >= bx + 0.9 * bw and y + h >= by + 0.9 * bh
        assert number["low_confidence"] is False and number["confidence"] >= 0.5  # a clear scan
        for d in number["digits"]:
            assert set(d) == {"digit", "confidence", "box"} and len(d["box"]) == 4
            dx, dy, dw, dh = d["box"]
            assert x <= dx and dx + dw <= x + w and y <= dy and dy + dh <= y + h  # inside its number
        assert [d["box"][0] for d in number["digits"]] == sorted(d["box"][0] for d in number["digits"])
    assert empty == {"file": str(blank), "text": None, "numbers": [], "reason": empty["reason"]} and empty["reason"]
    assert unreadable["text"] is None and unreadable["numbers"] == [] and "text file" in unreadable["error"]


def test_read_says_why_a_number_is_unsure(tmp_path, mnist, recognizer, capsys):
    """Three pairs of digits, each drawn over each other: `read` gives its reading and why it is unsure."""
    row = unsure_row(readable_digits(mnist, recognizer, UNSURE))
    assert recognizer.read_number(row).low_confidence
    path = tmp_path / "unsure.png"
    cv2.imwrite(str(path), row)
    assert main(["read", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.match(rf"{re.escape(str(path))}: [\d.,/-]+  \(low confidence: read at \d+%", out), out


def test_a_missing_optional_library_names_the_extra_to_install(files, tmp_path, monkeypatch, capsys):
    """An install without the ``plots`` extra: ``predict --show`` says what to install,
    before reading anything, and plain ``predict`` still reads."""
    monkeypatch.delitem(sys.modules, "digitrec.training.plots", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["predict", "--show", str(tmp_path / "fig.png"), str(files["seven"])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "pip install 'digitrec[plots]'" in captured.err
    assert "matplotlib" in captured.err and "Traceback" not in captured.err
    assert main(["predict", str(files["seven"])]) == 0


def test_a_training_command_without_its_libraries_names_the_train_extra(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "digitrec.training.plots", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["train", "--limit", "300"]) == 2
    assert "pip install 'digitrec[train]'" in capsys.readouterr().err
