"""Single digits by everyone, and what is not a digit: one table for a digit model.

For each model given (default: the shipped one), on the reading path (LiteRT, the same
preprocessing as a user's picture):

* accuracy on the test digits of MNIST, ARDIS and USPS, and on CVL's validation writers
  (`python -m digitrec evaluate --dataset NAME` gives the same figures, one set at a time);
* "not a digit": the share of letters by writers held out of training, and of scribbles
  drawn with a held-out seed, given a digit, and given one without "not sure";
* calibration: expected calibration error and the share of readings at 90% or more that
  are right, on the digits of CVL's validation writers that did not fit the temperature
  and on the other test sets, before and after temperature scaling.

    DIGITREC_DATA=../shared/data/mnist .venv/bin/python benchmarks/digits.py [--model A.keras --model B.keras]

Output: a Markdown report on stdout and in benchmarks/results/digits.md.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, data_dir, load, machine_lines  # noqa: E402
from digitrec.reading.calibration import tempered  # noqa: E402
from digitrec.reading.digits import Recognizer  # noqa: E402
from digitrec.training import datasets, nondigits  # noqa: E402
from digitrec.training.evaluate import reliability  # noqa: E402

SETS = ("mnist", "ardis", "usps", "cvl")


def measure(path: str | None, data: str) -> dict:
    rec = Recognizer.load(path, numbers=False)
    out = {"model": str(rec.path), "temperature": rec.temperature, "sets": {}, "reliability": {}}
    for name in SETS:
        dataset = datasets.load(name, data)
        out["sets"][name] = datasets.scored(dataset, rec.probabilities)
        test = datasets.prepared(dataset, "test")
        keep = test.found.copy()
        label = name
        if name == "cvl":  # the half of CVL's validation writers that did not fit the temperature
            writers = datasets.cvl_writers(data, "valid")
            keep &= np.array([int(hashlib.sha256(w.encode()).hexdigest(), 16) % 2 == 1 for w in writers])
            label = "cvl (writers that did not fit T)"
        raw = rec.network(test.x[keep].astype(np.float32)[..., None] / 255.0)
        y = test.y[keep]
        out["reliability"][label] = {"before": reliability(np.asarray(raw), y),
                                     "after": reliability(tempered(raw, rec.temperature), y)}
    out["letters"] = nondigits.letters_report(rec.probabilities, data)
    out["scribbles"] = nondigits.scribbles_report(rec.probabilities, data)
    return out


def name(model: str) -> str:
    """A model's file with its folder: models/digitrec.keras, old/digitrec.keras."""
    return f"{Path(model).parent.name}/{Path(model).name}"


def report(results: list[dict], load_before: str) -> str:
    lines = ["# Digits by everyone, and what is not a digit", "",
             "`DIGITREC_DATA=../shared/data/mnist .venv/bin/python benchmarks/digits.py "
             + " ".join(f"--model {r['model']}" for r in results) + "`", ""]
    lines += machine_lines(load_before) + [""]
    head = "| | " + " | ".join(name(r["model"]) for r in results) + " |"
    rule = "|---|" + "---:|" * len(results)
    lines += ["## Accuracy (test digits; CVL: its 60 validation writers)", "", head, rule]
    for dataset in SETS:
        cells = [f"{r['sets'][dataset]['accuracy']:.2%} ({r['sets'][dataset]['errors']} of {r['sets'][dataset]['n']})"
                 for r in results]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines += ["", "## Not a digit (lower is better)", "", head, rule]
    for what in ("letters", "scribbles"):
        for key, label in (("given_a_digit", "given a digit"), ("given_a_confident_digit", "given a confident digit")):
            cells = [f"{r[what][key]:.1%} of {r[what]['n']}" for r in results]
            lines.append(f"| {what}: {label} | " + " | ".join(cells) + " |")
    lines += ["", "Letters: writers " + ", ".join(results[-1]["letters"]["writers"]) + " of letters/, held out "
              "of training; the letters many people write like a digit ("
              + " ".join(sorted(nondigits.LOOKALIKES)) + ") are not counted. What they are read as:", ""]
    for char, reads in results[-1]["letters"].get("lookalikes_read_as", {}).items():
        lines.append(f"- `{char}`: " + ", ".join(reads))
    lines += ["", "By kind (the last model), given a confident digit:", ""]
    for what in ("letters", "scribbles"):
        kinds = results[-1][what]["by_kind"]
        lines.append(f"- {what}: " + ", ".join(f"{k} {v['given_a_confident_digit']:.0%}" for k, v in
                                               sorted(kinds.items(), key=lambda kv: -kv[1]["given_a_confident_digit"])))
    lines += ["", "## Calibration (expected calibration error; right among readings at >= 90%)", ""]
    for r in results:
        lines += [f"{name(r['model'])}: temperature {r['temperature']}", "",
                  "| held-out digits | ECE before | ECE after | at >= 90%: share, right (before) | (after) |",
                  "|---|---:|---:|---:|---:|"]
        for held, fig in r["reliability"].items():
            b, a = fig["before"], fig["after"]
            lines.append(f"| {held} | {b['ece']:.2%} | {a['ece']:.2%} | {b['share_at_90']:.1%}, "
                         f"{b['right_at_90']:.2%} | {a['share_at_90']:.1%}, {a['right_at_90']:.2%} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="a model's .keras or .tflite (repeat; default: shipped)")
    parser.add_argument("--data", help="MNIST's folder, the other sets beside it (default: $DIGITREC_DATA)")
    parser.add_argument("--out", default=str(RESULTS / "digits.md"))
    args = parser.parse_args()
    before = load()
    data = data_dir(args.data)
    results = [measure(m, data) for m in (args.model or [None])]
    text = report(results, before)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
