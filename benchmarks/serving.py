"""Serving: what a reading costs, as a command and in the app, now that reading runs on
LiteRT without TensorFlow (against the targets set for it), in one run.

    python benchmarks/serving.py [--runs 10] [--tf-runs 3] [--repeats 200] [--numbers 35]
                                 [--drawings 5] [--no-browser] [--data DIR] [--out PATH]

* Whole processes, each run ``--runs`` times after one untimed run (files in the page
  cache): ``python -m digitrec predict one.png`` and ``read number.png``, beside
  ``python -c pass`` (the interpreter alone) and ``python -c "import tensorflow"``
  (``--tf-runs`` times: what every reading paid while reading imported TensorFlow), with
  their bytecode written and kept as in any checkout.
  Median wall time, and peak resident memory from the kernel's rusage of the process
  (``ru_maxrss``, taken by a small launcher: a child's ``ru_maxrss`` counts the memory of
  the process that forked it, so this one, with its models loaded, cannot fork them
  itself). ``predict --json`` and ``read --json`` on several pictures must print what
  :class:`~digitrec.reading.digits.Recognizer` answers in this process on the same files.
* In this process, through ``Recognizer``: the first ``Recognizer.load()``, the network
  alone (one 28x28, and 10,000 MNIST test digits), ``predict`` on a Draw-page canvas and
  on a phone photo, ``read_number`` on numbers of 2-8 digits: median and 95th percentile.
* The app (skipped with ``--no-browser``): a fresh server (:func:`benchmarks.browser.start_app`,
  its own empty models directory), headless Chromium opens the Draw page and draws one
  digit; the first reading is timed from the mouse up to the digit shown. Then
  ``--drawings`` more drawings and one upload warm it up, and the server's resident memory
  (VmRSS from /proc, with any child processes) is read.

Prints those targets beside the figures (no pass/fail: the machines are
shared, read the figures with the load average) and writes ``benchmarks/results/serving.md``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import common  # noqa: E402
from benchmarks.browser import CHROMIUM_ARGS, DIGITS, chromium_path, render_strokes, start_app, stop_app  # noqa: E402

TARGETS = {"predict_s": 0.5, "predict_mb": 250, "first_reading_s": 1.5, "server_mb": 300}
# Forks and runs a command, then writes its wall time, ru_maxrss (KB) and exit code to
# argv[1]: a fresh interpreter of a few MB, so that the child's peak is its own.
LAUNCHER = """import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{time.perf_counter() - t} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_process(argv: list[str], env: dict) -> dict:
    """One whole process: wall seconds, peak RSS (MB), exit code, stdout, stderr."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        proc = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, report.name, *argv],
                              capture_output=True, text=True, cwd=common.ROOT, env=env)
        wall, maxrss, code = report.read().split()
    return {"wall": float(wall), "mb": int(maxrss) / 1024, "code": int(code),
            "stdout": proc.stdout, "stderr": proc.stderr}


def whole_processes(commands: dict[str, tuple[list[str], int]]) -> list[dict]:
    """Each command once untimed, then its runs, round robin over the commands so that a
    change of load on the shared machine falls on all of them."""
    # The children write and keep their bytecode (in the git-ignored __pycache__ folders), as
    # any checkout or install has it: with PYTHONDONTWRITEBYTECODE every run compiles anew.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for argv, _ in commands.values():
        run_process(argv, env)
    runs: dict[str, list[dict]] = {label: [] for label in commands}
    for i in range(max(n for _, n in commands.values())):
        for label, (argv, n) in commands.items():
            if i < n:
                runs[label].append(run_process(argv, env))
    rows = []
    for label, done in runs.items():
        walls, mbs = [r["wall"] for r in done], [r["mb"] for r in done]
        rows.append({"label": label, "runs": len(done), "median": float(np.median(walls)),
                     "min": min(walls), "max": max(walls), "mb": float(np.median(mbs)),
                     "failed": sum(r["code"] != 0 for r in done),
                     "stderr": max(len(r["stderr"]) for r in done)})
    return rows


def stats(times: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in ms."""
    median, p95 = np.percentile(np.asarray(times) * 1e3, [50, 95])
    return float(median), float(p95)


