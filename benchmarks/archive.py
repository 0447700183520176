"""Reading an archive: pictures a second for a folder read into one results file, against
one process per picture, with one job and with every core, and the time a finished run
takes when run again (resume), in one run.

    python benchmarks/archive.py [--digits 3000] [--numbers 300] [--per-process 20]
                                 [--repeats 1] [--ray] [--data DIR] [--orand DIR] [--out PATH]

Two kinds of picture, each read by its command as a whole process, as a user runs it:

* single digits (``predict``): the first ``--digits`` MNIST *test* digits, each written
  as a 28x28 PNG (dark on white);
* cheque-sized numbers (``read``): the first ``--numbers`` real cheque amounts of
  ``orand-train`` (JPEG, 40-300 px wide), copied.

For each: ``python -m digitrec COMMAND --output out.jsonl --jobs 1 FOLDER`` and
``--jobs N`` (N: every core), each into a fresh results file; the same ``--jobs N``
command again over its finished file (the resume: nothing left to read, every picture
still there once); and ``python -m digitrec COMMAND FILE`` started once per picture over
``--per-process`` pictures, its rate scaled from them. ``--ray`` adds ``--engine ray``
(a Ray started on this machine for the run, every core). The wall time of a whole command
counts its start (interpreter, models, worker processes); ``--repeats`` runs each command
that many times, round robin, and the median is kept.

Targets, printed beside the figures: a folder run (every core) reads at least 20x the
pictures a second of one process per picture; every core (2 here) at least 1.7x one job;
the resume takes under a third of the first run's time and adds no duplicate. Writes
``benchmarks/results/archive.md``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import common  # noqa: E402

TARGETS = {"per_process": 20.0, "jobs": 1.7, "resume": 1 / 3}


def cpu_of_children() -> float:
    """User and system CPU seconds of this process's children that have ended (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def digitrec(*argv: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """``python -m digitrec ARGV`` as a whole process: wall seconds, CPU seconds (with its
    worker processes) and what it printed."""
    cpu, tic = cpu_of_children(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "digitrec", *argv], cwd=common.ROOT, capture_output=True, text=True)
    return time.perf_counter() - tic, cpu_of_children() - cpu, proc


def write_digits(data: str, folder: Path, n: int) -> dict[str, str]:
    """The first ``n`` MNIST test digits as PNG files; their labels by file."""
    from PIL import Image

    from digitrec.training.datasets import load_mnist

    mnist = load_mnist(data)
    folder.mkdir(parents=True)
    truth = {}
    for i in range(min(n, len(mnist.y_test))):
        path = folder / f"digit-{i:05d}.png"
        Image.fromarray(255 - mnist.x_test[i]).save(path)
        truth[str(path)] = str(int(mnist.y_test[i]))
    return truth


def copy_numbers(orand: Path, folder: Path, n: int) -> dict[str, str]:
    """The first ``n`` cheque amounts of orand-train, copied; their digits by file."""
    folder.mkdir(parents=True)
    with open(orand / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    truth = {}
    for row in rows:
        path = folder / Path(row["file"]).name
        shutil.copy(orand / row["file"], path)
        truth[str(path)] = row["text"]
    return truth


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def measure(command: str, folder: Path, truth: dict[str, str], work: Path, cores: int, per_process: int,
            repeats: int, ray: bool) -> dict:
    """The runs of one kind of picture: wall seconds by label (median of ``repeats``)."""
    n = len(truth)
    runs = {"1 job": ["--jobs", "1"], f"{cores} jobs": ["--jobs", str(cores)]}
    if ray:
        runs[f"Ray, {cores} CPUs"] = ["--engine", "ray", "--jobs", str(cores)]
    times: dict[str, list[float]] = {label: [] for label in [*runs, "resume", "per process"]}
    cpu: dict[str, list[float]] = {label: [] for label in times}
    duplicates, differ, failed = 0, 0, []
    sample = sorted(truth)[:per_process]
    for r in range(repeats):
        answers = {}
        for label, extra in runs.items():
            out = work / f"{command}-{r}-{label.replace(' ', '_').replace(',', '')}.jsonl"
            seconds, cpu_s, proc = digitrec(command, "--output", str(out), *extra, str(folder))
            failed += [f"{label}: {proc.stderr.strip()[-300:]}"] if proc.returncode else []
            times[label].append(seconds)
            cpu[label].append(cpu_s)
            answers[label] = {rec["file"]: rec for rec in records(out)}
            if label == f"{cores} jobs":
                seconds, cpu_s, proc = digitrec(command, "--output", str(out), *extra, str(folder))
                times["resume"].append(seconds)
                cpu["resume"].append(cpu_s)
                done = [rec["file"] for rec in records(out)]
                duplicates += len(done) - len(set(done))
                failed += [f"resume: {proc.stderr.strip()[-300:]}"] if proc.returncode else []
        first = answers["1 job"]
        differ += sum(a != first for a in answers.values())
        tic, cpu_s = time.perf_counter(), 0.0
        for file in sample:
            _, spent, proc = digitrec(command, file)
            cpu_s += spent
            failed += [f"per process: {proc.stderr.strip()[-300:]}"] if proc.returncode else []
        times["per process"].append((time.perf_counter() - tic) * n / len(sample))  # scaled to the folder
        cpu["per process"].append(cpu_s * n / len(sample))
    key = "digit" if command == "predict" else "text"
    right = sum(str(first[f].get(key)) == t for f, t in truth.items() if f in first)
    return {"n": n, "times": {k: float(np.median(v)) for k, v in times.items()},
            "cpu": {k: float(np.median(v)) for k, v in cpu.items()}, "duplicates": duplicates,
            "differ": differ, "failed": failed, "right": right, "sample": len(sample)}


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def training_beside() -> bool:
    """Whether a digitrec training runs in another process on this machine."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                argv = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if any(a.startswith(b"train") for a in argv) and any(b"digitrec" in a for a in argv):
                return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=3000, help="MNIST test digits read by predict")
    parser.add_argument("--numbers", type=int, default=300, help="orand-train cheque amounts read by read")
    parser.add_argument("--per-process", type=int, default=20,
                        help="pictures of each kind read by one process each (the rate is scaled from them)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each command (median kept)")
    parser.add_argument("--ray", action="store_true", help="also --engine ray (a Ray started here)")
    parser.add_argument("--data", help="MNIST's folder (default: $DIGITREC_DATA)")
    parser.add_argument("--orand", help="the orand-train folder (labels.csv, images/; default: beside MNIST's)")
    parser.add_argument("--out", default=str(common.RESULTS / "archive.md"))
    args = parser.parse_args(argv)
    load_before, beside = common.load(), training_beside()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    data = common.data_dir(args.data)
    orand = Path(args.orand) if args.orand else Path(data).resolve().parent / "orand-train"
    with tempfile.TemporaryDirectory(prefix="digitrec-archive-") as tmp:
        work = Path(tmp)
        kinds = {"predict": ("single digits (MNIST test, 28x28 PNG)",
                             work / "digits", write_digits(data, work / "digits", args.digits)),
                 "read": ("cheque amounts (orand-train, JPEG)",
                          work / "numbers", copy_numbers(orand, work / "numbers", args.numbers))}
        results = {command: measure(command, folder, truth, work, cores, args.per_process, args.repeats, args.ray)
                   for command, (_, folder, truth) in kinds.items()}

    command_line = "python benchmarks/archive.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Reading an archive: a folder into one results file", "", f"`{command_line.strip()}`", ""]
    lines += common.machine_lines(load_before)
    if beside:
        lines.append("- measured while a training ran beside (a `digitrec train` process on the same cores): "
                     "the rates, and most of all what a second core adds, are lower than on an idle machine")
    lines.append("")
    rows, targets = [], []
    for command, (what, _, _) in kinds.items():
        m = results[command]
        t, c, n = m["times"], m["cpu"], m["n"]
        jobs = f"{cores} jobs"
        for label in t:
            rows.append([f"`{command}`: {what}", "resume (run again, all done)" if label == "resume" else label, n,
                         f"{t[label]:.1f}", "" if label == "resume" else f"{n / t[label]:.1f}",
                         f"{c[label]:.1f}", f"{c[label] / t[label]:.2f}"])
        per_process, speedup, resume = t["per process"] / t[jobs], t["1 job"] / t[jobs], t["resume"] / t[jobs]
        targets += [
            [f"`{command}`: folder ({jobs}) vs one process per picture", f">= {TARGETS['per_process']:.0f}x",
             f"{per_process:.0f}x", verdict(per_process >= TARGETS["per_process"])],
            [f"`{command}`: {jobs} vs 1 job", f">= {TARGETS['jobs']}x", f"{speedup:.2f}x",
             verdict(speedup >= TARGETS["jobs"])],
            [f"`{command}`: resume vs first run ({jobs}); duplicates", "< 1/3; none",
             f"{resume:.2f}; {m['duplicates']}", verdict(resume < TARGETS["resume"] and not m["duplicates"])],
        ]
    lines += ["## Targets", ""]
    lines += common.table(["what", "target", "measured", ""], targets)
    lines += ["", "## Whole commands (median wall time of each)", ""]
    lines += common.table(["pictures", "run", "pictures", "seconds", "pictures / s", "CPU seconds",
                           "cores busy (CPU / wall)"], rows)
    lines += [""]
    for command, (what, _, _) in kinds.items():
        m = results[command]
        lines.append(f"- `{command}`, {what}: one process per picture measured on {m['sample']} pictures and "
                     f"scaled to {m['n']}; {m['right']} of {m['n']} read right (digits only); runs whose "
                     f"records differ from the 1-job run's: {m['differ']}; failed commands: {len(m['failed'])}")
        lines += [f"  - {f}" for f in m["failed"][:3]]
    lines += ["", "A whole command's time counts its start: the interpreter, the models, and with several jobs "
              "the worker processes, each loading the models once. The resume reads the finished results "
              "file, finds every picture in it, and reads none. CPU seconds are those of the command and "
              "its worker processes (user and system); CPU / wall is how many cores it kept busy on average: "
              f"{cores} jobs can only beat one where the machine leaves them more than one core. "
              "Ray's CPU seconds leave out its own processes that outlive the command's children "
              "(Ray's start, a few seconds, is in its wall time)."]
    common.publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
