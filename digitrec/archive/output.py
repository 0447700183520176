"""The results file of an archive run: JSON lines, CSV or Parquet (chosen by the name's
extension), which a run that stops at any moment leaves valid and a later run completes.

Each picture's record is keyed by its ``file`` as written; a run over the same results
file reads the keys already there and reads only the other pictures.

Why each format is written the way it is:

* ``.jsonl`` is its own journal. Each record is one line, appended with one ``write`` of
  the whole line and handed to the kernel before the next picture, so that a process
  killed at any point (Ctrl-C, SIGTERM, even SIGKILL) leaves every finished line in the
  file. The only damage a kill can do is a last line cut short; the next run trims it
  (it is a picture not yet done) before it appends.
* ``.csv`` and ``.parquet`` cannot be appended to safely: a Parquet file is valid only
  once its footer is written, and a CSV row cut short by a kill is a row a reader takes
  for data. So their records go first to a JSON-lines journal beside them
  (``NAME.journal.jsonl``, written as above), and the table is rewritten from all the
  records, into a temporary file renamed over it (atomic on one file system), at the start,
  every ``checkpoint_s`` seconds and at the end. A reader therefore always sees a whole
  table, at most ``checkpoint_s`` behind; a kill loses nothing, because the next run
  takes the journal's records too. Once the table is complete the journal is removed.
  Rewriting costs time in proportion to the records already written, which the time
  between checkpoints keeps to a small share of a long run; parts written beside and
  joined at the end would cost less, but leave no single valid file until the end.

Both tables have flat columns for a spreadsheet or a data frame (``file``, ``digit`` or
``text``, ``confidence``, ``low_confidence``, ``reason``, ``error``) and the whole record
as JSON in ``record``, from which a later run restores it exactly. For ``read``,
``confidence`` is that of the least sure number found and ``low_confidence`` is true when
any number is unsure.

A results file is written by one run at a time: a second run on it stops with an error.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path

from digitrec.archive.records import command_of

try:  # POSIX: a lock that two runs on one file cannot both hold, released when a run dies
    import fcntl
except ImportError:  # pragma: no cover - elsewhere, no lock
    fcntl = None

FORMATS = (".jsonl", ".csv", ".parquet")
CHECKPOINT_S = 30.0  # seconds between rewrites of a CSV or Parquet table during a run


class ArchiveError(RuntimeError):
    """A run that cannot go on; the message says why and what to do."""


def open_results(path: str | os.PathLike, command: str, checkpoint_s: float = CHECKPOINT_S) -> Results:
    """The results file at ``path`` for ``command``'s records, with the records already
    in it (a run's earlier part)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return JsonLines(path, command)
    if suffix in (".csv", ".parquet"):
        return Table(path, command, checkpoint_s)
    raise ArchiveError(f"{path}: the results file must end in {', '.join(FORMATS)}")


class Results:
    """Records by file: ``done`` (what is already written), ``add`` one more, ``close``
    to finish the file. ``files`` are the paths it writes, which no run should read."""

    path: Path
    command: str
    files: tuple[str, ...]
    done: dict[str, dict]

    def add(self, record: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, record: dict, where: str) -> None:
        if not isinstance(record, dict) or not isinstance(record.get("file"), str):
            raise ArchiveError(f"{where}: not a record of this program (no \"file\"); write to another file")
        if command_of(record) != self.command:
            raise ArchiveError(f"{self.path} holds records of `{command_of(record)}`, not `{self.command}`: "
                               "write to another file")


class JsonLines(Results):
    """One JSON object per line, appended and handed to the kernel one whole line at a time."""

    def __init__(self, path: Path, command: str):
        self.path, self.command, self.files = path, command, (str(path),)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise ArchiveError(f"{path} is being written by another run") from None
            self.done = self._load()
        except BaseException:
            os.close(self._fd)
            raise

    def _load(self) -> dict[str, dict]:
        raw = self.path.read_bytes()
        whole = raw.rfind(b"\n") + 1
        if whole < len(raw):  # a line cut short by a kill: that picture is read again
            os.ftruncate(self._fd, whole)
        done: dict[str, dict] = {}
        for n, line in enumerate(raw[:whole].splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise ArchiveError(f"{self.path}, line {n}: not JSON; write to another file") from None
            self._check(record, f"{self.path}, line {n}")
            done[record["file"]] = record
        return done

    def add(self, record: dict) -> None:
        self.done[record["file"]] = record
        data = (json.dumps(record) + "\n").encode()
        while data:  # one write for a file on disk; a short one only when the disk is full
            data = data[os.write(self._fd, data):]

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if not self.closed:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def flat(record: dict) -> dict:
    """A record's flat columns for a table, and the whole record as JSON in ``record``."""
    if "digit" in record:
        main = {"digit": record["digit"]}
        confidence, low = record.get("confidence"), record.get("low_confidence")
    else:
        numbers = record.get("numbers") or []
        main = {"text": record.get("text")}
        confidence = min((n["confidence"] for n in numbers), default=None)
        low = any(n["low_confidence"] for n in numbers) if numbers else None
    return {"file": record["file"], **main, "confidence": confidence, "low_confidence": low,
            "reason": record.get("reason"), "error": record.get("error"), "record": json.dumps(record)}


def columns(command: str) -> list[str]:
    return ["file", "digit" if command == "predict" else "text", "confidence", "low_confidence",
            "reason", "error", "record"]


class Table(Results):
    """A CSV or Parquet table rewritten atomically from a JSON-lines journal beside it."""

    def __init__(self, path: Path, command: str, checkpoint_s: float = CHECKPOINT_S):
        self.path, self.command, self.checkpoint_s = path, command, checkpoint_s
        self.parquet = path.suffix.lower() == ".parquet"
        journal = path.with_name(path.name + ".journal.jsonl")
        self.files = (str(path), str(journal))
        self.journal = JsonLines(journal, command)  # first: it locks the run's files
        try:
            self.done = self._load()
            leftover = [r for file, r in self.journal.done.items() if file not in self.done]
            self.done.update((r["file"], r) for r in leftover)
            if leftover or not path.exists():
                self.write()
        except BaseException:
            self.journal.close()
            raise
        self._written = time.monotonic()

    def _load(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        try:
            if self.parquet:
                import pyarrow.parquet as pq

                table = pq.read_table(self.path, columns=["record"])
                texts = table.column("record").to_pylist()
            else:
                with open(self.path, newline="", encoding="utf-8") as f:
                    texts = [row["record"] for row in csv.DictReader(f)]
            records = [json.loads(text) for text in texts]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"{self.path} is not a results table of this program ({exc}); "
                               "write to another file") from None
        for record in records:
            self._check(record, str(self.path))
        return {r["file"]: r for r in records}

    def add(self, record: dict) -> None:
        self.done[record["file"]] = record
        self.journal.add(record)
        if time.monotonic() - self._written >= self.checkpoint_s:
            self.write()

    def write(self) -> None:
        """Rewrite the table from every record: a temporary file renamed over it."""
        rows = [flat(r) for r in self.done.values()]
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if self.parquet:
                    self._write_parquet(rows, f)
                else:
                    with open(f.fileno(), "w", newline="", encoding="utf-8", closefd=False) as text:
                        writer = csv.DictWriter(text, columns(self.command))
                        writer.writeheader()
                        writer.writerows(rows)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._written = time.monotonic()

    def _write_parquet(self, rows: list[dict], f) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {"file": pa.string(), "digit": pa.int64(), "text": pa.string(), "confidence": pa.float64(),
                 "low_confidence": pa.bool_(), "reason": pa.string(), "error": pa.string(), "record": pa.string()}
        schema = pa.schema([(name, types[name]) for name in columns(self.command)])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), f)

    def close(self) -> None:
        if self.journal.closed:
            return
        try:
            self.write()
            Path(self.journal.path).unlink(missing_ok=True)  # every record is in the table now
        finally:
            self.journal.close()
