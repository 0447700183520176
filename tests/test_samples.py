"""digitrec.server.samples: the corrections database (SQLite)."""
from __future__ import annotations

import csv
import io
import multiprocessing
import sqlite3
import threading
import zipfile

import numpy as np
import pytest

from digitrec.server import samples as S


def _digit(k: int) -> np.ndarray:
    x = np.zeros((28, 28), np.uint8)
    x[4 + k: 24, 10 + k % 5] = 255
    return x


@pytest.fixture()
def db(tmp_path):
    return S.SampleStore(tmp_path / "samples.sqlite3")


def test_a_sample_keeps_what_the_model_saw_and_the_answer(db):
    picture = np.full((300, 200, 3), 250, np.uint8)
    sid = db.add(_digit(3), 7, read_digit=1, confidence=0.55, source="upload", model="shipped", picture=picture)
    (s,) = db.samples()
    assert (s.id, s.true_digit, s.read_digit, s.source, s.model) == (sid, 7, 1, "upload", "shipped")
    assert s.confidence == pytest.approx(0.55) and s.misread
    assert np.array_equal(s.x28, _digit(3))
    png = db.picture(sid)
    assert png.startswith(b"\x89PNG") and len(png) <= S.MAX_PICTURE_BYTES
    assert db.counts() == [0] * 7 + [1] + [0] * 2


def test_several_samples_are_saved_all_or_none(db):
    ids = db.add_many([{"x28": _digit(k), "true_digit": k, "source": "upload"} for k in range(3)])
    assert len(set(ids)) == 3 and sorted(s.true_digit for s in db.samples()) == [0, 1, 2]
    with pytest.raises(S.SampleError):  # the third is no digit: the first two are not kept either
        db.add_many([{"x28": _digit(1), "true_digit": 4}, {"x28": _digit(2), "true_digit": 5},
                     {"x28": _digit(3), "true_digit": 12}])
    assert len(db.samples()) == 3


def test_float_inputs_are_stored_as_uint8(db):
    db.add(_digit(1).astype(np.float32) / 255, 4)
    assert np.array_equal(db.samples()[0].x28, _digit(1))


@pytest.mark.parametrize("bad", [{"true_digit": 10}, {"true_digit": -1}, {"source": "fax"}])
def test_bad_values_are_refused_with_a_message(db, bad):
    kwargs = {"true_digit": 3, "source": "draw"} | bad
    with pytest.raises(S.SampleError, match="digit|source"):
        db.add(_digit(0), kwargs.pop("true_digit"), **kwargs)
    assert db.count() == 0


def test_wrong_input_shape_is_refused(db):
    with pytest.raises(S.SampleError, match="28x28"):
        db.add(np.zeros((20, 20), np.uint8), 3)


def test_the_bounds_are_kept(db, monkeypatch):
    monkeypatch.setattr(S, "MAX_SAMPLES", 3)
    for k in range(3):
        db.add(_digit(k), k)
    with pytest.raises(S.SampleError, match="delete some"):
        db.add(_digit(0), 0)
    assert db.count() == 3
    noise = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), np.uint8)
    monkeypatch.setattr(S, "PICTURE_SIDE", 4000)
    with pytest.raises(S.SampleError, match="MB"):
        S.picture_png(noise)


def test_a_fifth_of_each_digit_is_held_out_and_stays_held_out(db):
    for i in range(20):
        db.add(_digit(i % 7), 7)
    for i in range(10):
        db.add(_digit(i % 3), 1)
    x, y, held = db.training_set()
    assert held[y == 7].sum() == 4 and held[y == 1].sum() == 2
    before = {s.id: s.held_out for s in db.samples()}
    for i in range(5):
        db.add(_digit(i), 7)
    after = {s.id: s.held_out for s in db.samples()}
    assert all(after[i] == h for i, h in before.items())
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28)


def test_delete_one_and_delete_all_really_remove_the_data(db):
    ids = [db.add(_digit(k), k, picture=np.full((50, 50), 200, np.uint8)) for k in range(10)]
    assert db.delete(ids[3]) and not db.delete(ids[3])
    assert db.count() == 9 and db.picture(ids[3]) is None
    for k in range(300):
        db.add(np.random.default_rng(k).integers(0, 256, (28, 28), np.uint8), k % 10,
               picture=np.random.default_rng(k).integers(0, 256, (64, 64), np.uint8))
    big = db.path.stat().st_size
    assert db.delete_all() == 309
    assert db.count() == 0
    assert db.path.stat().st_size < big / 4
    marker = np.random.default_rng(12).integers(0, 256, (28, 28), np.uint8).tobytes()
    assert marker not in db.path.read_bytes()


