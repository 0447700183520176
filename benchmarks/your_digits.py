"""Teach it your handwriting: does a quick fine-tune on a person's corrections read their
unusual digits, and what does it cost the rest?

    .venv/bin/python benchmarks/your_digits.py [--style flagged_1] [--corrections 20]

1. Drawings in one unusual style (a 1 with a long flag, a 7 with a bar), as mouse strokes
   on the Draw page's canvas (benchmarks/browser.render_strokes), each with its own jitter,
   size, place and pen width: ``--corrections`` of them to correct, 100 new ones to test.
2. The shipped model reads the 100 test drawings (before).
3. The corrections are saved as samples (digitrec.server.samples), as the Draw page's
   "It was: N" saves them, and the active model is fine-tuned on them exactly as the Train
   page's quick button does (digitrec.server.jobs.quick_config) — a fifth of them held out.
4. The new model reads the 100 test drawings (after) and MNIST's 10,000 test digits.
5. Saving one correction with 10,000 samples already stored: median time on the server.

Writes benchmarks/results/your_digits.md. Targets: >= 90% of the new drawings
read right after 20 corrections; MNIST test accuracy down by at most 0.1 point; saving a
correction <= 50 ms.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.browser import render_strokes  # noqa: E402
from benchmarks.common import RESULTS, data_dir, load, machine_lines  # noqa: E402
from digitrec import Recognizer, store  # noqa: E402
from digitrec.server import jobs  # noqa: E402
from digitrec.server.samples import SampleStore  # noqa: E402

# Digits drawn in styles MNIST's writers rarely used, in [0, 1] canvas units.
STYLES = {
    "flagged_1": (1, [[(0.28, 0.42), (0.55, 0.14), (0.55, 0.86)]]),  # a long European flag
    "barred_7": (7, [[(0.28, 0.2), (0.72, 0.2), (0.46, 0.86)], [(0.38, 0.52), (0.66, 0.52)]]),
}
TEST_DRAWINGS = 100


def drawings(strokes, n: int, seed: int) -> list[np.ndarray]:
    """``n`` canvases of the style, each drawn a little otherwise (jitter, size, place, pen)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        scale, dx, dy = rng.uniform(0.7, 1.05), rng.uniform(-0.12, 0.12), rng.uniform(-0.1, 0.1)
        moved = [[(0.5 + (x - 0.5) * scale + dx + rng.normal(0, 0.015),
                   0.5 + (y - 0.5) * scale + dy + rng.normal(0, 0.015)) for x, y in stroke]
                 for stroke in strokes]
        out.append(render_strokes(moved, width=int(rng.integers(12, 26))))
    return out


def read_right(recognizer: Recognizer, pictures, digit: int) -> float:
    return float(np.mean([p.digit == digit for p in recognizer.predict_batch(pictures)]))


def mnist_accuracy(recognizer: Recognizer, mnist) -> float:
    x = mnist.x_test.astype(np.float32) / 255
    return float((recognizer.probabilities(x).argmax(1) == mnist.y_test).mean())


def save_time(tmp: Path, stored: int = 10_000, reps: int = 50) -> float:
    """Median seconds to save one correction with ``stored`` samples in the database."""
    db = SampleStore(tmp / "timing.sqlite3")
    rng = np.random.default_rng(0)
    picture = np.full((320, 320, 3), 255, np.uint8)
    picture[100:220, 150:170] = 0
    x28 = rng.integers(0, 256, (28, 28), np.uint8)
    for k in range(stored):
        db.add(x28, k % 10, read_digit=k % 10, confidence=0.9, picture=None)
    times = []
    for k in range(reps):
        start = time.perf_counter()
        db.add(x28, k % 10, read_digit=(k + 1) % 10, confidence=0.5, source="draw", model="shipped",
               picture=picture)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", choices=list(STYLES), default="flagged_1")
    parser.add_argument("--corrections", type=int, default=20)
    parser.add_argument("--data", help="MNIST directory (default: $DIGITREC_DATA)")
    args = parser.parse_args()

    from digitrec.training.datasets import load_mnist
    from digitrec.training.train import train

    load_before = load()
    digit, strokes = STYLES[args.style]
    mnist = load_mnist(data_dir(args.data))
    before = Recognizer.load()
    corrections = drawings(strokes, args.corrections, seed=1)
    tests = drawings(strokes, TEST_DRAWINGS, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db = SampleStore(tmp / "samples.sqlite3")
        for picture, pred in zip(corrections, before.predict_batch(corrections)):
            db.add(pred.input28, digit, read_digit=pred.digit, confidence=pred.confidence, picture=picture)
        config = jobs.quick_config(store.DIGIT_MODEL, db.path)
        config.out = str(tmp / "yours.keras")
        config.data = data_dir(args.data)
        start = time.time()
        result = train(jobs.plan(config))
        seconds = time.time() - start
        after = Recognizer.load(result.path)
        rows = [
            ("new drawings of the style read right", f"{read_right(before, tests, digit):.0%}",
             f"{read_right(after, tests, digit):.0%}", ">= 90% after"),
            ("the corrections themselves read right", f"{read_right(before, corrections, digit):.0%}",
             f"{read_right(after, corrections, digit):.0%}", ""),
            ("MNIST test accuracy", f"{mnist_accuracy(before, mnist):.2%}", f"{mnist_accuracy(after, mnist):.2%}",
             "down <= 0.1 point"),
        ]
        held = result.card["samples"]
        saving = save_time(tmp)
    lines = [f"# Your digits: a quick fine-tune on {args.corrections} corrections ({args.style})", "",
             *machine_lines(load_before), "",
             f"Command: `.venv/bin/python benchmarks/your_digits.py --style {args.style} "
             f"--corrections {args.corrections}`", "",
             "| measure | shipped model | after the quick fine-tune | target |", "|---|---:|---:|---|",
             *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows], "",
             f"- The fine-tune trained on {held['train']} of the corrections ({held['held_out']} held out, "
             f"read right after: {held.get('held_out_accuracy', float('nan')):.0%}) beside "
             f"{jobs.QUICK_REPLAY:,} MNIST digits, {seconds:.0f} s in all (data, training, test, export).",
             f"- Saving one correction with 10,000 samples stored: {saving * 1000:.1f} ms median "
             "(target <= 50 ms).", ""]
    text = "\n".join(lines)
    print(text)
    (RESULTS / f"your_digits_{args.style}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
