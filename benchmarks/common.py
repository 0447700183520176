"""Helpers shared by the benchmarks: where things are, the machine they ran on, a process's
memory, Markdown tables and the results files."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"


def data_dir(arg: str | None) -> str:
    chosen = arg or os.environ.get("DIGITREC_DATA") or (str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None)
    if not chosen:
        raise SystemExit("MNIST not found: pass --data DIR or set DIGITREC_DATA")
    return chosen


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_lines(load_before: str) -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {cpu_model()}, {cores} cores available, {platform.platform()}",
        f"- python {sys.version.split()[0]}; commit {git_commit()}",
        f"- load average (1/5/15 min) before: {load_before}; after: {load()}",
    ]


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A live process's resident memory (``field`` of /proc/PID/status: VmRSS now, VmHWM
    its peak), in MB; None once it has gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (the app server's trainings)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def publish(lines: list[str], out: str) -> None:
    """Print a benchmark's Markdown and write it to ``out`` (benchmarks/results/...)."""
    text = "\n".join(lines) + "\n"
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
