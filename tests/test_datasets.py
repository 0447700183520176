"""digitrec.training.datasets: IDX pairs of any size, checksums, the known sets and where they
are, the cache of their preprocessed digits, scoring, small crops. Nothing is downloaded."""
import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from digitrec.training import datasets as data
from digitrec.training.datasets import DataError, load, load_mnist, parse_idx
from digitrec.training.recipes import DATASET_NAMES
from tests.conftest import data_dir


def idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_pair(folder: Path, x: np.ndarray, y: np.ndarray, stem: str = "set", sums: bool = True) -> None:
    """An images/labels IDX pair, gzipped, with a SHA256SUMS of the decompressed bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, arr in ((f"{stem}-images-idx3-ubyte", x), (f"{stem}-labels-idx1-ubyte", y)):
        raw = idx_bytes(arr)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        lines.append(f"{hashlib.sha256(raw).hexdigest()}  {name}")
    if sums:
        (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def shared():
    """The folder that holds mnist/, ardis/ and usps/ (skips where it is not there)."""
    directory = data_dir()
    if directory is None or not all((directory.parent / n).is_dir() for n in DATASET_NAMES):
        pytest.skip("the shared data sets are not available: set DIGITREC_DATA to MNIST's folder")
    return directory.parent


# --- IDX ---------------------------------------------------------------------------------

def test_parse_idx_round_trip():
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(arr)), arr)


@pytest.mark.parametrize("raw, message", [
    (b"", "too short"),
    (b"\x01\x00\x08\x01" + b"\x00" * 8, "not an IDX file"),
    (b"\x00\x00\x07\x01" + b"\x00" * 8, "not an IDX file"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
])
def test_parse_idx_rejects_bad_headers(raw, message):
    with pytest.raises(DataError, match=message):
        parse_idx(raw, "bad")


def test_parse_idx_rejects_size_mismatch():
    raw = idx_bytes(np.zeros((2, 3), np.uint8))
    with pytest.raises(DataError, match=r"declares shape \(2, 3\)"):
        parse_idx(raw[:-1], "short")
    with pytest.raises(DataError, match="holds 7 bytes"):
        parse_idx(raw + b"\x00", "long")


@pytest.mark.parametrize("shape", [(5, 16, 16), (3, 16, 15), (4, 32, 32), (2, 28, 28)])
def test_reads_a_pair_of_any_size_checked_against_the_folders_sums(tmp_path, shape):
    x = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    y = np.arange(shape[0], dtype=np.uint8) % 10
    write_pair(tmp_path, x, y)
    got_x, got_y, sums = data.read_pair(tmp_path, "set-images-idx3-ubyte", "set-labels-idx1-ubyte")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert sums == data.read_sums(tmp_path)


def test_a_pair_that_does_not_match_its_sums_is_a_clear_error(tmp_path):
    x, y = np.zeros((3, 16, 16), np.uint8), np.array([1, 2, 3], np.uint8)
    write_pair(tmp_path, x, y)
    write_pair(tmp_path / "other", x + 1, y, sums=False)  # same names, other bytes
    shutil.copy(tmp_path / "other" / "set-images-idx3-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match=r"set-images-idx3-ubyte.gz: SHA-256 .* the file is corrupt"):
        data.read_pair(tmp_path, "set-images-idx3-ubyte", "set-labels-idx1-ubyte")


def test_labels_must_be_digits_one_per_image(tmp_path):
    write_pair(tmp_path / "a", np.zeros((3, 16, 16), np.uint8), np.array([1, 2], np.uint8))
    with pytest.raises(DataError, match=r"\(2,\) labels for 3 images"):
        data.read_pair(tmp_path / "a", "set-images-idx3-ubyte", "set-labels-idx1-ubyte")
    write_pair(tmp_path / "b", np.zeros((2, 16, 16), np.uint8), np.array([1, 12], np.uint8))
    with pytest.raises(DataError, match="digits 0-9"):
        data.read_pair(tmp_path / "b", "set-images-idx3-ubyte", "set-labels-idx1-ubyte")


# --- the known sets ----------------------------------------------------------------------

def test_the_known_sets_are_the_ones_the_cli_offers():
    assert tuple(data.DATASETS) == DATASET_NAMES
    assert data.parse_names("usps, MNIST,usps") == ("usps", "mnist")
    with pytest.raises(DataError, match="unknown data set 'emnist'"):
        data.parse_names("mnist,emnist")
    with pytest.raises(DataError, match="no data set named"):
        data.parse_names(" , ")


def test_loads_real_mnist(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_train.shape == (60000,) and set(np.unique(mnist.y_test)) == set(range(10))
    assert mnist.checksums == data.CHECKSUMS


def test_loads_usps_at_16x16_and_ardis_beside_mnist(shared):
    usps = load("usps", shared / "mnist")  # MNIST's folder: the others are its siblings
    assert usps.x_train.shape == (7291, 16, 16) and usps.x_test.shape == (2007, 16, 16)
    assert usps.checksums == data.DATASETS["usps"].checksums
    ardis = load("ardis", shared)  # the folder that holds them all
    assert ardis.x_train.shape == (6600, 28, 28) and ardis.y_test.shape == (1000,)


def test_where_each_set_is_looked_for(tmp_path, monkeypatch):
    root = tmp_path / "data"
    for name in DATASET_NAMES:
        (root / name).mkdir(parents=True)
    monkeypatch.setenv(data.ENV_VAR, str(root / "mnist"))
    assert data.find_data_dir() == root / "mnist"
    assert data.find_data_dir(name="usps") == root / "usps"
    assert data.find_data_dir(root, "ardis") == root / "ardis"
    assert data.find_data_dir(root / "ardis", "ardis") == root / "ardis"  # the set's own folder
    with pytest.raises(DataError, match="does not exist"):
        data.find_data_dir(tmp_path / "nope")


def test_without_a_data_folder_nothing_is_downloaded(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(DataError, match="nothing is downloaded"):
        load_mnist()
    assert "urllib" not in Path(data.__file__).read_text()


def test_a_missing_set_names_what_is_missing(tmp_path, shared):
    (tmp_path / "mnist").symlink_to(shared / "mnist")
    with pytest.raises(DataError, match=r"ardis is missing: no folder .*ardis\. ardis is the files ardis-train-images"):
        load("ardis", tmp_path / "mnist")
    (tmp_path / "usps").mkdir()
    with pytest.raises(DataError, match=r"usps-train-images-idx3-ubyte\(\.gz\) is missing\. usps is the files"):
        load("usps", tmp_path)


def test_a_missing_data_folder_says_what_to_get_and_where_to_put_it(tmp_path, monkeypatch):
    """A user without ../shared/data/mnist: the message names the folder and where it was
    named, MNIST's four files, where they come from, and that --data may point anywhere."""
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "shared" / "data" / "mnist"))
    with pytest.raises(DataError) as caught:
        load_mnist()
    message = str(caught.value)
    assert f"data folder {tmp_path / 'shared' / 'data' / 'mnist'} (from ${data.ENV_VAR}) does not exist" in message
    assert all(f in message for f in data.CHECKSUMS) and "yann.lecun.com/exdb/mnist" in message
    assert "any folder" in message and "--data DIR" in message and "nothing is downloaded" in message
    with pytest.raises(DataError, match=r"\(from --data\) does not exist\. mnist is the files"):
        load_mnist(tmp_path / "elsewhere")