def timed(fn, repeats: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return stats(times)


def canvas_picture(digit: int = 7) -> np.ndarray:
    """What the Draw page hands to ``predict``: a 320x320 RGBA canvas, black on white."""
    gray = render_strokes(DIGITS[digit], 320, 18)
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def pictures(mnist, folder: Path, numbers: int) -> dict:
    """Pictures rendered from MNIST test digits and written as PNG files: one digit per
    condition, two blanks, ``numbers`` rows of 2-8 digits."""
    from PIL import Image

    from digitrec.training import synth

    rng = np.random.default_rng(0)
    order = rng.permutation(len(mnist.y_test))
    digits, rows, cursor = [], [], 0
    for i, condition in enumerate(synth.CONDITIONS):
        image = synth.render_digit(mnist.x_test[order[i]], condition, rng, size=112)
        digits.append((image, int(mnist.y_test[order[i]])))
        cursor += 1
    digits += [(synth.render_blank(kind, rng), None) for kind in ("ruled_paper", "board")]
    for j in range(numbers):
        idx = order[cursor: cursor + 2 + j % 7]
        cursor += len(idx)
        image, _, _ = synth.render_number([mnist.x_test[k] for k in idx], rng)
        rows.append((image, "".join(str(int(mnist.y_test[k])) for k in idx)))
    out = {"digits": [], "numbers": []}
    for kind, items in (("digits", digits), ("numbers", rows)):
        for k, (image, truth) in enumerate(items):
            path = folder / f"{kind}-{k:02d}.png"
            Image.fromarray(image).save(path)
            out[kind].append((str(path), image, truth))
    return out


def same_answers(command: str, files: list[str], answer) -> tuple[int, list[str]]:
    """``python -m digitrec COMMAND --json FILES`` against ``answer(file)`` in this
    process: how many agree, and the first disagreements."""
    proc = subprocess.run([sys.executable, "-m", "digitrec", command, "--json", *files],
                          capture_output=True, text=True, cwd=common.ROOT)
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(printed) != len(files):
        return 0, [f"{command} printed {len(printed)} answers for {len(files)} files: {proc.stderr[-300:]}"]
    agree, differ = 0, []
    for record, file in zip(printed, files):
        mine = {"file": file, **json.loads(json.dumps(answer(file)))}
        if record == mine:
            agree += 1
        else:
            differ.append(f"{Path(file).name}: printed {record} / in process {mine}")
    return agree, differ


# --- the app ----------------------------------------------------------------------------

def server_mb(pid: int) -> tuple[float, float]:
    """The server's VmRSS, and that of its child processes (trainings), in MB."""
    return common.rss_mb(pid) or 0.0, sum(common.rss_mb(c) or 0.0 for c in common.children(pid))


async def app_session(url: str, pid: int, drawings: int) -> dict:
    from playwright.async_api import async_playwright

    from benchmarks.load import draw_digit, png_bytes, wait_text

    out: dict = {"readings": [], "shown": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=url)
        context.set_default_timeout(60_000)
        page = await context.new_page()
        t = time.time()
        await page.goto("/")
        await wait_text(page, "prediction", "No digit yet")
        out["page_open"] = time.time() - t
        out["mb_page_open"] = server_mb(pid)
        canvas = page.locator("canvas.upper-canvas")
        await canvas.wait_for()
        reset = page.get_by_role("button", name="Reset canvas & history")
        single = [d for d, strokes in DIGITS.items() if len(strokes) == 1]
        for i in range(1 + drawings):
            digit = single[i % len(single)]
            start = await draw_digit(page, canvas, digit)
            text = await wait_text(page, "prediction")
            out["readings"].append(time.time() - start)
            out["shown"].append((digit, text.split()[0] if text else ""))
            await reset.click()
            await wait_text(page, "prediction", "No digit yet")
        await page.goto("/upload")
        await page.get_by_text("No picture yet").wait_for()
        t = time.time()
        await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
            [{"name": "seven.png", "mimeType": "image/png", "buffer": png_bytes(render_strokes(DIGITS[7], 400, 22))}])
        text = await wait_text(page, "prediction-0")
        out["upload"] = time.time() - t
        out["shown"].append((7, text.split()[0] if text else ""))
        await page.wait_for_timeout(2000)  # the reruns' last messages sent
        out["mb_warm"] = server_mb(pid)
        out["hwm"] = common.rss_mb(pid, "VmHWM")
        await browser.close()
    return out


def app(data: str, drawings: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="digitrec-serving-") as models:
        log = open(Path(models) / "streamlit.log", "w+")
        t = time.time()
        try:
            proc, url = start_app(models, data, log)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        started = time.time() - t
        mb_started = server_mb(proc.pid)
        try:
            out = asyncio.run(app_session(url, proc.pid, drawings))
        finally:
            stop_app(proc, log)
        tracebacks = Path(log.name).read_text().count("Traceback")
    return out | {"started": started, "mb_started": mb_started, "tracebacks": tracebacks}


# --- the report -------------------------------------------------------------------------

