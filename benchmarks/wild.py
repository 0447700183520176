"""Numbers in the wild: every number found and read in a whole picture.

    python benchmarks/wild.py [--pages 30] [--seed 0] [--orand DIR] [--failures DIR]
                                 [--out benchmarks/results/wild.md]

Pages: MNIST *test* digits written as numbers of 1 to 8 digits, one to four to a page,
anywhere on it, their digits a twentieth to a sixth of the page's height, on each paper
of synth.PAGE_CONDITIONS (a printed cheque background among them); a page of numbers
with separators (1.500, 3,25, 12/05, 12-05, a closing dash or =); tight crops of one
number (what ``read_number`` is measured on in realworld.py), read as whole pictures;
amounts as written on cheques and forms by the hands of MNIST, ARDIS and USPS (their *test*
digits, synth.render_amount: the recognizer trains on this renderer with their training
digits, so these rows flatter it); the real cheque amounts of ``orand-dev`` as they are;
and the parts of ``orand-train`` and ``danish-rows`` held out from training
(digitrec.training.real_numbers.split), whole pictures as they are. Every picture is read
by ``Recognizer.read`` (detect, then recognize each number).

Prints, per condition: numbers read exactly (digits only), numbers found (a region
covering half of the number and lying half in it; on orand-dev, whose pictures are the
amount's field with the paper the writer left blank, one number read in the picture),
numbers found that are not there (on the real sets: numbers read beyond one), pictures
read wholly right, pictures with a number marked low_confidence (and how many of those
were read wrong), how many of the pictures read wrong were so marked, and the median time
per picture; then the time for a 12-megapixel phone photo of a page.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, ROOT, data_dir, load, machine_lines, publish, table  # noqa: E402
from digitrec import store  # noqa: E402
from digitrec.reading.decode import load_image  # noqa: E402
from digitrec.reading.digits import Recognizer  # noqa: E402
from digitrec.training import (
    datasets,  # noqa: E402
    real_numbers,  # noqa: E402
    synth,  # noqa: E402
)
from digitrec.training.datasets import load_mnist  # noqa: E402
from digitrec.training.number_examples import mnist_box  # noqa: E402

ORAND = ROOT.parent / "shared" / "data" / "orand-dev"
SEPARATED = ("1.500", "3,25", "12-05", "1500-", "1500=", "25.000", "0.75", "1.250.000")  # digits drawn anew
SLASHED = ("12/05", "3/4", "25/12/24")  # dates: a slash is read as a 1 today
PHONE = (3024, 4032)  # a 12-megapixel phone photo, portrait


def digits_of(text: str | None) -> str:
    return "".join(c for c in (text or "") if c.isdigit())


def _cover(a, b) -> tuple[float, float]:
    """How much of box ``a`` box ``b`` covers, and how much of ``b`` lies in ``a``."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / max(1, aw * ah), inter / max(1, bw * bh)


def score(reading, truths, boxes):
    """(numbers read exactly, numbers found, regions that are no number) of one picture:
    a number is found by the one region that covers half of it and lies half in it. A box
    of None is a picture that is the one number's field (a cheque's amount, blank paper
    around it as the writer left it): found when one number is read in the picture, and
    any number read beyond one is not there."""
    if None in boxes:
        assert len(truths) == 1, "a picture that is a number's field holds one number"
        n = len(reading.numbers)
        exact = n == 1 and digits_of(reading.numbers[0].text) == truths[0]
        return int(exact), int(n == 1), max(0, n - 1)
    exact = found = 0
    matched = set()
    for truth, box in zip(truths, boxes):
        hits = [k for k, n in enumerate(reading.numbers) if n.box is not None and min(_cover(box, n.box)) >= 0.5]
        matched.update(hits)
        if len(hits) == 1:
            found += 1
            exact += digits_of(reading.numbers[hits[0]].text) == truth
    return exact, found, len(reading.numbers) - len(matched)


class Digits:
    """Test digits (MNIST's, or another set's in MNIST's box) in a fixed random order,
    handed out without repeats."""

    def __init__(self, mnist, seed, x=None, y=None):
        self.x, self.y = (mnist.x_test, mnist.y_test) if x is None else (x, y)
        self.order = np.random.default_rng(seed).permutation(len(self.y))
        self.cursor = 0

    def take(self, k):
        idx = self.order[np.arange(self.cursor, self.cursor + k) % len(self.order)]
        self.cursor += k
        return idx

    def number(self, rng, shape: str | None = None):
        """(items for synth.number_coverage, the digits as text): ``shape`` a pattern
        such as "1.500" whose digits are drawn anew, or 1 to 8 digits."""
        pattern = shape or "0" * int(rng.integers(1, 9))
        idx = iter(self.take(sum(c.isdigit() for c in pattern)))
        items, truth = [], ""
        for c in pattern:
            if c.isdigit():
                i = next(idx)
                items.append(self.x[i])
                truth += str(int(self.y[i]))
            else:
                items.append(c)
        return items, truth


