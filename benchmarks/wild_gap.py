"""Where issue 19's targets are lost: how far the numbers of ``wild.py`` could be read.

    python benchmarks/wild_gap.py [--pages 10] [--seeds 0 1] [--orand DIR]
                                  [--out benchmarks/results/wild_gap.md]

``wild.py`` says how many numbers are read; this says what stands between that and the
targets (pages >= 97%, orand-dev >= 90%). For the pages of ``wild.py`` (the same seeds,
conditions and test digits) it counts the numbers read exactly:

- by the digit model alone, on each number's test digits as MNIST stores them (no page,
  no rendering, no cutting): as far as any reader built on this digit model could go;
- by ``Recognizer.read`` on the same pages drawn with no digits touching and no strokes
  broken (``render_page(touching=0, broken=0)``);
- by ``Recognizer.read`` on the benchmark's pages (three in ten digits touching and three
  in ten with a pen lift, as ``wild.py`` draws them);
- on the benchmark's pages and on orand-dev, each number found (``find_numbers``) read
  three ways: by the whole reader, by the cut path alone (the digit model over the
  candidates, no row reader), and by the row reader alone (its greedy reading); and how
  many any one of the three reads right. However the two networks' readings were
  combined, no more than that could be read.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, data_dir, load, machine_lines, publish, table  # noqa: E402
from benchmarks.wild import ORAND, Digits, _cover, digits_of, score  # noqa: E402
from digitrec.reading import find, numbers  # noqa: E402
from digitrec.reading.decode import load_image  # noqa: E402
from digitrec.reading.digits import Recognizer  # noqa: E402
from digitrec.reading.normalize import NoDigit  # noqa: E402
from digitrec.training import synth  # noqa: E402
from digitrec.training.datasets import load_mnist  # noqa: E402


class _Recorded(Digits):
    """wild.Digits that remembers which test digits each number took."""

    def __init__(self, *args):
        super().__init__(*args)
        self.taken = []

    def take(self, k):
        idx = super().take(k)
        self.taken.append(idx)
        return idx


def _pages(pool, seed, pages, touching=0.3, broken=0.3):
    """wild.py's pages (its page_set), drawn with ``touching`` and ``broken``: (image,
    truths, boxes, the test digits of each number kept)."""
    for condition in synth.PAGE_CONDITIONS:
        for j in range(pages):
            rng = np.random.default_rng([seed, synth.PAGE_CONDITIONS.index(condition), j, 0])
            start = len(pool.taken)
            drawn = [pool.number(rng, None) for _ in range(int(rng.integers(1, 5)))]
            image, _, boxes, kept = synth.render_page([items for items, _ in drawn], rng, condition,
                                                      touching=touching, broken=broken)
            yield image, [drawn[i][1] for i in kept], boxes, [pool.taken[start + i] for i in kept]


def _three(rec, picture, truth) -> tuple[bool, bool, bool]:
    """Is ``truth`` read by the whole reader, by the cut path alone, by the row reader alone?"""
    whole = digits_of(rec.read_number(picture).text) == truth
    path = digits_of(numbers.read_number(picture, rec.probabilities, rec.verifier, None).text) == truth
    try:
        strip = numbers.row_strip(picture).astype(np.float32)[None, ..., None] / 255.0
        alone = "".join(map(str, numbers.greedy_text(rec.row_reader(strip)[0]))) == truth
    except NoDigit:
        alone = False
    return whole, path, alone


def _share(k: int, n: int) -> str:
    return f"{k} ({100 * k / max(n, 1):.1f}%)"


def _tally(counts, three):
    for key, hit in zip(("whole", "path", "row", "any"), (*three, any(three))):
        counts[key] += hit


def run(pages=10, seeds=(0, 1), orand=ORAND, out=None):
    load_before = load()
    mnist = load_mnist(data_dir(None))
    rec = Recognizer.load()
    x = mnist.x_test.astype(np.float32) / 255.0
    right = np.concatenate([rec.probabilities(x[i: i + 500]) for i in range(0, len(x), 500)]).argmax(1) == mnist.y_test
    rows = []
    for seed in seeds:
        pool = _Recorded(mnist, seed)
        clean = [0, 0]  # read, of (placed on the page)
        for image, truths, boxes, _ in _pages(pool, seed, pages, touching=0.0, broken=0.0):
            clean[0] += score(rec.read(image), truths, boxes)[0]
            clean[1] += len(truths)
        pool = _Recorded(mnist, seed)
        n = read = stored = 0
        counts = dict.fromkeys(("whole", "path", "row", "any"), 0)
        for image, truths, boxes, taken in _pages(pool, seed, pages):
            n += len(truths)
            read += score(rec.read(image), truths, boxes)[0]
            stored += sum(bool(right[idx].all()) for idx in taken)
            try:
                regions = find.find_numbers(image)
            except NoDigit:
                regions = []
            for truth, box in zip(truths, boxes):
                hits = [r for r in regions if min(_cover(box, r.box)) >= 0.5]
                if len(hits) == 1:
                    _tally(counts, _three(rec, hits[0].picture, truth))
        rows.append([f"pages, seed {seed}", n, _share(stored, n), _share(*clean), _share(read, n),
                     _share(counts["path"], n), _share(counts["row"], n), _share(counts["any"], n)])
    labels = Path(orand) / "labels.csv"
    if labels.exists():
        n = read = 0
        counts = dict.fromkeys(("whole", "path", "row", "any"), 0)
        for r in csv.DictReader(open(labels)):
            image = load_image(Path(orand) / r["file"])
            n += 1
            read += score(rec.read(image), [r["text"]], [None])[0]
            try:
                regions = find.find_numbers(image)
            except NoDigit:
                continue
            if len(regions) == 1:
                _tally(counts, _three(rec, regions[0].picture, r["text"]))
        rows.append(["orand-dev (real cheques)", n, "", "", _share(read, n),
                     _share(counts["path"], n), _share(counts["row"], n), _share(counts["any"], n)])

    lines = ["# Where the targets of `wild.py` are lost", ""]
    lines += machine_lines(load_before)
    lines += [f"- `python benchmarks/wild_gap.py --pages {pages} --seeds {' '.join(map(str, seeds))}`: "
              "the pages of `wild.py` (its seeds, conditions and MNIST test digits; not its page of "
              "separators) and orand-dev", ""]
    lines += table(["numbers", "of", "digit model, the test digits as stored", "read, the pages drawn without touching "
                    "or broken digits (of the numbers placed)", "read (`wild.py`)", "cut path alone",
                    "row reader alone", "any of the three"], rows)
    lines += ["", "- targets: pages >= 97% exact, orand-dev >= 90%",
              "- \"any of the three\": the number is read right by the whole reader, the cut path "
              "alone or the row reader alone (of the regions found, one to a number): the most that any way of "
              "combining the two networks' readings could reach"]
    publish(lines, out or str(RESULTS / "wild_gap.md"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10, help="pages per condition, as wild.py's --pages")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--orand", default=str(ORAND), help="the orand-dev folder (labels.csv, images/)")
    ap.add_argument("--out", help="the Markdown file to write (default benchmarks/results/wild_gap.md)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run(args.pages, tuple(args.seeds), args.orand, args.out)


if __name__ == "__main__":
    main()
