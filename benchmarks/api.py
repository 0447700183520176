"""API: many programs posting pictures to ``python -m digitrec serve`` at once, on loopback.

    python benchmarks/api.py [--clients 16] [--duration 60] [--warmup 10] [--digits 30]
                             [--amounts 40] [--data DIR] [--note TEXT] [--out PATH]

Starts the server (a free port, no API key) and waits for ``/health``. The pictures:
``--digits`` MNIST test digits rendered as users' pictures (one per condition of
:func:`digitrec.training.synth.render_digit`, in turn) and ``--amounts`` real cheque
amounts from ``orand-train`` (beside MNIST). The CLI (``predict --json``, ``read --json``,
one process each) answers every picture first: what each answer must equal.

Then ``--clients`` threads, each with its own keep-alive connection, post for
``--duration`` seconds, one picture a request, back to back: even clients a digit to
``/v1/predict``, odd ones an amount to ``/v1/read``. Each request is timed from send to
the whole answer, and its JSON compared with the CLI's for that picture. The server's
resident memory (VmRSS from /proc) is sampled every half second.

Prints and writes ``benchmarks/results/api.md``: requests, errors (a status other than
200, a failed connection), answers that differ from the CLI's, requests a second and
p50/p95/max latency per endpoint (all, and after ``--warmup`` seconds); the server's
memory at start (after ``/health``), after the warm-up, highest and at the end, with its
slope after the warm-up and over the run's second half. Targets (read off the report, no pass/fail): no errors, every
answer the CLI's, memory flat after the warm-up. The clients run on the same cores as the
server, as on a machine that serves its own programs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.browser import free_port  # noqa: E402
from benchmarks.common import RESULTS, ROOT, data_dir, load, machine_lines, publish, rss_mb, table  # noqa: E402

ENDPOINTS = {"/v1/predict": "predict", "/v1/read": "read"}  # endpoint -> the CLI command it answers as


def pictures(mnist, folder: Path, digits: int, amounts: int, orand: Path) -> dict[str, list[Path]]:
    """Digit pictures written as PNG into ``folder``, and the first ``amounts`` cheque
    amounts of orand-train, by endpoint."""
    from PIL import Image

    from digitrec.training import synth

    rng = np.random.default_rng(0)
    order = rng.permutation(len(mnist.y_test))
    written = []
    for i in range(digits):
        image = synth.render_digit(mnist.x_test[order[i]], synth.CONDITIONS[i % len(synth.CONDITIONS)], rng)
        written.append(folder / f"digit-{i:02d}.png")
        Image.fromarray(image).save(written[-1])
    real = sorted((orand / "images").glob("*.jpg"))[:amounts]
    if not real:
        raise SystemExit(f"no cheque amounts in {orand}/images")
    return {"/v1/predict": written, "/v1/read": real}


def cli_answers(command: str, files: list[Path]) -> dict[str, dict]:
    """``python -m digitrec COMMAND --json FILES``: each file's printed answer, by its path."""
    proc = subprocess.run([sys.executable, "-m", "digitrec", command, "--json", *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT)
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(printed) != len(files):
        raise SystemExit(f"{command} printed {len(printed)} answers for {len(files)} files: {proc.stderr[-500:]}")
    return {record["file"]: record for record in printed}


class Server:
    """``python -m digitrec serve`` on a free loopback port, its log in a temporary file."""

    def __init__(self):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="digitrec-api-", suffix=".log")
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if k != "DIGITREC_API_KEY"}
        self.proc = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--port", self.url.rsplit(":", 1)[1]],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        end = time.time() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server ended: {self.text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return
            except OSError:
                if time.time() > end:
                    self.stop()
                    raise SystemExit("the server did not answer /health in 180 s") from None
                time.sleep(0.2)

    def text(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self) -> str:
        """Stop the server (SIGTERM: uvicorn shuts down gracefully); returns its log."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.text()


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []  # (seconds since t0, MB)
        self.t0 = time.time()
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            mb = rss_mb(self.pid)
            if mb is not None:
                self.samples.append((time.time() - self.t0, mb))
            self.halt.wait(self.every)


def client(url: str, endpoint: str, files: list[Path], expected: dict, stop_at: float, t0: float,
           seed: int, records: list, errors: list) -> None:
    """Post ``files`` (in a shuffled order, round and round) to ``endpoint`` until ``stop_at``;
    append (endpoint, start since t0, seconds, same as the CLI) to ``records``."""
    import httpx2

    rng = np.random.default_rng(seed)
    payloads = [(str(f), f.read_bytes()) for f in files]
    with httpx2.Client(base_url=url, timeout=120) as http:
        while time.time() < stop_at:
            name, data = payloads[int(rng.integers(len(payloads)))]
            start = time.time()
            try:
                r = http.post(endpoint, files=[("file", (name, data, "application/octet-stream"))])
            except httpx2.HTTPError as exc:
                errors.append((endpoint, f"{type(exc).__name__}: {exc}"[:200]))
                continue
            seconds = time.time() - start
            if r.status_code != 200:
                errors.append((endpoint, f"{r.status_code}: {r.text[:200]}"))
                continue
            records.append((endpoint, start - t0, seconds, r.json() == expected[name]))


def pct(values, q) -> str:
    return f"{np.percentile(values, q) * 1000:.0f}" if len(values) else "n/a"


def report(args, records, errors, samples, load_before: str, log: str, counts: dict, window: float) -> list[str]:
    command = (f"python benchmarks/api.py --clients {args.clients} --duration {args.duration:g} "
               f"--warmup {args.warmup:g} --digits {args.digits} --amounts {args.amounts}")
    lines = ["# API: concurrent clients posting pictures to `python -m digitrec serve`", "",
             f"Command: `{command}`", ""]
    lines += machine_lines(load_before)
    lines += [f"- {args.clients} client threads (one keep-alive connection each, half on each endpoint) "
              "run in one process on the same cores as the server, over loopback"]
    if args.note:
        lines += [f"- {args.note}"]
    lines += ["", f"Pictures: {counts['/v1/predict']} digits rendered from MNIST test digits (one condition "
              f"each) to `/v1/predict`, {counts['/v1/read']} real cheque amounts (orand-train) to `/v1/read`, "
              "one a request.", "", "Latency from send to the whole answer, milliseconds:", ""]
    rows = []
    for endpoint in (*ENDPOINTS, "all"):
        recs = [r for r in records if endpoint == "all" or r[0] == endpoint]
        every = [r[2] for r in recs]
        warm = [r[2] for r in recs if r[1] >= args.warmup]
        errs = sum(1 for e in errors if endpoint == "all" or e[0] == endpoint)
        differ = sum(1 for r in recs if not r[3])
        rows.append([endpoint, len(every) + errs, errs, differ, f"{len(every) / window:.1f}",
                     pct(every, 50), pct(every, 95), f"{max(every) * 1000:.0f}" if every else "n/a",
                     pct(warm, 50), pct(warm, 95)])
    lines += table(["endpoint", "requests", "errors", "not the CLI's answer", "answers/s", "p50", "p95", "max",
                    "p50 after warm-up", "p95 after warm-up"], rows)
    for endpoint, message in errors[:10]:
        lines.append(f"- error, {endpoint}: {message}")
    lines += [f"- tracebacks in the server log: {log.count('Traceback')}"]
    if samples:
        t = np.array([s[0] for s in samples])
        mb = np.array([s[1] for s in samples])
        after, ta = mb[t >= args.warmup], t[t >= args.warmup]
        slope = np.polyfit(ta / 60, after, 1)[0] if len(after) > 5 else float("nan")
        # the last half of the run: once the thread pool and its allocator arenas are all in
        # use, memory that still rises request after request would be a leak
        late, tl = mb[t >= t[-1] / 2], t[t >= t[-1] / 2]
        late_slope = np.polyfit(tl / 60, late, 1)[0] if len(late) > 5 else float("nan")
        lines += ["", "Server memory (VmRSS, MB), sampled every half second from the start of the load:", ""]
        lines += table(["at start", "after warm-up", "highest", "end", "slope after warm-up (MB/min)",
                        "2nd half: min-max", "2nd half: slope (MB/min)"],
                       [[f"{mb[0]:.0f}", f"{after[0]:.0f}" if len(after) else "n/a", f"{mb.max():.0f}",
                         f"{mb[-1]:.0f}", f"{slope:+.1f}", f"{late.min():.0f}-{late.max():.0f}",
                         f"{late_slope:+.1f}"]])
        step = max(1, len(samples) // 15)
        lines += ["", "Over time (s: MB): " + ", ".join(f"{s:.0f}: {m:.0f}" for s, m in samples[::step])]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=10, help="seconds left out of 'after warm-up'")
    parser.add_argument("--digits", type=int, default=30, help="digit pictures to render")
    parser.add_argument("--amounts", type=int, default=40, help="orand-train cheque amounts to take")
    parser.add_argument("--data", help="MNIST's folder, orand-train beside it (default: $DIGITREC_DATA)")
    parser.add_argument("--note", help="a line to add under the machine's (what else ran)")
    parser.add_argument("--out", default=str(RESULTS / "api.md"))
    args = parser.parse_args()

    from digitrec.training.datasets import load_mnist

    data = data_dir(args.data)
    folder = Path(tempfile.mkdtemp(prefix="digitrec-api-"))
    files = pictures(load_mnist(data), folder, args.digits, args.amounts, Path(data).parent / "orand-train")
    expected = {}
    for endpoint, command in ENDPOINTS.items():
        expected[endpoint] = cli_answers(command, files[endpoint])
    load_before = load()
    server = Server()
    sampler = MemorySampler(server.proc.pid)
    records, errors = [], []
    try:
        sampler.start()
        t0 = sampler.t0
        stop_at = time.time() + args.duration
        endpoints = list(ENDPOINTS)
        threads = [threading.Thread(target=client, args=(
            server.url, endpoints[i % 2], files[endpoints[i % 2]], expected[endpoints[i % 2]], stop_at, t0, i,
            records, errors)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        window = time.time() - t0
    finally:
        sampler.halt.set()
        log = server.stop()
    publish(report(args, records, errors, sampler.samples, load_before, log,
                   {k: len(v) for k, v in files.items()}, window), args.out)


if __name__ == "__main__":
    main()