def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "**not met**"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs of each digitrec command")
    parser.add_argument("--tf-runs", type=int, default=3, help='runs of python -c "import tensorflow" (0: none)')
    parser.add_argument("--repeats", type=int, default=200, help="in-process calls per latency row")
    parser.add_argument("--numbers", type=int, default=35, help="numbers of 2-8 digits read (at least 1)")
    parser.add_argument("--drawings", type=int, default=5, help="drawings after the first (warm-up)")
    parser.add_argument("--no-browser", action="store_true", help="leave out the app")
    parser.add_argument("--data")
    parser.add_argument("--out", default=str(common.RESULTS / "serving.md"))
    args = parser.parse_args(argv)
    data = common.data_dir(args.data)
    if not args.no_browser and chromium_path() is None:
        raise SystemExit("Chromium not found: install it (make chromium), set $CHROMIUM, or pass --no-browser")
    load_before = common.load()

    from digitrec import store
    from digitrec.reading.decode import load_image
    from digitrec.training.datasets import load_mnist

    mnist = load_mnist(data)
    folder = Path(tempfile.mkdtemp(prefix="digitrec-serving-pictures-"))
    pics = pictures(mnist, folder, args.numbers)
    one = pics["digits"][1][0]  # a phone photo
    number, _, truth = pics["numbers"][min(3, len(pics["numbers"]) - 1)]  # 5 digits by default

    py = [sys.executable]
    tf_reference = 'python -c "import tensorflow" (what reading paid before)'
    commands = {
        "python -c pass (the interpreter alone)": (py + ["-c", "pass"], args.runs),
        "**python -m digitrec predict one.png**": (py + ["-m", "digitrec", "predict", one], args.runs),
        f"python -m digitrec read number.png ({len(truth)} digits)": (py + ["-m", "digitrec", "read", number],
                                                                      args.runs),
    }
    if args.tf_runs:
        commands[tf_reference] = (py + ["-c", "import tensorflow"], args.tf_runs)
    rows = whole_processes(commands)
    for row in rows:
        print(row, flush=True)
    predict_row = rows[1]

    # In this process; nothing above loaded a model here.
    from digitrec.reading.digits import Recognizer

    t = time.perf_counter()
    rec = Recognizer.load()
    load_ms = 1e3 * (time.perf_counter() - t)
    agree_digits, differ = same_answers("predict", [f for f, _, _ in pics["digits"]],
                                        lambda f: rec.predict(load_image(f)).to_dict())
    agree_numbers, differ_n = same_answers("read", [f for f, _, _ in pics["numbers"]],
                                           lambda f: rec.read(load_image(f)).to_dict())
    differ += differ_n

    x1 = mnist.x_test[:1].astype(np.float32) / 255
    batch = mnist.x_test[:10_000].astype(np.float32) / 255
    rec.probabilities(batch)
    t = time.perf_counter()
    rec.probabilities(batch)
    per_second = len(batch) / (time.perf_counter() - t)
    canvas, photo = canvas_picture(), pics["digits"][1][1]
    latency = [
        ("network alone, one 28x28 (`Recognizer.probabilities`)", args.repeats,
         timed(lambda: rec.probabilities(x1), args.repeats)),
        ("`predict`, Draw-page canvas 320x320 RGBA", args.repeats,
         timed(lambda: rec.predict(canvas), args.repeats)),
        (f"`predict`, phone photo {photo.shape[1]}x{photo.shape[0]}", args.repeats,
         timed(lambda: rec.predict(photo), args.repeats)),
    ]
    number_times = []
    for _, image, _ in pics["numbers"]:
        t = time.perf_counter()
        rec.read_number(image)
        number_times.append(time.perf_counter() - t)
    latency.append((f"`read_number`, numbers of 2-8 digits ({len(number_times)} pictures, once each)",
                    len(number_times), stats(number_times)))
    for row in latency:
        print(row, flush=True)
    shutil.rmtree(folder)

    served = None if args.no_browser else app(data, args.drawings)
    if served:
        print(served, flush=True)

    # --- Markdown
    command = "python benchmarks/serving.py" + "".join(
        f" --{name.replace('_', '-')} {getattr(args, name)}"
        for name, default in (("runs", 10), ("tf_runs", 3), ("repeats", 200), ("numbers", 35), ("drawings", 5))
        if getattr(args, name) != default) + (" --no-browser" if args.no_browser else "")
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("ai-edge-litert", "numpy", "streamlit"))
    models = ", ".join(f"{p.with_suffix('.tflite').name} {p.with_suffix('.tflite').stat().st_size / 1e6:.1f} MB"
                       for p in (store.DIGIT_MODEL, store.DETECTOR, store.RECOGNIZER))
    lines = ["# Serving: reading without TensorFlow", "", f"`{command}`", ""]
    lines += common.machine_lines(load_before)
    lines += [f"- {versions}; models: {models}", ""]

    first = served["readings"][0] if served else None
    warm_mb = sum(served["mb_warm"]) if served else None
    targets = [["`predict` one picture, whole process, median", f"<= {TARGETS['predict_s']} s",
                f"{predict_row['median']:.2f} s", verdict(predict_row["median"], TARGETS["predict_s"])],
               ["`predict` one picture, whole process, peak RSS", f"<= {TARGETS['predict_mb']} MB",
                f"{predict_row['mb']:.0f} MB", verdict(predict_row["mb"], TARGETS["predict_mb"])]]
    if served:
        targets += [["first reading on a fresh app server, after the stroke", f"<= {TARGETS['first_reading_s']} s",
                     f"{first:.2f} s", verdict(first, TARGETS["first_reading_s"])],
                    ["app server memory after warm-up (VmRSS, with children)", f"<= {TARGETS['server_mb']} MB",
                     f"{warm_mb:.0f} MB", verdict(warm_mb, TARGETS["server_mb"])]]
    lines += ["## Targets", ""]
    lines += common.table(["what", "target", "measured", ""], targets)
    lines += ["", "Before, with TensorFlow on the reading path (the project's 2-core machine of "
              "the time): `predict` 3.0 s and 800 MB; first reading 4.3 s; server about 780 MB.", ""]

    lines += ["## Whole processes", ""]
    lines += common.table(
        ["command", "runs", "median s", "min s", "max s", "peak RSS MB (median)", "failed", "stderr (bytes, most)"],
        [[r["label"], r["runs"], f"{r['median']:.3f}", f"{r['min']:.3f}", f"{r['max']:.3f}", f"{r['mb']:.0f}",
          r["failed"], r["stderr"]] for r in rows])
    tf_row = next((r for r in rows if r["label"] == tf_reference), None)
    if tf_row is not None:
        lines += ["", f"In this run `predict` took {predict_row['median'] / tf_row['median']:.0%} of the time "
                  f"and {predict_row['mb'] / tf_row['mb']:.0%} of the memory of importing TensorFlow alone "
                  "(both under the same load)."]
    n_digits, n_numbers = len(pics["digits"]), len(pics["numbers"])
    lines += ["", f"Same answers as `Recognizer` in this process on the same files: `predict --json` "
              f"{agree_digits} of {n_digits} pictures (one digit per condition, two blanks), `read --json` "
              f"{agree_numbers} of {n_numbers} numbers."]
    lines += [f"- {d}" for d in differ[:5]]
    lines += ["", "## In process, through `Recognizer` (ms)", ""]
    lines += common.table(["what", "calls", "median", "p95"],
                          [["`Recognizer.load()`, first call (three networks)", 1, f"{load_ms:.1f}", ""]]
                          + [[what, n, f"{m:.2f}", f"{p:.2f}"] for what, n, (m, p) in latency])
    lines += ["", f"Throughput: {per_second:,.0f} images/s (`Recognizer.probabilities` on {len(batch):,} "
              "MNIST test digits at once, batches of 256 on every core)."]
    if served:
        later = served["readings"][1:]
        wrong = [f"{d} shown as '{s}'" for d, s in served["shown"] if s != str(d)]
        lines += ["", "## The app: a fresh server, one Chromium session", ""]
        lines += common.table(["step", "seconds"], [
            ["`streamlit run` to its health check answering", f"{served['started']:.2f}"],
            ["Draw page opened to its first content (the models load as the first page runs)",
             f"{served['page_open']:.2f}"],
            ["**first reading: mouse up to the digit shown**", f"**{first:.2f}**"],
            [f"later readings, median of {len(later)}", f"{np.median(later):.2f}" if later else "n/a"],
            ["an upload: file set to the digit shown", f"{served['upload']:.2f}"]])
        lines += ["", f"Readings shown wrong: {', '.join(wrong) or 'none'}; tracebacks in the server log: "
                  f"{served['tracebacks']}.", ""]
        lines += common.table(["server memory (MB)", "server (VmRSS)", "its children"], [
            ["started, no page open", f"{served['mb_started'][0]:.0f}", f"{served['mb_started'][1]:.0f}"],
            ["Draw page open", f"{served['mb_page_open'][0]:.0f}", f"{served['mb_page_open'][1]:.0f}"],
            [f"after warm-up ({1 + args.drawings} drawings, an upload)", f"{served['mb_warm'][0]:.0f}",
             f"{served['mb_warm'][1]:.0f}"],
            ["server's peak (VmHWM)", f"{served['hwm']:.0f}", ""]])
    common.publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