def test_export_then_import_round_trip(db, tmp_path):
    for k in range(12):
        db.add(_digit(k % 6), k % 10, read_digit=(k + 1) % 10, confidence=0.5 + k / 100,
               picture=np.full((40, 30), 100 + k, np.uint8) if k % 2 else None)
    target = tmp_path / "mine.zip"
    assert db.export_zip(target) == 12
    with zipfile.ZipFile(target) as z:
        assert "labels.csv" in z.namelist() and len([n for n in z.namelist() if n.startswith("x28/")]) == 12
    other = S.SampleStore(tmp_path / "other.sqlite3")
    assert other.import_zip(target) == 12
    mine = sorted((s.true_digit, s.read_digit, s.x28.tobytes()) for s in db.samples())
    theirs = sorted((s.true_digit, s.read_digit, s.x28.tobytes()) for s in other.samples())
    assert mine == theirs
    assert sum(other.picture(s.id) is not None for s in other.samples()) == 6


def _rewritten(source, target, change) -> None:
    """A copy of an exported zip whose labels.csv rows went through ``change(rows)``."""
    with zipfile.ZipFile(source) as z, zipfile.ZipFile(target, "w") as out:
        for item in z.namelist():
            if item != "labels.csv":
                out.writestr(item, z.read(item))
        rows = list(csv.reader(io.StringIO(z.read("labels.csv").decode())))
        text = io.StringIO()
        csv.writer(text).writerows(rows[:1] + change(rows[1:]))
        out.writestr("labels.csv", text.getvalue())


@pytest.mark.parametrize("bad, message", [
    (lambda row: row[:1] + ["12"] + row[2:], "the true digit must be 0 to 9, not 12"),
    (lambda row: row[:2] + ["x"] + row[3:], "ValueError"),
    (lambda row: ["999"] + row[1:], "KeyError"),
])
def test_an_import_with_a_bad_third_row_adds_nothing_and_names_the_row(db, tmp_path, bad, message):
    source = S.SampleStore(tmp_path / "source.sqlite3")
    for k in range(5):
        source.add(_digit(k), k)
    source.export_zip(tmp_path / "good.zip")
    _rewritten(tmp_path / "good.zip", tmp_path / "bad.zip", lambda rows: rows[:2] + [bad(rows[2])] + rows[3:])
    db.add(_digit(9), 9)
    with pytest.raises(S.SampleError, match=r"bad\.zip: row 3 of labels\.csv .*cannot be added") as caught:
        db.import_zip(tmp_path / "bad.zip")
    assert message in str(caught.value) and "nothing was imported" in str(caught.value)
    assert db.count() == 1  # the sample it had, and none of the zip's
    assert db.import_zip(tmp_path / "good.zip") == 5 and db.count() == 6


def test_an_import_that_fails_while_inserting_adds_nothing(db, tmp_path, monkeypatch):
    """The inserts are one transaction: a failure at the fourth row rolls back the first three."""
    source = S.SampleStore(tmp_path / "source.sqlite3")
    for k in range(5):
        source.add(_digit(k), k)
    source.export_zip(tmp_path / "good.zip")
    rows = []
    real_row = S._row

    def fourth_fails(*args, **kw):
        row = real_row(*args, **kw)
        rows.append(row)
        return row[:6] + (b"too short",) + row[7:] if len(rows) == 4 else row

    monkeypatch.setattr(S, "_row", fourth_fails)
    with db._connect() as con:  # a trigger refuses a 28x28 of the wrong size, as a disk error would
        con.execute("CREATE TRIGGER whole BEFORE INSERT ON samples WHEN length(NEW.x28) != 784 "
                    "BEGIN SELECT RAISE(ABORT, 'x28 is not 28x28'); END")
    with pytest.raises(sqlite3.IntegrityError, match="28x28"):
        db.import_zip(tmp_path / "good.zip")
    assert db.count() == 0


def test_importing_something_else_says_so(db, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(S.SampleError, match="not a digitrec samples zip"):
        db.import_zip(junk)


def test_a_corrupt_file_is_moved_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "samples.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    db = S.SampleStore(path)
    assert db.warning and "moved" in db.warning
    assert db.count() == 0
    db.add(_digit(2), 2)
    assert db.count() == 1
    assert list(tmp_path.glob("samples.sqlite3.corrupt-*"))


def test_a_file_from_a_newer_version_is_set_aside_unchanged(tmp_path):
    path = tmp_path / "samples.sqlite3"
    S.SampleStore(path).add(_digit(1), 1)
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {S.SCHEMA_VERSION + 1}")
    con.close()
    db = S.SampleStore(path)
    assert db.warning and db.count() == 0
    (aside,) = tmp_path.glob("samples.sqlite3.corrupt-*")
    con = sqlite3.connect(aside)
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 1
    con.close()


def test_threads_writing_at_once_lose_nothing(db):
    def write(t):
        for i in range(25):
            db.add(_digit(i % 7), (t + i) % 10)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.count() == 150


def _process_writer(path, n):
    store = S.SampleStore(path)
    for i in range(n):
        store.add(_digit(i % 7), i % 10, source="webcam")


def test_processes_writing_while_another_reads_lose_nothing(db):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(db.path), 40)) for _ in range(3)]
    for p in procs:
        p.start()
    seen = 0
    while any(p.is_alive() for p in procs):
        x, y, held = db.training_set()  # a training reading while the app writes
        assert len(x) == len(y) == len(held) >= seen
        seen = len(x)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert db.count() == 120
