"""Your digits: the corrections people make to readings, kept in SQLite.

Each time a person answers "Right" or "It was: 7" beside a reading, one sample is saved:
the 28x28 the model saw, the original picture (PNG, at most MAX_PICTURE_BYTES), the true
digit, the digit read and its confidence, where it came from, the model that read it
and the time. Training can include them (:func:`training_set`), a fifth of each digit's
samples held out to show whether a new model reads the person's handwriting.

    $DIGITREC_MODELS_DIR/samples.sqlite3     (beside the user models; default models/)

One short connection per call, WAL journal and a busy timeout: several browser sessions
and a training process may read and write at once. A file that is not a readable
database is moved aside (``samples.sqlite3.corrupt-STAMP``) and a new one started; the
store's :attr:`SampleStore.warning` says so. Standard library and NumPy/Pillow only.
"""
from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec import store

FILE_NAME = "samples.sqlite3"
SCHEMA_VERSION = 1
MAX_SAMPLES = 50_000  # more than any person corrects; keeps the file and a training bounded
MAX_PICTURE_BYTES = 1_000_000  # a picture's PNG, after shrinking to PICTURE_SIDE
PICTURE_SIDE = 512  # originals are kept at most this many pixels on their long side
BUSY_TIMEOUT_S = 10.0  # how long a writer waits for another one before giving up
HOLD_OUT_EVERY = 5  # every fifth sample of each digit (by id) is held out of training
SOURCES = ("draw", "upload", "webcam", "import")

# Each entry brings the schema from version i to i + 1.
MIGRATIONS = (
    """
    CREATE TABLE samples (
        id          INTEGER PRIMARY KEY,
        created     TEXT NOT NULL,
        source      TEXT NOT NULL,
        true_digit  INTEGER NOT NULL CHECK (true_digit BETWEEN 0 AND 9),
        read_digit  INTEGER CHECK (read_digit BETWEEN 0 AND 9),
        confidence  REAL,
        model       TEXT,
        x28         BLOB NOT NULL,
        picture     BLOB
    );
    CREATE INDEX samples_by_digit ON samples (true_digit, id);
    """,
)


class SampleError(ValueError):
    """A sample that cannot be saved (a bound reached, a bad value); the message says why."""


class NewerSchema(sqlite3.DatabaseError):
    """A database written by a newer digitrec: set aside, never migrated down."""


@dataclass
class Sample:
    id: int
    created: str
    source: str
    true_digit: int
    read_digit: int | None
    confidence: float | None
    model: str | None
    x28: np.ndarray  # uint8 (28, 28), ink bright
    held_out: bool

    @property
    def misread(self) -> bool:
        return self.read_digit is not None and self.read_digit != self.true_digit


def default_path() -> Path:
    return store.models_dir() / FILE_NAME


