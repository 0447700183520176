"""digitrec.training.datasets: IDX parsing, checksum verification, data directory lookup."""
import gzip
import shutil
import struct

import numpy as np
import pytest

from digitrec.training import datasets as data
from digitrec.training.datasets import DataError, load_mnist, parse_idx


def idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


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


def test_loads_real_mnist(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_train.shape == (60000,) and set(np.unique(mnist.y_test)) == set(range(10))
    assert mnist.checksums == data.CHECKSUMS


@pytest.fixture
def mnist_copy(tmp_path, mnist):
    """The real files, copied so that a test can damage them."""
    for name in data.CHECKSUMS:
        src = mnist.directory / f"{name}.gz"
        if src.exists():
            shutil.copy(src, tmp_path / f"{name}.gz")
        else:
            shutil.copy(mnist.directory / name, tmp_path / name)
    return tmp_path


def test_reads_uncompressed_files(tmp_path, mnist_copy):
    name = "t10k-labels-idx1-ubyte"
    gz = mnist_copy / f"{name}.gz"
    if gz.exists():
        (mnist_copy / name).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    loaded = load_mnist(mnist_copy)
    assert loaded.y_test.shape == (10000,)


def test_corrupt_file_fails_checksum_naming_it(mnist_copy):
    name = "t10k-labels-idx1-ubyte"
    path = mnist_copy / f"{name}.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 0xFF  # one flipped label: parses fine, but is not MNIST
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=f"{name}.*SHA-256.*corrupt"):
        load_mnist(mnist_copy)


def test_damaged_gzip_is_reported(mnist_copy):
    path = mnist_copy / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: cannot be read"):
        load_mnist(mnist_copy)


def test_missing_file_is_named(mnist_copy):
    (mnist_copy / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*missing"):
        load_mnist(mnist_copy)


def test_data_dir_from_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.find_data_dir() == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert data.find_data_dir(other) == other
    with pytest.raises(DataError, match="does not exist"):
        data.find_data_dir(tmp_path / "nope")