def pages_of(pool: Digits, seed: int, condition: str, k: int, shapes=None, **draw):
    """``k`` pages of ``condition`` (synth.PAGE_CONDITIONS), 1 to 4 numbers each, drawn
    from ``pool`` (``shapes``: patterns such as "1.500", else 1 to 8 digits): (image, the
    numbers placed as (items, truth), their boxes). ``draw``: more arguments for
    synth.render_page (``touching``, ``broken``)."""
    for j in range(k):
        rng = np.random.default_rng([seed, synth.PAGE_CONDITIONS.index(condition), j, len(shapes or ())])
        numbers = [pool.number(rng, None if shapes is None else str(rng.choice(shapes)))
                   for _ in range(int(rng.integers(1, 5)))]
        image, _, boxes, kept = synth.render_page([items for items, _ in numbers], rng, condition, **draw)
        yield image, [numbers[i] for i in kept], boxes


def _save(folder, name, image, reading, truths):
    img = np.asarray(image)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
    for n in reading.numbers:
        x, y, w, h = n.box
        cv2.rectangle(img, (x, y), (x + w, y + h), (0, 0, 255), 2)
        cv2.putText(img, n.text, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
    cv2.putText(img, "truth: " + " ".join(truths), (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 128, 0), 2)
    cv2.imwrite(str(Path(folder) / (re.sub(r"\W+", "_", name) + ".jpg")), img)


def run(pages=30, seed=0, orand=ORAND, failures=None, out=None, real_only=False, detector=None, recognizer=None):
    load_before = load()
    mnist = load_mnist(data_dir(None))
    shipped = Recognizer.load(numbers=False)
    rec = Recognizer(shipped.network, shipped.card, shipped.path,
                     store.lite_path(detector or store.DETECTOR), store.lite_path(recognizer or store.RECOGNIZER))
    pool = Digits(mnist, seed)
    rows, all_ms, page_ms = [], [], []
    if failures:
        Path(failures).mkdir(parents=True, exist_ok=True)

    def measure(name, pictures):
        """pictures: (image, truths, boxes) -> a row of the table."""
        ex = fo = extra = n = right = 0
        unsure = [0, 0]  # pictures with a number marked low_confidence: all right, not
        ms = []
        for j, (image, truths, boxes) in enumerate(pictures):
            tic = time.perf_counter()
            reading = rec.read(image)
            ms.append(1000 * (time.perf_counter() - tic))
            e, f, x = score(reading, truths, boxes)
            ex, fo, extra, n = ex + e, fo + f, extra + x, n + len(truths)
            right += e == len(truths) and x == 0
            if any(number.low_confidence for number in reading.numbers):
                unsure[int(not (e == len(truths) and x == 0))] += 1
            if failures and (e < len(truths) or x):
                _save(failures, f"{name}_{j}", image, reading, truths)
        wrong = len(ms) - right
        rows.append([name, f"{100 * ex / max(n, 1):.1f}%", f"{100 * fo / max(n, 1):.1f}%", extra,
                     f"{100 * right / max(len(ms), 1):.1f}%",
                     f"{sum(unsure)} ({unsure[1]} wrong)", f"{unsure[1]} of {wrong}",
                     n, len(ms), f"{np.median(ms):.0f}"])
        all_ms.extend(ms)
        return ex, n, ms

    def page_set(condition, k, shapes=None):
        for image, placed, boxes in pages_of(pool, seed, condition, k, shapes):
            yield image, [truth for _, truth in placed], boxes

    totals = [0, 0]
    if not real_only:
        for condition in synth.PAGE_CONDITIONS:
            ex, n, ms = measure(f"page: {condition}", page_set(condition, pages))
            totals[0] += ex
            totals[1] += n
            page_ms.extend(ms)
        ex, n, ms = measure("page: separators, closing dashes (scan, phone)", _separators(page_set, pages, SEPARATED))
        totals[0] += ex
        totals[1] += n
        page_ms.extend(ms)
        measure("page: dates with a slash (scan, phone; not in the total)", _separators(page_set, pages, SLASHED))

        def crops():
            for j in range(pages * 3):
                rng = np.random.default_rng([seed, 7000 + j])
                items, truth = pool.number(rng, "0" * (2 + j % 7))
                image, _, boxes = synth.render_number(items, rng)
                x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
                x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
                yield image, [truth], [(x0, y0, x1 - x0, y1 - y0)]
        measure("tight crop of one number (render_number)", crops())

        def amounts(hands, k, stream):
            """Amounts as written on cheques and forms (synth.render_amount: separators, a
            closing dash, slant, a baseline, a box's edge, a printed pattern), tightly cut."""
            for j in range(k):
                rng = np.random.default_rng([seed, stream, j])
                items, truth = hands.number(rng)
                image, _, _ = synth.render_amount(synth.amount_items(items, rng), rng)
                h, w = image.shape[:2]
                yield image, [truth], [(0, 0, w, h)]
        for stream, name in enumerate(("mnist", "ardis", "usps")):
            if name == "mnist":
                hands = Digits(mnist, seed + 1)
            else:
                other = datasets.load(name, data_dir(None))
                hands = Digits(None, seed + 1, mnist_box(other.x_test), other.y_test)
            measure(f"amount on a cheque or form, {name.upper()} test digits", amounts(hands, pages * 2, 9000 + stream))

    orand_row = None
    labels = Path(orand) / "labels.csv"
    if labels.exists():
        def cheques():
            for r in csv.DictReader(open(labels)):
                # the amount's field: the number need not fill half of it
                yield load_image(Path(orand) / r["file"]), [r["text"]], [None]
        ex, n, _ = measure("orand-dev: real cheque amounts", cheques())
        orand_row = ex / max(n, 1)
    held_rows = {}
    for name, what in (("orand-train", "amounts of orand-train held out"),
                       ("danish-rows", "register row numbers of danish-rows held out (whole books)")):
        try:
            _, held = real_numbers.split(name, data_dir(None))
        except datasets.DataError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        ex, n, _ = measure(what, ((load_image(h.path), [h.text], [None]) for h in held))
        held_rows[name] = (ex, n)

    phone_ms = []
    if not real_only:
        # a phone photo of a page at full size (decoding not counted): the same pages, enlarged
        for image, _, _ in page_set("phone_shadow", max(5, pages // 3)):
            size = PHONE if image.shape[0] > image.shape[1] else PHONE[::-1]
            big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            tic = time.perf_counter()
            rec.read(big)
            phone_ms.append(1000 * (time.perf_counter() - tic))

    lines = ["# Numbers in the wild: finding and reading every number in a picture", ""]
    lines += machine_lines(load_before)
    lines += [f"- `python benchmarks/wild.py --pages {pages} --seed {seed}{' --real-only' if real_only else ''}`: "
              "test digits only; "
              "pages of 1-4 numbers of 1-8 digits (MNIST's), digits 1/20-1/6 of the page's height", ""]
    lines += table(["condition", "numbers exact", "numbers found", "found, not there", "pictures all right",
                    "marked unsure", "wrong ones marked", "numbers", "pictures", "ms / picture (median)"], rows)
    lines.append("")
    if page_ms:
        lines.append(f"- **numbers anywhere on a page: {100 * totals[0] / max(totals[1], 1):.1f}% exact** "
                     f"({totals[1]} numbers); median {np.median(page_ms):.0f} ms a page "
                     f"({np.percentile(page_ms, 95):.0f} ms 95th percentile)")
    if orand_row is not None:
        lines.append(f"- **orand-dev: {100 * orand_row:.1f}% exact** (digits only)")
    for name, (ex, n) in held_rows.items():
        lines.append(f"- **{name}, held out: {100 * ex / max(n, 1):.1f}% exact** ({ex} of {n}; digits only)")
    if phone_ms:
        lines.append(f"- a 12-megapixel phone photo of a page ({PHONE[0]}x{PHONE[1]}): median "
                     f"{np.median(phone_ms):.0f} ms ({len(phone_ms)} photos; decoding not counted)")
    publish(lines, out or str(RESULTS / "wild.md"))


def _separators(page_set, pages, shapes):
    """Pages of numbers written with marks (``shapes``), half scanned, half phone photos."""
    yield from page_set("scan", (pages + 1) // 2, shapes)
    yield from page_set("phone_shadow", pages // 2, shapes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=30, help="pictures per condition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--orand", default=str(ORAND), help="the orand-dev folder (labels.csv, images/)")
    ap.add_argument("--failures", help="write each picture read wrong, its numbers boxed, to this folder")
    ap.add_argument("--out", help="the Markdown file to write (default benchmarks/results/wild.md)")
    ap.add_argument("--real-only", action="store_true", help="only the real sets (orand-dev and the held-out parts)")
    ap.add_argument("--detector", help="read with this detector (.keras or .tflite; default: the shipped one)")
    ap.add_argument("--recognizer", help="...and this recognizer (default: the shipped one)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run(args.pages, args.seed, args.orand, args.failures, args.out, args.real_only, args.detector, args.recognizer)


if __name__ == "__main__":
    main()
