"""Load: several browser sessions drawing and uploading at once while another one trains.

    python benchmarks/load.py [--sessions 4] [--duration 90] [--warmup 20]
                              [--train-images 20000] [--no-train] [--data DIR] [--url URL]

Starts the app itself (``streamlit run`` on a free port, a temporary models directory)
unless ``--url`` names a running one, then drives it with headless Chromium (Playwright,
one browser, one context per session):

* ``--sessions`` user sessions for ``--duration`` seconds: even ones draw a digit on the
  Draw page with mouse moves, then reset the canvas; odd ones upload a PNG on the Upload
  page, then load the page afresh (a new session). Each action is timed from its last input event (mouse up, file
  set) to the prediction shown in the page (``.st-key-prediction*`` starts with a digit);
  a wrong digit is counted as a misread, a timeout or a Streamlit exception as an error;
* one more session first starts a small training on the Train page (``--train-images``
  images, 1 epoch, fast preset) and waits until it runs; only then do the user sessions
  and the clock start. It starts another training whenever one ends, so that training
  runs for the whole time, and presses Stop at the end;
* the server's resident memory (VmRSS from /proc) is sampled every second.

Prints and writes ``benchmarks/results/load.md``: p50/p95/max time to a shown prediction
(all actions, and after the warm-up), errors, misreads, and the server's memory at start,
after the warm-up, at its highest and at the end, with the slope after the warm-up.
No pass/fail threshold here: the targets (no errors, p95 < 1 s with 4 sessions on 2
cores, memory flat after warm-up) are read off the report.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.browser import CHROMIUM_ARGS, DIGITS, chromium_path, render_strokes, start_app, stop_app  # noqa: E402
from benchmarks.common import RESULTS, data_dir, load, machine_lines, rss_mb, table  # noqa: E402

ACTION_TIMEOUT_MS = 30_000
SINGLE_STROKE = [d for d, strokes in DIGITS.items() if len(strokes) == 1]


class Server:
    """``streamlit run streamlit_app.py`` with its own models directory."""

    def __init__(self, data: str):
        self.models = tempfile.mkdtemp(prefix="digitrec-load-models-")
        self.log = open(Path(self.models) / "streamlit.log", "w+")
        try:
            self.proc, self.url = start_app(self.models, data, self.log, timeout=180)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None

    def stop(self) -> str:
        """Stop the server; returns its log."""
        stop_app(self.proc, self.log)
        return Path(self.log.name).read_text()


TICKS = os.sysconf("SC_CLK_TCK")
GROUPS = ("server", "trainings", "browsers", "other")


def cpu_by_process(server: int) -> dict[int, tuple[str, float]]:
    """Every live process's CPU seconds so far (user + system), with its group: the
    server, its trainings (the server's children), the browsers (Chromium), other."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        pid, ppid = int(entry), int(fields[1])
        group = ("server" if pid == server else "trainings" if ppid == server
                 else "browsers" if "chrom" in comm.lower() or "headless" in comm.lower() else "other")
        out[pid] = (group, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def cpu_between(snapshots: list[dict]) -> dict[str, float]:
    """CPU seconds each group used over a run of :func:`cpu_by_process` snapshots: each
    process from the first snapshot that has it (from zero if it was born after the first
    one) to the last that has it (a training that ended counts up to its last sample)."""
    first, last = {}, {}
    for k, snap in enumerate(snapshots):
        for pid, (group, seconds) in snap.items():
            if pid not in first or first[pid][0] != group:
                first[pid] = (group, seconds if k == 0 else 0.0)
            last[pid] = (group, seconds)
    used = dict.fromkeys(GROUPS, 0.0)
    for pid, (group, seconds) in last.items():
        used[group] += seconds - first[pid][1]
    return used


class MemorySampler(threading.Thread):
    def __init__(self, pid: int | None, every: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []  # (seconds since t0, MB)
        self.children = []  # (seconds since t0, MB of the server's child processes)
        self.cpu = []  # (seconds since t0, cpu_by_process())
        self.t0 = time.time()
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set() and self.pid:
            mb = rss_mb(self.pid)
            if mb is not None:
                cpu = cpu_by_process(self.pid)  # one walk of /proc: the trainings are the server's children
                self.samples.append((time.time() - self.t0, mb))
                self.children.append((time.time() - self.t0, sum(rss_mb(pid) or 0 for pid, (group, _) in
                                                                  cpu.items() if group == "trainings")))
                self.cpu.append((time.time() - self.t0, cpu))
            self.halt.wait(self.every)

    def cpu_after(self, since: float) -> tuple[float, dict[str, float]] | None:
        """Seconds from the first sample at or after ``since`` (seconds since t0) to the
        last, and the CPU seconds each group used in them."""
        later = [c for c in self.cpu if c[0] >= since]
        if len(later) < 2:
            return None
        return later[-1][0] - later[0][0], cpu_between([c[1] for c in later])


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


JS_TEXT = """key => { const e = document.querySelector('.st-key-' + key);
                      return e ? e.innerText.trim() : ''; }"""
JS_READY = """([key, blank]) => { const e = document.querySelector('.st-key-' + key);
    if (!e) return false; const t = e.innerText.trim();
    return blank ? t.startsWith(blank) : /^(\\d|No digit found)/.test(t); }"""


class Stats:
    def __init__(self):
        self.records = []  # (kind, start time since t0, seconds, ok, misread)
        self.errors = []  # (kind, message)
        self.trainings = []  # states seen
        self.t0 = None  # when the measured window began (after the training started)
        self.misreads = []  # (kind, digit drawn, text shown)

    def reading(self, kind: str, start: float, t0: float, text: str, digit: int) -> None:
        """Record one shown prediction: when its input was given, how long it took, and
        whether the digit shown is the one drawn or uploaded."""
        shown = re.match(r"(\d)\b", text)
        misread = not shown or int(shown.group(1)) != digit
        self.records.append((kind, start - t0, time.time() - start, True, misread))
        if misread:
            self.misreads.append((kind, digit, text[:20].replace("\n", " ")))


async def wait_text(page, key: str, blank: str | None = None) -> str:
    await page.wait_for_function(JS_READY, arg=[key, blank], polling=50, timeout=ACTION_TIMEOUT_MS)
    return await page.evaluate(JS_TEXT, key)


async def check_exception(page, kind: str, stats: Stats) -> None:
    if await page.locator("[data-testid='stException']").count():
        text = (await page.locator("[data-testid='stException']").first.inner_text())[:300]
        stats.errors.append((kind, f"exception shown: {text}"))


async def draw_digit(page, canvas, digit: int) -> float:
    """Draw ``digit`` (:data:`DIGITS`) with real mouse moves; returns when the last
    stroke ended (mouse up), the moment a reading is timed from."""
    box = await canvas.bounding_box()
    for stroke in DIGITS[digit]:
        pts = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        await page.mouse.move(*pts[0])
        await page.mouse.down()
        for x, y in pts[1:]:
            await page.mouse.move(x, y, steps=6)
        start = time.time()
        await page.mouse.up()
    return start


async def drawer(context, stop_at: float, t0: float, stats: Stats, seed: int) -> None:
    page = await context.new_page()
    await page.goto("/")
    await wait_text(page, "prediction", "No digit yet")
    canvas = page.locator("canvas.upper-canvas")
    reset = page.get_by_role("button", name="Reset canvas & history")
    rng = np.random.default_rng(seed)
    while time.time() < stop_at:
        digit = int(rng.choice(SINGLE_STROKE))
        try:
            start = await draw_digit(page, canvas, digit)
            text = await wait_text(page, "prediction")
            stats.reading("draw", start, t0, text, digit)
            await check_exception(page, "draw", stats)
            await reset.click()
            await wait_text(page, "prediction", "No digit yet")
        except Exception as exc:  # a timeout: an error, then start afresh
            stats.errors.append(("draw", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
            await page.goto("/")
            await wait_text(page, "prediction", "No digit yet")
        await page.wait_for_timeout(int(rng.integers(200, 600)))  # a person's pause


async def uploader(context, stop_at: float, t0: float, stats: Stats, seed: int,
                   fresh_every: int) -> None:
    page = await context.new_page()
    await page.goto("/upload")
    await page.get_by_text("No picture yet").wait_for(timeout=ACTION_TIMEOUT_MS)
    rng = np.random.default_rng(seed)
    images = {d: png_bytes(render_strokes(DIGITS[d], 400, 22)) for d in DIGITS}
    n = 0
    while time.time() < stop_at:
        digit = int(rng.choice(list(DIGITS)))
        n += 1
        try:
            start = time.time()
            await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
                [{"name": f"digit-{seed}-{n}.png", "mimeType": "image/png", "buffer": images[digit]}])
            text = await wait_text(page, "prediction-0")
            stats.reading("upload", start, t0, text, digit)
            await check_exception(page, "upload", stats)
            if fresh_every and n % fresh_every == 0:
                raise StopIteration  # a new visitor: a fresh page and session below
            # The next picture as a visitor uploads it: remove this one, then add the next
            # (the uploader keeps adding files otherwise).
            await page.get_by_test_id("stFileChipDeleteBtn").locator("button").first.click()
            await page.get_by_text("No picture yet").wait_for(timeout=ACTION_TIMEOUT_MS)
        except StopIteration:
            await page.goto("/upload")
            await page.get_by_text("No picture yet").wait_for(timeout=ACTION_TIMEOUT_MS)
        except Exception as exc:
            stats.errors.append(("upload", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
            await page.goto("/upload")
            await page.get_by_text("No picture yet").wait_for(timeout=ACTION_TIMEOUT_MS)
        await page.wait_for_timeout(int(rng.integers(200, 600)))


async def start_training(context, stats: Stats, images: int):
    """Open the Train page, start a training and wait until it runs (its progress bar
    counts batches): the measured window then has a training in it from its first second."""
    page = await context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    await page.goto("/train")
    field = page.get_by_label("Training images", exact=True)
    await field.fill(str(images))
    await field.press("Enter")
    epochs = page.get_by_role("slider", name="Epochs")
    await epochs.focus()
    await epochs.press("Home")  # 1 epoch
    await page.wait_for_timeout(1500)
    await page.get_by_role("button", name="Start training").click()
    stats.trainings.append("started")
    await page.locator(".st-key-training").get_by_text(re.compile(r"batch \d+ of")).wait_for(timeout=180_000)
    return page


async def keep_training(page, stop_at: float, stats: Stats) -> None:
    """Start another training whenever one ends; press Stop at the end."""
    while time.time() < stop_at:
        if await page.locator(".st-key-result").count():
            stats.trainings.append((await page.locator(".st-key-result").inner_text())[:120])
            await page.get_by_role("button", name="Start training").click()
            stats.trainings.append("started")
            await page.wait_for_timeout(3000)
        await page.wait_for_timeout(1000)
    if await page.get_by_role("button", name="Stop").count():
        await page.get_by_role("button", name="Stop").click()
        stats.trainings.append("stop pressed at the end")
        try:
            await page.locator(".st-key-result").wait_for(timeout=120_000)
            stats.trainings.append((await page.locator(".st-key-result").inner_text())[:120])
        except Exception as exc:
            stats.errors.append(("train", f"no result after Stop: {type(exc).__name__}"))
    await check_exception(page, "train", stats)


async def drive(url: str, sessions: int, duration: float, train_images: int | None,
                stats: Stats, t0: float, fresh_every: int = 10) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(),
                                          args=CHROMIUM_ARGS, headless=True)
        contexts = []
        for _ in range(sessions + (1 if train_images else 0)):
            ctx = await browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=url)
            ctx.set_default_timeout(ACTION_TIMEOUT_MS)
            contexts.append(ctx)
        train_page = await start_training(contexts[-1], stats, train_images) if train_images else None
        stats.t0 = time.time()  # the measured window starts now
        stop_at = stats.t0 + duration
        tasks = []
        if train_page is not None:
            tasks.append(keep_training(train_page, stop_at, stats))
        for i in range(sessions):
            if i % 2 == 0:
                tasks.append(drawer(contexts[i], stop_at, stats.t0, stats, seed=i))
            else:
                tasks.append(uploader(contexts[i], stop_at, stats.t0, stats, seed=i,
                                      fresh_every=fresh_every))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, Exception):
                stats.errors.append(("session", f"{type(r).__name__}: {str(r).splitlines()[0][:200]}"))
        await browser.close()


def pct(values, q) -> str:
    return f"{np.percentile(values, q):.2f}" if len(values) else "n/a"


def report(args, stats: Stats, samples, load_before: str, server_log: str,
           child_samples=(), cpu=None) -> str:
    lines = ["# Load: concurrent sessions drawing and uploading while one trains", "",
             f"Command: `python benchmarks/load.py --sessions {args.sessions} --duration "
             f"{args.duration:g} --warmup {args.warmup:g}"
             + (" --no-train" if args.no_train else f" --train-images {args.train_images}")
             + (f" --fresh-every {args.fresh_every}" if args.fresh_every != 10 else "")
             + (f" --client-nice {args.client_nice}" if args.client_nice else "") + "`", ""]
    lines += machine_lines(load_before)
    lines += ["- one Chromium (headless, one context per session) runs on the same cores as the server"
              + (f", at nice {args.client_nice} (the server at 0, its training at "
                 f"{args.train_nice})" if args.client_nice else ""), ""]
    rows = []
    for kind in ("draw", "upload", "all"):
        recs = [r for r in stats.records if kind == "all" or r[0] == kind]
        warm = [r[2] for r in recs if r[1] >= args.warmup]
        every = [r[2] for r in recs]
        rows.append([kind, len(every), pct(every, 50), pct(every, 95), f"{max(every):.2f}" if every else "n/a",
                     len(warm), pct(warm, 50), pct(warm, 95), f"{max(warm):.2f}" if warm else "n/a",
                     sum(r[4] for r in recs)])
    lines += ["Time from the last input (mouse up, file chosen) to the prediction shown, seconds:", ""]
    lines += table(["kind", "actions", "p50", "p95", "max", "after warm-up", "p50", "p95", "max", "misread"], rows)
    lines += ["", f"Errors (timeouts of {ACTION_TIMEOUT_MS // 1000} s, exceptions shown): **{len(stats.errors)}**"]
    for kind, msg in stats.errors[:20]:
        lines.append(f"- {kind}: {msg}")
    if stats.misreads:
        lines.append("- misreads (not errors: the synthetic strokes, read by the model): " + ", ".join(
            f"{k} {d} shown as '{t}'" for k, d, t in stats.misreads[:10]))
    if cpu:
        seconds, used = cpu
        actions = sum(1 for r in stats.records if r[1] >= args.warmup)
        cores = os.cpu_count() or 1
        lines += ["", f"Where the CPU went after the warm-up ({seconds:.0f} s, {cores} cores, {actions} "
                  "actions; CPU seconds from /proc, sampled every second):", ""]
        lines += table(["", *GROUPS, "idle"],
                       [["CPU seconds", *(f"{used[g]:.0f}" for g in GROUPS),
                         f"{max(0.0, seconds * cores - sum(used.values())):.0f}"],
                        ["share of the cores", *(f"{used[g] / (seconds * cores):.0%}" for g in GROUPS),
                         f"{max(0.0, 1 - sum(used.values()) / (seconds * cores)):.0%}"],
                        ["per action, s", *(f"{used[g] / actions:.2f}" if actions else "n/a" for g in GROUPS),
                         ""]])
    tracebacks = server_log.count("Traceback")
    lines += [f"- tracebacks in the server log: {tracebacks}"]
    lines += ["", "Training session: " + ("; ".join(
        s if isinstance(s, str) else str(s) for s in stats.trainings).replace("\n", " ") or "none")]
    if samples:
        t = np.array([s[0] for s in samples])
        mb = np.array([s[1] for s in samples])
        after = mb[t >= args.warmup + args.start_offset]
        ta = t[t >= args.warmup + args.start_offset]
        slope = np.polyfit(ta / 60, after, 1)[0] if len(after) > 5 else float("nan")
        half = len(after) // 2
        # the last half of the run after the warm-up: is memory flat once everything is loaded?
        late, tl = after[half:], ta[half:]
        late_slope = np.polyfit(tl / 60, late, 1)[0] if len(late) > 5 else float("nan")
        lines += ["", "Server memory (VmRSS, MB, the server process alone), sampled every second:", ""]
        lines += table(["at start", "after warm-up", "highest", "end", "mean, 1st half after warm-up",
                        "mean, 2nd half", "slope after warm-up (MB/min)", "2nd half: min-max",
                        "2nd half: slope (MB/min)"],
                       [[f"{mb[0]:.0f}", f"{after[0]:.0f}" if len(after) else "n/a", f"{mb.max():.0f}",
                         f"{mb[-1]:.0f}", f"{after[:half].mean():.0f}" if half else "n/a",
                         f"{after[half:].mean():.0f}" if half else "n/a", f"{slope:+.1f}",
                         f"{late.min():.0f}-{late.max():.0f}" if len(late) else "n/a",
                         f"{late_slope:+.1f}"]])
        # A training holds its images, model and traced steps while it runs, so the samples
        # swing with the trainings' phases; the lowest of each minute is the memory that
        # stays: it rises minute after minute if something leaks.
        minutes = [after[(ta - ta[0] >= 60 * i) & (ta - ta[0] < 60 * (i + 1))]
                   for i in range(int((ta[-1] - ta[0]) // 60))] if len(ta) else []
        lines += ["", "Lowest of each whole minute after the warm-up (MB): "
                  + (", ".join(f"{m.min():.0f}" for m in minutes if len(m)) or "n/a")]
        child = np.array([c[1] for c in child_samples])
        if len(child):
            lines += ["", "The trainings' processes (digitrec.server.worker, the server's children; each "
                      f"ends with its training): highest {child.max():.0f} MB; running in "
                      f"{(child > 0).mean():.0%} of the samples"]
        step = max(1, len(samples) // 20)
        lines += ["", "Over time (s since the server started: MB; the measured window began at "
              f"{args.start_offset:.0f} s): " + ", ".join(f"{s:.0f}: {m:.0f}" for s, m in samples[::step])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--warmup", type=float, default=20, help="seconds left out of 'after warm-up'")
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--data")
    parser.add_argument("--url", help="a running app (memory is not sampled then)")
    parser.add_argument("--client-nice", type=int, default=0,
                        help="run the browsers (and this driver) at this nice value, the server "
                             "staying at 0: visitors' browsers run on their own machines, not on "
                             "the server's cores; this gives the server first call on the CPU")
    parser.add_argument("--fresh-every", type=int, default=10,
                        help="an uploading session starts afresh (a new visitor: page load, "
                             "new session) after this many uploads; 1 = after every upload")
    parser.add_argument("--out", default=str(RESULTS / "load.md"))
    args = parser.parse_args()
    args.train_nice = os.environ.get("DIGITREC_TRAIN_NICE", "10")
    if chromium_path() is None:
        raise SystemExit("Chromium not found: install it (make chromium) or set $CHROMIUM")
    load_before = load()
    server = None if args.url else Server(data_dir(args.data))
    if args.client_nice:  # after the server started: it keeps nice 0
        os.nice(args.client_nice)
    url = args.url or server.url
    sampler = MemorySampler(server.proc.pid if server else None)
    sampler.start()
    urllib.request.urlopen(url + "/_stcore/health", timeout=10).read()
    stats = Stats()
    try:
        asyncio.run(drive(url, args.sessions, args.duration, None if args.no_train else args.train_images,
                          stats, time.time(), args.fresh_every))
    finally:
        sampler.halt.set()
        # memory samples are timed from the server's start; the window from stats.t0
        args.start_offset = (stats.t0 or time.time()) - sampler.t0
        log = server.stop() if server else ""
    text = report(args, stats, sampler.samples, load_before, log, sampler.children,
                  sampler.cpu_after(args.start_offset + args.warmup))
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    if "Traceback" in log:
        print(log[-4000:], file=sys.stderr)


if __name__ == "__main__":
    main()
