"""Real-world benchmark: MNIST *test* digits rendered as the pictures users
upload, read through digitrec.reading.normalize, beside the seeds' pipeline (gray, resize the
whole image to 28x28, /255).

    python benchmarks/realworld.py [--model PATH] [--n 200] [--seed 0] [--data DIR] [--failures grid.png]
                                   [--detector PATH] [--recognizer PATH]

Prints a Markdown table: accuracy per condition and per size, the exact-match rate for
numbers of 2-8 digits, and the rate of blank images given a digit.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from digitrec import store  # noqa: E402
from digitrec.reading.digits import Recognizer  # noqa: E402
from digitrec.training import synth  # noqa: E402
from digitrec.training.datasets import load_mnist  # noqa: E402


def _pct(k, n):
    return f"{100.0 * k / max(n, 1):.1f}%"


def _show(img):
    img = np.asarray(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255
        img = (img[..., :3] * a + 170 * (1 - a)).astype(np.uint8)
    return img


def failure_grid(items, path, cols=6, s=112):
    """items: (image, x28, label, guess) -> a PNG of the input beside what the model saw."""
    tiles = []
    for image, x28, label, guess in items[: cols * 10]:
        img = _show(image)
        h, w = img.shape[:2]
        f = s / max(h, w)
        img = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        left = np.full((s, s, 3), 90, np.uint8)
        left[: img.shape[0], : img.shape[1]] = img
        right = np.zeros((s, s, 3), np.uint8)
        if x28 is not None:
            right = cv2.resize((x28 * 255).astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST)
            right = cv2.cvtColor(right, cv2.COLOR_GRAY2RGB)
        tile = np.hstack([left, right])
        cv2.putText(tile, f"{label}->{guess}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 0, 0), 1)
        tiles.append(tile)
    if not tiles:
        return
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i: i + cols]) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), np.vstack(rows)[..., ::-1])


def run(model=None, n=200, seed=0, failures=None, out=sys.stdout, data=None, detector=None, recognizer=None):
    mnist = load_mnist(data)
    shipped = Recognizer.load(model, numbers=False)
    rec = Recognizer(shipped.network, shipped.card, shipped.path,
                     store.lite_path(detector or store.DETECTOR), store.lite_path(recognizer or store.RECOGNIZER))
    rng_pick = np.random.default_rng(seed)
    order = rng_pick.permutation(len(mnist.y_test))  # test digits only, never training digits
    cursor = 0

    def take(k):
        nonlocal cursor
        idx = order[np.arange(cursor, cursor + k) % len(order)]
        cursor += k
        return idx

    rows, fails = [], []
    size_right = {s: [0, 0] for s in synth.SIZES}
    total = [0, 0, 0]  # right (ours), right (seeds), n
    t0 = time.perf_counter()
    for ci, cond in enumerate(synth.CONDITIONS):
        rng = np.random.default_rng([seed, ci])
        idx = take(n)
        sizes = [synth.SIZES[i % len(synth.SIZES)] for i in range(n)]
        images = [synth.render_digit(mnist.x_test[i], cond, rng, size=s) for i, s in zip(idx, sizes)]
        labels = mnist.y_test[idx]
        preds = rec.predict_batch(images)
        ours = np.array([p.digit == y for p, y in zip(preds, labels)])
        seeds = rec.probabilities(np.stack([synth.seeds_pipeline(im) for im in images])).argmax(1) == labels
        for s, ok in zip(sizes, ours):
            if cond != "tiny":
                size_right[s][0] += int(ok)
                size_right[s][1] += 1
        for im, p, y, ok in zip(images, preds, labels, ours):
            if not ok:
                fails.append((im, p.input28, f"{cond[:6]} {y}", p.digit))
        rows.append((cond, ours.sum(), seeds.sum(), n))
        total[0] += ours.sum()
        total[1] += seeds.sum()
        total[2] += n

    # Numbers: 2 to 8 digits in a row, some touching, some with broken strokes.
    num_right = [0, 0, 0]
    lengths = list(range(2, 9))
    per_len = {k: [0, 0] for k in lengths}
    number_ms = []
    marked = [0, 0]  # numbers marked low confidence: read right, misread
    for j in range(n):
        rng = np.random.default_rng([seed, 1000 + j])
        k = lengths[j % len(lengths)]
        idx = take(k)
        image, cond, _ = synth.render_number([mnist.x_test[i] for i in idx], rng)
        truth = "".join(str(int(mnist.y_test[i])) for i in idx)
        tic = time.perf_counter()
        number = rec.read_number(image)
        number_ms.append(1000 * (time.perf_counter() - tic))
        got = number.text
        ok = got == truth
        if number.low_confidence or not number.digits:
            marked[0 if ok else 1] += 1
        num_right[0] += ok
        num_right[2] += 1
        per_len[k][0] += ok
        per_len[k][1] += 1
        seeds_guess = str(int(rec.probabilities(synth.seeds_pipeline(image)[None]).argmax()))
        num_right[1] += seeds_guess == truth
        if not ok:
            fails.append((image, None, f"{cond[:6]} {truth}", got))

    # Blanks: paper, lined paper, board, noise, a speck...
    blank_digit = [0, 0]
    blank_images = []
    for j in range(n):
        rng = np.random.default_rng([seed, 5000 + j])
        blank_images.append(synth.render_blank(synth.BLANKS[j % len(synth.BLANKS)], rng))
    for im, p in zip(blank_images, rec.predict_batch(blank_images)):
        blank_digit[0] += p.digit is not None
        if p.digit is not None:
            fails.append((im, p.input28, "blank", p.digit))
    blank_digit[1] = len(blank_images)
    seconds = time.perf_counter() - t0

    w = out.write
    judge = f"detector `{rec.detector.path.name}`, recognizer `{rec.recognizer.path.name}`"
    w(f"Model `{rec.path}`, {judge}, {n} MNIST test digits per condition, seed {seed}.\n\n")
    w("| condition | digitrec.reading.normalize | seeds' pipeline | n |\n|---|---:|---:|---:|\n")
    for cond, a, b, k in rows:
        w(f"| {cond} | {_pct(a, k)} | {_pct(b, k)} | {k} |\n")
    w(f"| **all single digits** | **{_pct(total[0], total[2])}** | {_pct(total[1], total[2])} | {total[2]} |\n")
    for s in synth.SIZES:
        a, k = size_right[s]
        w(f"| size {s} px (28-box side; all but tiny) | {_pct(a, k)} | | {k} |\n")
    w(f"| **numbers of 2-8 digits, exact** | **{_pct(num_right[0], num_right[2])}** | "
      f"{_pct(num_right[1], num_right[2])} | {num_right[2]} |\n")
    for k in lengths:
        a, m = per_len[k]
        w(f"| numbers of {k} digits | {_pct(a, m)} | | {m} |\n")
    wrong = num_right[2] - num_right[0]
    unmarked = num_right[2] - sum(marked)
    w(f"| numbers marked low confidence (or no digits) | {_pct(sum(marked), num_right[2])} | | {num_right[2]} |\n")
    w(f"| misread numbers among them | {_pct(marked[1], wrong)} | | {wrong} |\n")
    w(f"| numbers not marked, exact | {_pct(unmarked - (wrong - marked[1]), unmarked)} | | {unmarked} |\n")
    w(f"| **blanks given a digit** (lower is better) | **{_pct(*blank_digit)}** | 100.0% | {blank_digit[1]} |\n")
    w(f"\nread_number: median {np.median(number_ms):.0f} ms, 95th percentile "
      f"{np.percentile(number_ms, 95):.0f} ms, slowest {max(number_ms):.0f} ms a number.\n")
    w(f"\n{seconds:.0f} s in all.\n")
    if failures:
        failure_grid(fails, failures)
    return {"digits": total[0] / total[2], "numbers": num_right[0] / num_right[2],
            "numbers_marked": sum(marked) / num_right[2], "misread_marked": marked[1] / max(wrong, 1),
            "blanks": blank_digit[0] / blank_digit[1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a digit model's .keras or .tflite file (default: the shipped model)")
    ap.add_argument("--n", type=int, default=200, help="digits per condition (and numbers, blanks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", help="MNIST directory (default: $DIGITREC_DATA)")
    ap.add_argument("--failures", help="write a PNG grid of misread inputs and their 28x28")
    ap.add_argument("--detector", help="read numbers with this detector (.keras or .tflite; default: the shipped one)")
    ap.add_argument("--recognizer", help="...and this recognizer (default: the shipped one)")
    args = ap.parse_args(argv)
    run(args.model, args.n, args.seed, args.failures, data=common.data_dir(args.data),
        detector=args.detector, recognizer=args.recognizer)


if __name__ == "__main__":
    main()
