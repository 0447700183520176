"""Reading an archive: folders and patterns in (pictures known by their content), one
results file out (.jsonl, .csv, .parquet) holding each picture exactly once, a run that
goes on where an earlier one stopped (even one killed with SIGKILL), worker processes
and Ray giving what one process gives."""
import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from benchmarks.common import children
from digitrec.archive import output
from digitrec.cli import main
from digitrec.training import synth
from tests.conftest import ROOT, encode, wait_for


def write_digits(folder, mnist, n: int, start: int = 0, prefix: str = "digit") -> list[str]:
    """``n`` MNIST test digits as 28x28 PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"{prefix}-{i:03d}.png"
        Image.fromarray(255 - mnist.x_test[i]).save(path)  # dark ink on white, as scanned
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def archive(tmp_path_factory, mnist):
    """A folder of 6 digits (one named without an extension, one as JPEG) with a subfolder
    of 3 more, and junk: a text file, an empty file, a text file named .png, and a PNG cut
    short (a picture that cannot be read)."""
    root = tmp_path_factory.mktemp("archive") / "scans"
    pictures = write_digits(root, mnist, 4)
    pictures += write_digits(root / "sub", mnist, 3, start=4)
    (root / "scan-without-extension").write_bytes(encode(255 - mnist.x_test[7]))
    Image.fromarray(255 - mnist.x_test[8]).convert("RGB").save(root / "photo.jpg", quality=95)
    pictures += [str(root / "scan-without-extension"), str(root / "photo.jpg")]
    whole = encode(255 - mnist.x_test[9])
    (root / "sub" / "cut.png").write_bytes(whole[: len(whole) // 2])
    (root / "notes.txt").write_text("scanned 2024-05-01\n")
    (root / "empty.png").write_bytes(b"")
    (root / "sub" / "fake.png").write_text("not a picture at all")
    return {"root": root, "pictures": sorted(pictures), "cut": str(root / "sub" / "cut.png"),
            "junk": sorted(str(root / p) for p in ("notes.txt", "empty.png", "sub/fake.png"))}


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def by_file(records: list[dict]) -> dict:
    files = [r["file"] for r in records]
    assert len(files) == len(set(files)), "a picture written twice"
    return {r["file"]: r for r in records}


def printed(capsys, *argv) -> tuple[int, dict]:
    """What ``predict/read --json`` prints for these paths, by file."""
    code = main([*argv])
    return code, by_file([json.loads(line) for line in capsys.readouterr().out.splitlines()])


def test_folder_gives_a_record_per_picture_and_reports_the_rest(archive, tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    code = main(["predict", "--json", "--jobs", "1", "--output", str(out), str(archive["root"])])
    err = capsys.readouterr().err
    assert code == 1  # the cut PNG is a picture that could not be read
    records = by_file(jsonl(out))
    assert sorted(records) == sorted(archive["pictures"] + [archive["cut"]])
    assert "truncated" in records[archive["cut"]]["error"] and records[archive["cut"]]["digit"] is None
    for junk in archive["junk"]:
        assert f"{junk}: skipped" in err and junk not in records
    assert "empty file" in err and "not a picture" in err
    # each record is what predict --json prints for that file
    _, stdout = printed(capsys, "predict", "--json", *records)
    assert records == stdout
    assert "10 of 10 pictures (10 read now, 0 already there, 1 could not be read)" in err


def test_printing_takes_folders_too(archive, capsys):
    code, records = printed(capsys, "predict", "--json", str(archive["root"] / "sub"))
    assert code == 1 and sorted(records) == sorted([archive["cut"], *(p for p in archive["pictures"] if "/sub/" in p)])
    code, records = printed(capsys, "read", "--json", str(archive["root"] / "notes.txt"))  # named: its record says why
    assert code == 1 and "text file" in records[str(archive["root"] / "notes.txt")]["error"]


def test_glob_patterns(archive, tmp_path, capsys):
    root = archive["root"]
    out = tmp_path / "r.jsonl"
    code = main(["predict", "--output", str(out), "--jobs", "1", f"{root}/**/digit-*.png", f"{root}/*.jpg"])
    assert code == 0
    expected = [p for p in archive["pictures"] if os.path.basename(p).startswith("digit-")] + [str(root / "photo.jpg")]
    assert sorted(by_file(jsonl(out))) == sorted(expected)
    code = main(["predict", "--output", str(out), "--jobs", "1", f"{root}/sub/*.png", f"{root}/*.gif"])
    err = capsys.readouterr().err
    assert code == 1 and f"{root}/*.gif: no file matches" in err
    assert f"{root}/sub/fake.png: skipped" in err  # found by a pattern, not a picture
    assert archive["cut"] in by_file(jsonl(out))


def table(path) -> list[dict]:
    if str(path).endswith(".csv"):
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("command", ["predict", "read"])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_outputs_are_complete_and_readable(archive, tmp_path, capsys, suffix, command):
    out = tmp_path / f"results{suffix}"
    assert main([command, "--output", str(out), "--jobs", "1", str(archive["root"])]) == 1
    _, expected = printed(capsys, command, "--json", *archive["pictures"], archive["cut"])
    if suffix == ".jsonl":
        assert by_file(jsonl(out)) == expected
        return
    rows = table(out)
    assert not (tmp_path / f"results{suffix}.journal.jsonl").exists()  # folded into the table
    assert list(rows[0]) == output.columns(command)
    assert by_file([json.loads(row["record"]) for row in rows]) == expected  # nothing lost
    for row in rows:
        record = expected[row["file"]]
        if suffix == ".csv":
            row = {k: (v or None) for k, v in row.items()}
        if command == "predict":
            assert str(row["digit"]) == str(record["digit"])
        else:
            assert row["text"] == record["text"]
        assert (row["error"] is not None) == ("error" in record)
    if suffix == ".parquet":
        assert pq.read_schema(out).field("confidence").type == "double"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resume_reads_only_what_is_missing(archive, tmp_path, capsys, suffix):
    out = tmp_path / f"results{suffix}"
    root = archive["root"]
    assert main(["predict", "--output", str(out), "--jobs", "1", str(root / "sub")]) == 1
    first = capsys.readouterr().err
    assert "4 of 4 pictures (4 read now, 0 already there" in first
    assert main(["predict", "--output", str(out), "--jobs", "1", str(root)]) == 1
    assert "10 of 10 pictures (6 read now, 4 already there, 1 could not be read)" in capsys.readouterr().err
    records = jsonl(out) if suffix == ".jsonl" else [json.loads(r["record"]) for r in table(out)]
    assert sorted(by_file(records)) == sorted(archive["pictures"] + [archive["cut"]])
    assert main(["predict", "--output", str(out), "--jobs", "1", str(root)]) == 1  # nothing left to read
    assert "(0 read now, 10 already there" in capsys.readouterr().err


def test_a_cut_last_line_is_read_again(archive, tmp_path):
    out = tmp_path / "results.jsonl"
    assert main(["predict", "--output", str(out), "--jobs", "1", *archive["pictures"][:3]]) == 0
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:2]) + lines[2][:25])  # as a kill in the middle of a write leaves it
    assert main(["predict", "--output", str(out), "--jobs", "1", *archive["pictures"]]) == 0
    records = by_file(jsonl(out))
    assert sorted(records) == archive["pictures"]


def test_results_of_another_command_or_format_are_refused(archive, tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    assert main(["predict", "--output", str(out), "--jobs", "1", archive["pictures"][0]]) == 0
    assert main(["read", "--output", str(out), archive["pictures"][1]]) == 2
    assert "records of `predict`" in capsys.readouterr().err
    assert main(["read", "--output", str(tmp_path / "results.xlsx"), archive["pictures"][1]]) == 2
    assert ".jsonl, .csv, .parquet" in capsys.readouterr().err
    assert main(["read", "--jobs", "2", archive["pictures"][1]]) == 2  # printing reads in this process
    assert "go with --output" in capsys.readouterr().err
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert main(["read", "--output", str(tmp_path / "notes.csv"), archive["pictures"][1]]) == 2
    assert "not a results table" in capsys.readouterr().err
    assert (tmp_path / "notes.csv").read_text() == "a,b\n1,2\n"  # left as it was


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_broken_model_is_a_clear_error(archive, tmp_path, capsys, jobs):
    broken = tmp_path / "broken.keras"
    broken.with_suffix(".tflite").write_bytes(b"not a network")
    code = main(["predict", "--output", str(tmp_path / "r.jsonl"), "--jobs", jobs, "--model", str(broken),
                 *archive["pictures"]])
    err = capsys.readouterr().err
    assert code == 2 and "error: cannot load broken.tflite" in err and "Traceback" not in err


def test_two_jobs_give_what_one_gives(archive, tmp_path, mnist):
    folder = tmp_path / "many"
    write_digits(folder, mnist, 24, start=20)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert main(["predict", "--output", str(one), "--jobs", "1", str(folder)]) == 0
    assert main(["predict", "--output", str(two), "--jobs", "2", str(folder)]) == 0
    assert by_file(jsonl(two)) == by_file(jsonl(one)) and len(jsonl(one)) == 24


# --- stopped runs: a child process, stopped while it waits on a named pipe given as a picture --

def cli(log, *argv) -> subprocess.Popen:
    """``python -m digitrec ARGV`` in a child process, its output to the file ``log`` (a
    pipe would stay open in any worker left behind, and reading it would never end)."""
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "digitrec", *argv], cwd=ROOT, stdout=f, stderr=f)


def finish(proc, log, timeout: float = 120) -> str:
    proc.wait(timeout)
    return open(log).read()


def lines_in(path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def gone(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"  # a zombie waiting for its new parent to reap it


@pytest.fixture
def stalled(tmp_path, mnist):
    """30 digits with a named pipe in the middle of them: a run with one job reads the 15
    before it, then waits on the pipe for ever, until it is stopped. Afterwards the pipe is
    replaced by a picture of the same name."""
    folder = tmp_path / "stalled"
    files = write_digits(folder, mnist, 30, start=50)
    pipe = folder / "waiting.png"
    os.mkfifo(pipe)
    yield {"files": files[:15] + [str(pipe)] + files[15:], "pipe": pipe}


def unblock(pipe, mnist) -> None:
    pipe.unlink()
    Image.fromarray(255 - mnist.x_test[80]).save(pipe, format="PNG")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_run_killed_with_sigkill_goes_on(stalled, tmp_path, mnist, suffix):
    out = tmp_path / f"results{suffix}"
    journal = out if suffix == ".jsonl" else tmp_path / f"results{suffix}.journal.jsonl"
    log = tmp_path / "log.txt"
    proc = cli(log, "predict", "--output", str(out), "--jobs", "1", *stalled["files"])
    try:
        wait_for(lambda: lines_in(journal) >= 15)
    finally:
        proc.kill()
        finish(proc, log)
    assert proc.returncode == -signal.SIGKILL
    if suffix == ".csv":
        assert table(out) == []  # a whole (empty) table, not one cut short
    unblock(stalled["pipe"], mnist)
    proc = cli(log, "predict", "--output", str(out), "--jobs", "1", *stalled["files"])
    err = finish(proc, log)
    assert proc.returncode == 0, err
    assert "31 of 31 pictures (16 read now, 15 already there)" in err
    records = jsonl(out) if suffix == ".jsonl" else [json.loads(r["record"]) for r in table(out)]
    assert sorted(by_file(records)) == sorted(stalled["files"])
    assert not journal.exists() or suffix == ".jsonl"


def test_sigterm_finishes_the_table_before_stopping(stalled, tmp_path):
    out = tmp_path / "results.parquet"
    log = tmp_path / "log.txt"
    proc = cli(log, "predict", "--output", str(out), "--jobs", "1", *stalled["files"])
    try:
        wait_for(lambda: lines_in(tmp_path / "results.parquet.journal.jsonl") >= 15)
    finally:
        proc.terminate()
        err = finish(proc, log)
    assert proc.returncode == 130, err
    assert "stopped before the end" in err and "Traceback" not in err
    assert sorted(r["file"] for r in table(out)) == sorted(stalled["files"][:15])
    assert not (tmp_path / "results.parquet.journal.jsonl").exists()


def test_no_worker_outlives_a_killed_run(stalled, tmp_path):
    out = tmp_path / "results.jsonl"
    log = tmp_path / "log.txt"
    proc = cli(log, "predict", "--output", str(out), "--jobs", "2", *stalled["files"])
    try:
        wait_for(lambda: lines_in(out) >= 20)  # one worker waits on the pipe, the other reads on
        workers = children(proc.pid)
    finally:
        proc.kill()
        finish(proc, log)
    assert len(workers) >= 2
    try:
        wait_for(lambda: all(gone(pid) for pid in workers), timeout=30)
    finally:
        for pid in workers:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


# --- Ray ----------------------------------------------------------------------------------------

def test_ray_missing_is_a_clear_error(archive, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    out = tmp_path / "results.jsonl"
    assert main(["read", "--engine", "ray", "--output", str(out), str(archive["root"])]) == 2
    err = capsys.readouterr().err
    assert 'needs Ray: pip install "ray[data]"' in err and "Traceback" not in err
    assert not out.exists() or out.read_text() == ""


def test_ray_reads_what_the_local_run_reads(tmp_path, mnist, capsys):
    pytest.importorskip("ray.data", reason="Ray is not installed (pip install \"ray[data]\", requirements-dev.txt)")
    folder = tmp_path / "numbers"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for k in range(4):
        image, _, _ = synth.render_number([mnist.x_test[i] for i in range(10 * k, 10 * k + 2 + k)], rng)
        Image.fromarray(image).save(folder / f"number-{k}.png")
    (folder / "notes.txt").write_text("not a picture")
    local, ray = tmp_path / "local.jsonl", tmp_path / "ray.csv"
    assert main(["read", "--output", str(local), "--jobs", "1", str(folder)]) == 0
    assert main(["read", "--engine", "ray", "--jobs", "1", "--output", str(ray), str(folder)]) == 0
    err = capsys.readouterr().err
    assert f"{folder}/notes.txt: skipped" in err
    on_ray = by_file([json.loads(r["record"]) for r in table(ray)])
    by_local = by_file(jsonl(local))
    assert sorted(on_ray) == sorted(by_local) and len(on_ray) == 4
    assert {f: r["text"] for f, r in on_ray.items()} == {f: r["text"] for f, r in by_local.items()}
    assert on_ray == by_local
    assert main(["read", "--engine", "ray", "--jobs", "1", "--output", str(ray), str(folder)]) == 0  # resumed
    assert "(0 read now, 4 already there)" in capsys.readouterr().err


def test_the_code_a_cluster_gets():
    """A cluster's nodes get this checkout's package and exported networks, not its
    environment, tests or Keras files."""
    from digitrec.archive.cluster import code

    env = code()
    assert os.path.isdir(os.path.join(env["working_dir"], "digitrec", "archive"))
    assert os.path.isfile(os.path.join(env["working_dir"], "models", "digitrec.tflite"))
    assert {".venv", "tests", "*.keras"} <= set(env["excludes"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_is_whole_at_each_checkpoint(tmp_path, suffix):
    """Between checkpoints the table is rewritten whole; a run that never closes it (killed)
    leaves a table a reader can read, and the next run takes the journal's records too."""
    out = tmp_path / f"r{suffix}"
    records = [{"file": f"{i}.png", "digit": i, "confidence": 0.9, "probabilities": [0.1] * 10,
                "low_confidence": False} for i in range(3)]
    first = output.open_results(out, "predict", checkpoint_s=0)
    first.add(records[0])
    first.add(records[1])
    assert [r["file"] for r in table(out)] == ["0.png", "1.png"]
    first.checkpoint_s = 3600
    first.add(records[2])  # in the journal only, when the run dies
    assert len(table(out)) == 2
    first.journal.close()  # as a killed process's file is closed, with no last rewrite
    with output.open_results(out, "predict") as again:
        assert list(again.done) == ["0.png", "1.png", "2.png"]
    assert [json.loads(r["record"]) for r in table(out)] == records
    assert not (tmp_path / f"r{suffix}.journal.jsonl").exists()
