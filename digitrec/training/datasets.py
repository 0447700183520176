"""MNIST from the four original IDX files: find them, read them, verify them.

The directory comes from an argument (``--data DIR``) or the ``DIGITREC_DATA``
environment variable. Each file may be gzipped or raw; its SHA-256 is checked on the
*decompressed* bytes, so a corrupt or truncated file is caught before training starts.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "DIGITREC_DATA"
DEFAULT_CACHE = Path.home() / ".cache" / "digitrec" / "mnist"
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# SHA-256 of the decompressed bytes of the original MNIST files.
CHECKSUMS = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """MNIST data is missing, corrupt or malformed; the message names the file."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # (60000, 28, 28) uint8, ink bright on dark
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) uint8
    directory: Path
    checksums: dict


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking the header against the payload size."""
    if len(raw) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_TYPES or not 1 <= ndim <= 4:
        raise DataError(f"{name}: not an IDX file (header {raw[:4].hex()})")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = np.dtype(_IDX_TYPES[dtype_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_len != expected:
        raise DataError(
            f"{name}: header declares shape {shape} ({expected} bytes) "
            f"but the file holds {len(raw) - header_len} bytes of data"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)


def find_data_dir(data: str | os.PathLike | None = None) -> Path:
    """The MNIST directory: the argument, else $DIGITREC_DATA, else the download cache."""
    chosen = data or os.environ.get(ENV_VAR)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise DataError(f"MNIST directory {path} does not exist")
        return path
    return DEFAULT_CACHE


def _read_file(directory: Path, name: str) -> bytes:
    for candidate, opener in ((directory / name, open), (directory / f"{name}.gz", gzip.open)):
        if candidate.exists():
            try:
                with opener(candidate, "rb") as f:
                    return f.read()
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise DataError(f"{candidate}: cannot be read ({exc})") from exc
    raise DataError(f"{directory / name}(.gz) is missing: MNIST needs {', '.join(CHECKSUMS)}")


def download(directory: Path = DEFAULT_CACHE) -> None:
    """Fetch missing files from the public mirrors (never called by tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in CHECKSUMS:
        target = directory / f"{name}.gz"
        if target.exists() or (directory / name).exists():
            continue
        errors = []
        for mirror in MIRRORS:
            try:
                with urllib.request.urlopen(mirror + f"{name}.gz", timeout=30) as r:
                    tmp = target.with_suffix(".part")
                    with open(tmp, "wb") as f:
                        shutil.copyfileobj(r, f)
                    os.replace(tmp, target)
                    break
            except OSError as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise DataError(
                f"MNIST not found and download failed; pass --data DIR or set {ENV_VAR}. "
                + "; ".join(errors)
            )


def load_mnist(data: str | os.PathLike | None = None, verify: bool = True) -> Mnist:
    """Load and verify the four MNIST files from ``data`` (see :func:`find_data_dir`)."""
    directory = find_data_dir(data)
    if directory == DEFAULT_CACHE and not (data or os.environ.get(ENV_VAR)):
        download(directory)
    arrays, sums = {}, {}
    for name, expected in CHECKSUMS.items():
        raw = _read_file(directory, name)
        digest = hashlib.sha256(raw).hexdigest()
        if verify and digest != expected:
            raise DataError(
                f"{directory / name}: SHA-256 {digest[:16]}... does not match "
                f"the MNIST checksum {expected[:16]}...; the file is corrupt"
            )
        arrays[name], sums[name] = parse_idx(raw, name), digest
    return Mnist(
        x_train=arrays["train-images-idx3-ubyte"],
        y_train=arrays["train-labels-idx1-ubyte"],
        x_test=arrays["t10k-images-idx3-ubyte"],
        y_test=arrays["t10k-labels-idx1-ubyte"],
        directory=directory,
        checksums=sums,
    )
