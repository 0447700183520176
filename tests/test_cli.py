"""The CLI's contracts: predict --json (one object per line per file, errors named, exit
code), --show, evaluate --json, and train's options."""
import json

import cv2
import numpy as np
import pytest

from digitrec.cli import build_parser, main
from tests.conftest import paper_digit


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
        assert len(record["probabilities"]) == 10
        assert 0.5 < record["confidence"] <= 1.0
        assert record["confidence"] == pytest.approx(max(record["probabilities"]), abs=1e-3)


def test_predict_json_blank_and_unreadable(files, capsys):
    code = main(["predict", "--json", str(files["broken"]), str(files["blank"]), str(files["seven"])])
    assert code != 0  # a file could not be read
    broken, blank, seven = lines(capsys)
    assert broken["digit"] is None and "HTML" in broken["error"]
    assert blank["digit"] is None and blank["reason"] and "error" not in blank
    assert seven["digit"] == 7  # the others are still processed


def test_predict_missing_file(tmp_path, capsys):
    assert main(["predict", "--json", str(tmp_path / "nope.png")]) == 1
    (record,) = lines(capsys)
    assert record["digit"] is None and "no such file" in record["error"]


def test_predict_plain_text_and_show(files, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["predict", "--show", str(out), str(files["seven"])]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{files['seven']}: 7")
    figure = cv2.imread(str(out))
    assert figure is not None and figure.shape[1] > figure.shape[0]  # three panels side by side


def test_evaluate_json_on_the_shipped_model(capsys, tmp_path, mnist):
    assert main(["evaluate", "--json", "--data", str(mnist.directory),
                 "--confusion", str(tmp_path / "c.png")]) == 0
    (report,) = lines(capsys)
    assert report["n"] == 10000
    assert report["accuracy"] >= 0.99 and report["loss"] < 0.1
    assert len(report["per_class"]) == 10
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


def test_the_parser_and_help_do_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from digitrec.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
