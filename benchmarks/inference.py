"""Inference speed: the seeds' ``model.predict`` path against ours, in one run.

    python benchmarks/inference.py [--model models/digitrec.keras] [--data DIR]
                                   [--best-model PATH] [--repeats 300]

Measured here, on the cores this process may use (2 on the project machines):

* model only, batch 1 (one 28x28 digit): latency percentiles for the seeds' path
  (``model.predict`` on the seeds' model) and for each of our candidates on the shipped
  model: ``model.predict``, a traced ``tf.function``, the same with XLA, TFLite, and the
  path :class:`digitrec.reading.digits.Recognizer` chooses;
* model only, 10,000 images: throughput of the same paths;
* pixels to probabilities: ``preprocess.normalize`` alone, and ``Recognizer.predict`` on a
  320x320 RGBA canvas image (black ink on white, as the Draw page sends it) and on a
  300x400 photo-like paper image;
* one core (a child process pinned to CPU 0, one thread): batch-1 latency of the shipped
  model and of the ``best`` architecture (``--best-model``, else an untrained ``build_best``:
  weights do not change the time) through the chosen path, for the "<= 2 ms on one core"
  requirement.

The seeds' model is the untrained ``build_seed`` architecture (latency does not depend on
the weights). Writes ``benchmarks/results/inference.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

CORES_ARG = "--one-core-child"


def _pin_one_core() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


if CORES_ARG in sys.argv:  # before TensorFlow starts its thread pools
    _pin_one_core()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(_common.ROOT))
import numpy as np  # noqa: E402


def percentiles(fn, repeats: int, warmup: int = 20) -> dict:
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t
    p50, p90, p99 = np.percentile(times, [50, 90, 99]) * 1e3
    return {"p50": p50, "p90": p90, "p99": p99}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def canvas_image(digit28: np.ndarray) -> np.ndarray:
    """A 320x320 RGBA canvas: the digit enlarged, black ink on white paper, opaque."""
    import cv2

    big = cv2.resize(digit28, (220, 220), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    gray = np.full((320, 320), 255.0, np.float32)
    gray[40:260, 60:280] = 255.0 * (1 - big.clip(0, 1))
    rgba = np.empty((320, 320, 4), np.uint8)
    rgba[..., :3] = gray.clip(0, 255).astype(np.uint8)[..., None]
    rgba[..., 3] = 255
    return rgba


def paper_image(digit28: np.ndarray) -> np.ndarray:
    sys.path.insert(0, str(_common.ROOT / "tests"))
    from conftest import paper_digit

    return paper_digit(digit28)


def one_core(args) -> dict:
    """Batch-1 latency on one core and one thread, shipped model and best architecture."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from digitrec.reading.digits import Recognizer
    from digitrec.training.networks import build_best

    x1 = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    out = {}
    shipped = Recognizer.load(args.model, runtime="lite")
    out["shipped"] = {"chosen": percentiles(lambda: shipped.probabilities(x1), args.repeats),
                      "tf.function": percentiles(lambda: shipped._forward(x1[..., None]).numpy(), args.repeats)}
    if args.best_model:
        best = Recognizer.load(args.best_model, runtime="lite")
        label = f"best ({Path(args.best_model).name})"
    else:
        best = Recognizer(build_best(), runtime="lite")
        label = "best architecture (untrained)"
    out[label] = {"chosen": percentiles(lambda: best.probabilities(x1), args.repeats),
                  "tf.function": percentiles(lambda: best._forward(x1[..., None]).numpy(), args.repeats)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(_common.ROOT / "models" / "digitrec.keras"))
    parser.add_argument("--best-model", help="a trained best-preset model for the one-core row")
    parser.add_argument("--data")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (best reported)")
    parser.add_argument("--batch", type=int, default=10000, help="images for the throughput rows")
    parser.add_argument("--out", default=str(_common.RESULTS / "inference.md"))
    parser.add_argument(CORES_ARG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_core_child:
        print("RESULT " + json.dumps(one_core(args)))
        return 0

    load_before = _common.load()
    import keras
    import tensorflow as tf

    from digitrec import preprocess
    from digitrec.reading.digits import Recognizer, _LiteRunner, convert_to_lite
    from digitrec.training.datasets import load_mnist
    from digitrec.training.networks import build_seed

    mnist = load_mnist(_common.data_dir(args.data))
    xb = mnist.x_test[: args.batch].astype(np.float32)[..., None] / 255.0
    if len(xb) < args.batch:
        xb = np.concatenate([xb] * (args.batch // len(xb) + 1))[: args.batch]
    x1 = xb[:1]
    n, reps = len(xb), args.repeats

    seed = build_seed()
    rec = Recognizer.load(args.model, runtime="lite")
    model = rec.model
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True,
                      input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    flat = convert_to_lite(rec._forward, model)
    lite1 = _LiteRunner(flat, threads=1)
    lite2 = _LiteRunner(flat, threads=2)

    def lite_batch(threads):
        import warnings

        from digitrec.reading.digits import _interpreter_class
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = _interpreter_class()(model_content=flat, num_threads=threads)
        it.resize_tensor_input(it.get_input_details()[0]["index"], [1000, 28, 28, 1])
        it.allocate_tensors()
        i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

        def run():
            for k in range(0, n, 1000):
                it.set_tensor(i, np.ascontiguousarray(xb[k: k + 1000]))
                it.invoke()
                it.get_tensor(o)
        return run

    # Latency now; throughput afterwards, every path once per round, so that a change of
    # load on the shared machine hits all of them alike (best round of each reported).
    rows_model, batch_fns = [], []
    def add(name, f1, fb, note=""):
        lat = percentiles(f1, reps if "predict" not in name else max(50, reps // 6))
        rows_model.append([name, f"{lat['p50']:.3f}", f"{lat['p90']:.3f}", f"{lat['p99']:.3f}", None, note])
        batch_fns.append(fb)
        print(rows_model[-1], flush=True)
        return lat

    seeds_lat = add("seeds: seed model, `model.predict`",
                    lambda: seed.predict(x1, verbose=0), lambda: seed.predict(xb, verbose=0),
                    "batch_size 32 (Keras default)")
    add("ours: `model.predict`", lambda: model.predict(x1, verbose=0),
        lambda: model.predict(xb, batch_size=1000, verbose=0), "batch_size 1000")
    add("ours: traced `tf.function`", lambda: rec._forward(x1).numpy(),
        lambda: [rec._forward(xb[k: k + 1024]).numpy() for k in range(0, n, 1024)], "chunks of 1024")
    add("ours: `tf.function(jit_compile=True)` (XLA)", lambda: xla(x1).numpy(),
        lambda: [xla(xb[k: k + 1024]).numpy() for k in range(0, n, 1024)], "chunks of 1024")
    add("ours: TFLite, 1 thread", lambda: lite1(x1), lambda: lite1(xb, small=n), "batch 1, one image at a time")
    add("ours: TFLite, 1 thread, batches of 256", lambda: lite1(x1), lambda: lite1(xb, small=0), "")
    add("ours: TFLite, 2 threads, batches of 1000", lambda: lite2(x1[:1]), lite_batch(2), "")
    ours_lat = add(f"**ours: `Recognizer.probabilities` ({rec.runtime}: batch 1 on one thread for "
                   f"<= {rec.SMALL_BATCH} images, batches of 256 on all cores above)**",
                   lambda: rec.probabilities(x1), lambda: rec.probabilities(xb), "the app and CLI path")
    for fb in batch_fns:
        fb()  # warm up
    best = [0.0] * len(batch_fns)
    for _ in range(args.rounds):
        for i, fb in enumerate(batch_fns):
            best[i] = max(best[i], n / _timed(fb))
    for row, thr in zip(rows_model, best):
        row[4] = f"{thr:,.0f}"
    seeds_thr, ours_thr = best[0], best[-1]

    digit = mnist.x_test[0]
    images = {"canvas 320x320 RGBA": canvas_image(digit), "paper 300x400 gray": paper_image(digit)}
    rows_e2e = []
    for label, image in images.items():
        pre = percentiles(lambda: preprocess.normalize(image), reps)
        x28 = preprocess.normalize(image).x28[None]
        mod = percentiles(lambda: rec.probabilities(x28), reps)
        both = percentiles(lambda: rec.predict(image), reps)
        assert rec.predict(image).digit is not None
        for part, lat in (("preprocess.normalize", pre), ("model (Recognizer.probabilities)", mod),
                          ("**Recognizer.predict (both)**", both)):
            rows_e2e.append([label, part, f"{lat['p50']:.3f}", f"{lat['p90']:.3f}", f"{lat['p99']:.3f}"])
        print(rows_e2e[-3:], flush=True)
    seeds_e2e = percentiles(lambda: (preprocess.normalize(images["canvas 320x320 RGBA"]),
                                     seed.predict(x28[..., None], verbose=0)), max(50, reps // 6))
    rows_e2e.append(["canvas 320x320 RGBA", "seeds: preprocess + `model.predict`",
                     f"{seeds_e2e['p50']:.3f}", f"{seeds_e2e['p90']:.3f}", f"{seeds_e2e['p99']:.3f}"])

    child = [sys.executable, __file__, CORES_ARG, "--model", args.model, "--repeats", str(reps)]
    if args.best_model:
        child += ["--best-model", args.best_model]
    proc = subprocess.run(child, capture_output=True, text=True)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    rows_one = []
    if results:
        for label, paths in json.loads(results[-1][7:]).items():
            for path, lat in paths.items():
                rows_one.append([label, "Recognizer (TFLite)" if path == "chosen" else "traced tf.function",
                                 f"{lat['p50']:.3f}", f"{lat['p90']:.3f}", f"{lat['p99']:.3f}"])
    else:
        rows_one.append(["one-core child failed", proc.stderr[-300:].replace("\n", " "), "", "", ""])

    lines = ["# Inference speed", "",
             f"`python benchmarks/inference.py --model {Path(args.model).name}"
             + (f" --best-model {args.best_model}" if args.best_model else "") + "`", ""]
    lines += _common.machine_lines(load_before)
    lines += [f"- model: {args.model} ({rec.card.get('preset', '?')} preset, "
              f"{model.count_params():,} parameters); tensorflow {tf.__version__}, keras {keras.__version__}", ""]
    lines += ["## Model only: one digit (latency, ms) and a batch of "
              f"{n:,} images (throughput)", ""]
    lines += _common.table(["path", "p50 ms", "p90 ms", "p99 ms", "images/s", "how"], rows_model)
    lines += ["", f"Batch 1: ours is {seeds_lat['p50'] / ours_lat['p50']:.0f}x faster than the seeds' "
              f"`model.predict` (median); batch: {ours_thr / seeds_thr:.1f}x the throughput.", ""]
    lines += ["## Pixels to probabilities (ms)", ""]
    lines += _common.table(["image", "stage", "p50", "p90", "p99"], rows_e2e)
    lines += ["", "## One core, one thread, one digit (ms)", ""]
    lines += _common.table(["model", "path", "p50", "p90", "p99"], rows_one)
    _common.publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
