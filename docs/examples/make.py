"""Make the example pictures the Upload page offers (and the README shows), from the data
sets in $DIGITREC_DATA's folder (MNIST there, the others beside it):

    python docs/examples/make.py

* digit-photo.jpg  an MNIST test digit drawn as a phone photo (uneven light, a shadow,
                   sensor noise, JPEG): :func:`digitrec.training.synth.render_digit`
* cheque.jpg       a cheque's amount from orand-train, as published (its file is named
                   in README.md beside this script)
* row.png          five MNIST test digits written in one row on ruled paper:
                   :func:`digitrec.training.synth.render_number`

Each is the first candidate, in a fixed order, that the shipped networks read right (an
example to try, not a measure of anything). Deterministic: the same data, the same files.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec.reading.decode import load_image
from digitrec.reading.digits import Recognizer
from digitrec.training import synth
from digitrec.training.datasets import load_mnist

HERE = Path(__file__).resolve().parent
ROW = 5  # digits in the row example


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG", optimize=True)
    return out.getvalue()


def main() -> None:
    data = Path(os.environ.get("DIGITREC_DATA", HERE.parents[2] / "shared" / "data" / "mnist"))
    recognizer = Recognizer.load()
    mnist = load_mnist(data)
    rng = np.random.default_rng(7)

    for i in range(100):  # a digit photo
        picture = synth.render_digit(mnist.x_test[i], "phone_shadow", rng, size=160)
        if recognizer.predict(picture).digit == int(mnist.y_test[i]):
            (HERE / "digit-photo.jpg").write_bytes(jpeg(picture))
            print(f"digit-photo.jpg: MNIST test digit {i} (a {mnist.y_test[i]})")
            break

    cheques = data.parent / "orand-train"
    with open(cheques / "labels.csv", newline="") as f:
        amounts = [r for r in csv.DictReader(f) if len(r["text"]) == 4]
    for r in amounts:
        picture = load_image(cheques / r["file"])
        number = recognizer.read_number(picture)
        if number.text.replace(".", "").replace(",", "") == r["text"] and not number.low_confidence \
                and recognizer.count_digits(picture).several:
            shutil.copyfile(cheques / r["file"], HERE / "cheque.jpg")
            print(f"cheque.jpg: orand-train {r['file']} ({r['text']})")
            break

    for start in range(0, 500, ROW):  # a row of digits
        idx = list(range(start, start + ROW))
        picture, _, _ = synth.render_number([mnist.x_test[i] for i in idx], rng, condition="ruled", size=72,
                                            touching=0.0, broken=0.0)
        text = "".join(str(int(mnist.y_test[i])) for i in idx)
        if recognizer.read_number(picture).text == text:
            (HERE / "row.png").write_bytes(png(picture))
            print(f"row.png: MNIST test digits {idx[0]}-{idx[-1]} ({text})")
            break


if __name__ == "__main__":
    main()