def _x28_bytes(x28) -> bytes:
    a = np.asarray(x28)
    if a.shape != (28, 28):
        raise SampleError(f"a sample's input must be 28x28, not {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.round(np.asarray(a, np.float32) * 255), 0, 255).astype(np.uint8)
    return a.tobytes()


def picture_png(image: np.ndarray | None) -> bytes | None:
    """The original picture as a PNG, shrunk to PICTURE_SIDE on its long side."""
    if image is None:
        return None
    picture = Image.fromarray(np.asarray(image, np.uint8))
    picture.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > MAX_PICTURE_BYTES:
        raise SampleError(f"the picture takes {len(data) / 1e6:.1f} MB as a PNG; "
                          f"the limit is {MAX_PICTURE_BYTES / 1e6:.0f} MB")
    return data


INSERT = ("INSERT INTO samples (created, source, true_digit, read_digit, confidence, model, x28, picture) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def _digit_or_none(value, what: str) -> int | None:
    if value is None:
        return None
    if not (isinstance(value, (int, np.integer)) and 0 <= int(value) <= 9):
        raise SampleError(f"{what} must be 0 to 9, not {value!r}")
    return int(value)


def _row(x28, true_digit: int, *, read_digit: int | None = None, confidence: float | None = None,
         source: str = "draw", model: str | None = None, picture: np.ndarray | bytes | None = None) -> tuple:
    """One sample checked and made into a database row (:data:`INSERT`'s values), or
    SampleError saying which value is wrong."""
    if true_digit is None:
        raise SampleError("the true digit must be 0 to 9, not None")
    _digit_or_none(true_digit, "the true digit")
    _digit_or_none(read_digit, "the digit read")
    if source not in SOURCES:
        raise SampleError(f"the source must be one of {', '.join(SOURCES)}, not {source!r}")
    png = picture if isinstance(picture, (bytes, type(None))) else picture_png(picture)
    if png is not None and len(png) > MAX_PICTURE_BYTES:
        raise SampleError(f"the picture takes {len(png) / 1e6:.1f} MB; the limit is "
                          f"{MAX_PICTURE_BYTES / 1e6:.0f} MB")
    return (time.strftime("%Y-%m-%dT%H:%M:%S%z"), source, int(true_digit),
            None if read_digit is None else int(read_digit),
            None if confidence is None else float(confidence), model, _x28_bytes(x28), png)


class SampleStore:
    """The samples database at ``path`` (default: :func:`default_path`)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.warning: str | None = None
        self._open()

    # --- the file ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self):
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            yield con
        finally:
            con.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._migrate()
        except sqlite3.OperationalError:  # locked, unreadable, disk full: not damage, say so
            raise
        except sqlite3.DatabaseError as exc:  # not a database, a damaged one, or a newer one
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):  # kept with it: the journal may hold its last samples
                journal = Path(f"{self.path}{suffix}")
                if journal.exists():
                    journal.replace(Path(f"{aside}{suffix}"))
            self.warning = (f"The samples file could not be read ({exc}); it was moved to "
                            f"{aside.name} and a new one started.")
            self._migrate()

    def _migrate(self) -> None:
        with self._connect() as con:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the integrity check failed")
            con.execute("PRAGMA journal_mode = WAL")
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise NewerSchema(f"schema version {version} is newer than this digitrec's")
            for step in range(version, SCHEMA_VERSION):
                con.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[step].split(";"):
                        if statement.strip():
                            con.execute(statement)
                    con.execute(f"PRAGMA user_version = {step + 1}")
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise

    # --- writing -------------------------------------------------------------------------

    def add(self, x28, true_digit: int, *, read_digit: int | None = None, confidence: float | None = None,
            source: str = "draw", model: str | None = None, picture: np.ndarray | bytes | None = None) -> int:
        """Save one sample; its id. Raises SampleError past the bounds or for a bad value."""
        row = _row(x28, true_digit, read_digit=read_digit, confidence=confidence, source=source, model=model,
                   picture=picture)
        return self._insert([row])[0]

    def add_many(self, samples: list[dict]) -> list[int]:
        """Save several samples (each the keyword arguments of :meth:`add`) in one
        transaction: all of them or, past the bounds or for a bad value, none. Their ids."""
        return self._insert([_row(**s) for s in samples])

    def _insert(self, rows: list[tuple]) -> list[int]:
        """Insert checked rows (:func:`_row`) in one transaction: all of them, or none
        when the bound would be passed or anything fails. Their ids."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")  # the count and the inserts see the same table
            try:
                stored = con.execute("SELECT count(*) FROM samples").fetchone()[0]
                if stored + len(rows) > MAX_SAMPLES:
                    raise SampleError(f"{MAX_SAMPLES:,} samples are stored, the most kept: delete some before "
                                      "adding more" if len(rows) == 1 else
                                      f"adding {len(rows):,} samples would pass the {MAX_SAMPLES:,} kept "
                                      f"({stored:,} stored): delete some first")
                ids = [int(con.execute(INSERT, row).lastrowid) for row in rows]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return ids

    def delete(self, sample_id: int) -> bool:
        """Remove one sample; False when there was none with that id."""
        with self._connect() as con:
            return con.execute("DELETE FROM samples WHERE id = ?", (int(sample_id),)).rowcount > 0

    def delete_all(self) -> int:
        """Remove every sample and give the file's space back (VACUUM); how many went."""
        with self._connect() as con:
            n = con.execute("DELETE FROM samples").rowcount
            con.execute("VACUUM")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n

    # --- reading -------------------------------------------------------------------------

    def count(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT count(*) FROM samples").fetchone()[0])

    def counts(self) -> list[int]:
        """How many samples of each digit, 0 to 9."""
        out = [0] * 10
        with self._connect() as con:
            for digit, n in con.execute("SELECT true_digit, count(*) FROM samples GROUP BY true_digit"):
                out[digit] = n
        return out

    def split_counts(self) -> tuple[int, int]:
        """(to train on, held out): how the samples divide (see :meth:`training_set`)."""
        counts = self.counts()
        held = sum(n // HOLD_OUT_EVERY for n in counts)
        return sum(counts) - held, held

    def samples(self, limit: int | None = None) -> list[Sample]:
        """Every sample (or the newest ``limit``), newest first, without pictures."""
        query = ("SELECT id, created, source, true_digit, read_digit, confidence, model, x28, "
                 "(SELECT count(*) FROM samples b WHERE b.true_digit = a.true_digit AND b.id <= a.id) "
                 "FROM samples a ORDER BY id DESC")
        with self._connect() as con:
            rows = con.execute(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [Sample(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                       np.frombuffer(r[7], np.uint8).reshape(28, 28).copy(), r[8] % HOLD_OUT_EVERY == 0)
                for r in rows]

    def picture(self, sample_id: int) -> bytes | None:
        with self._connect() as con:
            row = con.execute("SELECT picture FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
        return None if row is None else row[0]

    def training_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x uint8 (N, 28, 28), y, held_out bool): every fifth sample of each digit, in
        the order they were saved, is held out; a sample keeps its side as others are
        added (deleting one may move later ones of that digit across)."""
        items = sorted(self.samples(), key=lambda s: s.id)
        x = np.stack([s.x28 for s in items]) if items else np.zeros((0, 28, 28), np.uint8)
        y = np.array([s.true_digit for s in items], np.int64)
        held = np.array([s.held_out for s in items], bool)
        return x, y, held

    # --- moving them -----------------------------------------------------------------------

    def export_zip(self, target) -> int:
        """A zip of the samples: ``x28/ID.png``, ``picture/ID.png`` where kept, and
        ``labels.csv`` (id, true digit, digit read, confidence, source, model, created)."""
        items = sorted(self.samples(), key=lambda s: s.id)
        labels = io.StringIO()
        writer = csv.writer(labels)
        writer.writerow(["id", "true_digit", "read_digit", "confidence", "source", "model", "created"])
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for s in items:
                buf = io.BytesIO()
                Image.fromarray(s.x28).save(buf, format="PNG")
                z.writestr(f"x28/{s.id}.png", buf.getvalue())
                picture = self.picture(s.id)
                if picture:
                    z.writestr(f"picture/{s.id}.png", picture)
                writer.writerow([s.id, s.true_digit, "" if s.read_digit is None else s.read_digit,
                                 "" if s.confidence is None else s.confidence, s.source, s.model or "", s.created])
            z.writestr("labels.csv", labels.getvalue())
        return len(items)

    def import_zip(self, source) -> int:
        """Add the samples of a zip made by :meth:`export_zip` (a path or a file object);
        how many were added. All or nothing: every row is read and checked first, then all
        are inserted in one transaction. Raises SampleError for a file that is not such a
        zip, or naming the first row that cannot be added."""
        name = Path(source).name if isinstance(source, (str, Path)) else "the file"
        try:
            with zipfile.ZipFile(source) as z:
                table = list(csv.DictReader(io.TextIOWrapper(z.open("labels.csv"), encoding="utf-8")))
                names = set(z.namelist())
                rows = [self._imported(z, names, row, i, name) for i, row in enumerate(table, 1)]
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            if isinstance(exc, SampleError):
                raise
            raise SampleError(f"{name} is not a digitrec samples zip ({exc})") from None
        return len(self._insert(rows))

    @staticmethod
    def _imported(z: zipfile.ZipFile, names: set, row: dict, i: int, name: str) -> tuple:
        """Row ``i`` (from 1) of a zip's labels.csv, read and checked (:func:`_row`), or
        SampleError naming the row and what is wrong with it."""
        try:
            x28 = np.asarray(Image.open(io.BytesIO(z.read(f"x28/{row['id']}.png"))).convert("L"))
            picture = f"picture/{row['id']}.png"
            return _row(x28, int(row["true_digit"]),
                        read_digit=int(row["read_digit"]) if row["read_digit"] else None,
                        confidence=float(row["confidence"]) if row["confidence"] else None,
                        source="import", model=row.get("model") or None,
                        picture=z.read(picture) if picture in names else None)
        except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
            why = str(exc) if isinstance(exc, SampleError) else f"{type(exc).__name__}: {exc}"
            raise SampleError(f"{name}: row {i} of labels.csv (id {row.get('id')!r}) cannot be added: {why}; "
                              "nothing was imported") from None