@pytest.fixture
def usps_copy(tmp_path, shared):
    """USPS's files, copied so that a test can damage them."""
    shutil.copytree(shared / "usps", tmp_path / "usps")
    return tmp_path / "usps"


def test_a_corrupt_file_of_a_known_set_fails_its_checksum(usps_copy):
    path = usps_copy / "usps-test-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 0x01  # one label changed: parses fine, but is not USPS
    path.write_bytes(gzip.compress(bytes(raw)))
    (usps_copy / "SHA256SUMS").unlink()  # the sums in the code are what count
    with pytest.raises(DataError, match=r"usps-test-labels-idx1-ubyte.gz: SHA-256 .* in usps's table; .* corrupt"):
        load("usps", usps_copy)


def test_reads_uncompressed_files(usps_copy):
    name = "usps-test-labels-idx1-ubyte"
    gz = usps_copy / f"{name}.gz"
    (usps_copy / name).write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    assert load("usps", usps_copy).y_test.shape == (2007,)


def test_damaged_gzip_is_reported(usps_copy):
    path = usps_copy / "usps-train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="usps-train-labels-idx1-ubyte.gz: cannot be read"):
        load("usps", usps_copy)


# --- the digits as the network reads them ------------------------------------------------

def _slice(dataset, n=60):
    """The first n images of each split, under the same name and sums."""
    return data.Dataset(dataset.name, dataset.x_train[:n], dataset.y_train[:n], dataset.x_test[:n],
                        dataset.y_test[:n], dataset.directory, dataset.checksums)


def test_mnist_is_used_as_stored(mnist):
    part = data.prepared(mnist, "test")
    assert part.x is mnist.x_test and part.found.all() and part.cached is None


def test_other_sets_go_through_normalize_once_then_come_from_the_cache(shared, tmp_path, monkeypatch):
    from digitrec.reading.normalize import normalize

    monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path))
    usps = _slice(load("usps", shared))
    first = data.prepared(usps, "test", workers=1)
    assert first.x.shape == (60, 28, 28) and first.x.dtype == np.uint8 and first.found.all()
    assert first.cached.exists() and first.cached.is_relative_to(tmp_path)
    expected = np.clip(normalize(usps.x_test[7]).x28 * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(first.x[7], expected)  # the very preprocessing of a picture

    def must_not_run(*args, **kwargs):
        raise AssertionError("normalized again")

    monkeypatch.setattr(data, "normalize_all", must_not_run)
    again = data.prepared(usps, "test")
    np.testing.assert_array_equal(again.x, first.x)
    monkeypatch.setattr(data, "preprocessing_version", lambda: "changed")
    with pytest.raises(AssertionError, match="normalized again"):  # another preprocessing: made anew
        data.prepared(usps, "test")


def test_a_damaged_cache_file_is_made_again(shared, tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path))
    usps = _slice(load("usps", shared), 10)
    path = data.prepared(usps, "train", workers=1).cached
    path.write_bytes(b"not an npz")
    assert data.prepared(usps, "train", workers=1).x.shape == (10, 28, 28)


def test_scores_count_duplicates_once_and_no_digit_as_an_error(tmp_path, monkeypatch, mnist):
    monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path))
    x = np.concatenate([mnist.x_test[:4], mnist.x_test[:2], np.zeros((1, 28, 28), np.uint8)])
    y = np.concatenate([mnist.y_test[:4], mnist.y_test[:2], [3]]).astype(np.uint8)
    ardis = data.Dataset("ardis", x, y, x, y, tmp_path, data.DATASETS["ardis"].checksums)
    seen = []

    def oracle(images):  # right on every digit it is shown
        seen.append(len(images))
        return np.eye(10, dtype=np.float32)[mnist.y_test[:4]]

    report = data.scored(ardis, oracle)
    assert seen == [4]  # four distinct digits; the blank never reaches the network
    assert report["n"] == 5 and report["duplicates_left_out"] == 2
    assert report["no_digit"] == 1 and report["errors"] == 1 and report["accuracy"] == 0.8


# --- small crops -------------------------------------------------------------------------

def test_small_crops_are_small_pictures_of_the_digits(mnist):
    rng = np.random.default_rng(3)
    pictures = [data.small_crop(mnist.x_train[i], rng) for i in range(40)]
    assert all(15 <= min(p.shape) and max(p.shape) <= 32 and p.dtype == np.uint8 for p in pictures)
    assert any(len(np.unique(p)) == 2 for p in pictures)  # some binary
    filled = [p for p in pictures if (p[0] != p[0, 0]).any() and (p[-1] != p[-1, 0]).any()]
    assert filled  # some stretched from the top row to the bottom one


def test_small_crops_are_read_back_and_deterministic(mnist):
    index, x28, found = data.small_crops(mnist.x_train[:50], 30, seed=4, workers=1)
    assert x28.shape == (30, 28, 28) and found.mean() > 0.9
    assert len(set(index.tolist())) == 30  # no image twice while they last
    again = data.small_crops(mnist.x_train[:50], 30, seed=4, workers=2)
    np.testing.assert_array_equal(again[1], x28)


# --- python -m digitrec evaluate --dataset NAME ------------------------------------------

@pytest.mark.parametrize("name, at_least", [("usps", 0.975), ("ardis", 0.98)])
def test_evaluate_reads_each_set_as_a_users_picture(shared, tmp_path, capsys, name, at_least):
    """The shipped model on USPS's and ARDIS's test digits, through the preprocessing of a
    picture: 92.5% on USPS before small crops kept their digit and polarity."""
    from digitrec.cli import main

    out = tmp_path / "confusion.png"
    assert main(["evaluate", "--dataset", name, "--data", str(shared), "--confusion", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"data      {name} test" in text
    assert ("107 exact duplicates scored once" in text) == (name == "ardis")
    accuracy = float(text.split("accuracy")[1].split()[0])
    assert accuracy >= at_least
    per_class = text.split("per class")[1].splitlines()[0].split()
    assert [p.split(":")[0] for p in per_class] == [str(d) for d in range(10)]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
