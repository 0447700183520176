"""Labelled digit sets from IDX files: find them, read them, verify them, and bring their
digits into the form the network reads.

Four sets are known by name (:data:`DATASETS`): ``mnist``, ``ardis``, ``usps`` and ``cvl``
(whose "test" split is its validation writers), each a folder of four IDX files (gzipped
or raw) with a ``SHA256SUMS``. Where they are:

    --data DIR (or $DIGITREC_DATA)   either MNIST's own folder, with ardis/ and usps/
                                      beside it (../shared/data/mnist, as CI sets it), or
                                      a folder holding mnist/, ardis/ and usps/

Nothing is ever downloaded. Every file's SHA-256 (of its decompressed bytes) is checked
against the table below before anything is trained or scored on it.

MNIST's digits are already in the form :func:`digitrec.reading.normalize.normalize` makes
of a user's picture (20x20 box, centre of mass at the centre of 28x28). The other sets'
are not: :func:`prepared` sends each through ``normalize``, once, and keeps the result in
a cache on disk keyed by the file's checksum and the preprocessing's source, so a run
reads them as the app reads a picture and pays for it only the first time.
"""
from __future__ import annotations

import gzip
import hashlib
import inspect
import io
import os
import struct
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from digitrec.store import write_atomically

ENV_VAR = "DIGITREC_DATA"
CACHE_ENV_VAR = "DIGITREC_CACHE"  # where prepared digits are kept (default ~/.cache/digitrec)
SPLITS = ("train", "test")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """A data set is missing, corrupt or malformed; the message names the file."""


@dataclass(frozen=True)
class Spec:
    """A known data set: its files per split and the SHA-256 of each (decompressed)."""

    name: str
    description: str
    files: dict  # split -> (images file, labels file), names without .gz
    checksums: dict  # file -> SHA-256 of its decompressed bytes
    source: str  # where a user gets the files, for the message when they are missing
    mnist_form: bool = False  # digits already as normalize() makes them (MNIST itself)


DATASETS = {
    "mnist": Spec(
        "mnist", "MNIST: American census staff and students, 1990 (28x28)",
        {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")},
        {"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
         "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
         "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        "the MNIST database, as downloaded (yann.lecun.com/exdb/mnist, or a mirror of the same "
        "files such as ossci-datasets.s3.amazonaws.com/mnist)",
        mnist_form=True,
    ),
    "ardis": Spec(
        "ardis", "ARDIS IV: Swedish church records, 1895-1970 (28x28)",
        {"train": ("ardis-train-images-idx3-ubyte", "ardis-train-labels-idx1-ubyte"),
         "test": ("ardis-test-images-idx3-ubyte", "ardis-test-labels-idx1-ubyte")},
        {"ardis-train-images-idx3-ubyte": "d3fe654d7bd847e4fb62c846e35bc5d91932f518bdd50ed22fcb1c0ae939ed18",
         "ardis-train-labels-idx1-ubyte": "a2e0b28366130228751fd241d6818d987d074c2eb21c8377ea1471b0a05a26ac",
         "ardis-test-images-idx3-ubyte": "49a2f0d89f845451762399c7eccced5cd9f914dec61ef05dbb59bc38e616c530",
         "ardis-test-labels-idx1-ubyte": "269ecbc6b9d1255bfaf6a62a1eba208034491ca4df872ab8c3531975085962c3"},
        "ARDIS IV (github.com/ARDISDataset/ARDIS), its CSV files written unchanged as IDX",
    ),
    "usps": Spec(
        "usps", "USPS: ZIP codes from US mail, scaled to fill 16x16",
        {"train": ("usps-train-images-idx3-ubyte", "usps-train-labels-idx1-ubyte"),
         "test": ("usps-test-images-idx3-ubyte", "usps-test-labels-idx1-ubyte")},
        {"usps-train-images-idx3-ubyte": "4cd4bc62e6551318fe9ea956ca4b009b0d0393b480c2694b0042358c8349d345",
         "usps-train-labels-idx1-ubyte": "ca21dd4e5a91233d38069e4f468988d3b56f6ce37e1a579a5ad1bd02395488c6",
         "usps-test-images-idx3-ubyte": "c457a5ed04299c6a38754b797879bb527abb519e4ec8afccc932d6018f35192a",
         "usps-test-labels-idx1-ubyte": "9d60836db74a1ffe67829f9a2546bd594d5d321f778dbca1578c041da94483a2"},
        "the zip-code digits of The Elements of Statistical Learning (zip.train.gz, zip.test.gz), "
        "each pixel v written as round((v + 1) x 127.5) in IDX",
    ),
    # CVL's validation writers are its "test" split here: 60 people none of whom wrote a
    # training digit (its evaluation set's 176 writers are elsewhere).
    "cvl": Spec(
        "cvl", "CVL Single Digit: students and staff of TU Wien, 2013 (stretched to fill 28x28)",
        {"train": ("cvl-train-images-idx3-ubyte", "cvl-train-labels-idx1-ubyte"),
         "test": ("cvl-valid-images-idx3-ubyte", "cvl-valid-labels-idx1-ubyte")},
        {"cvl-train-images-idx3-ubyte": "707479eb354d610cb4b39669f740542100b20cd093e87906947fceebafb12308",
         "cvl-train-labels-idx1-ubyte": "e2a60cc507ebafe53748b43a15e932523d92e5e40025eabf05d9c5f477416c4d",
         "cvl-valid-images-idx3-ubyte": "f1296b237fbff47ef7bfb2dbfa05e413896787f35e82b515510a64405d78d8f5",
         "cvl-valid-labels-idx1-ubyte": "e2a60cc507ebafe53748b43a15e932523d92e5e40025eabf05d9c5f477416c4d"},
        "the CVL Single Digit database (ICDAR 2013 HDRC, TU Wien), its training and validation "
        "sets written as IDX, ink bright on dark",
    ),
}
CHECKSUMS = DATASETS["mnist"].checksums  # MNIST's, by file name


@dataclass(frozen=True)
class Dataset:
    """One set's images and labels as stored (any size), verified."""

    name: str
    x_train: np.ndarray  # (N, H, W) uint8, ink bright on dark
    y_train: np.ndarray  # (N,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    directory: Path
    checksums: dict  # file -> SHA-256, as verified


# --- IDX ---------------------------------------------------------------------------------

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


def read_sums(directory: Path) -> dict:
    """The folder's ``SHA256SUMS`` (``sum  file`` per line) as {file: sum}; {} without one."""
    path = Path(directory) / "SHA256SUMS"
    if not path.exists():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*").removesuffix(".gz")] = parts[0].lower()
    return sums


def read_file(directory: Path, name: str, expected: str | None, owner: str) -> tuple[bytes, str]:
    """The decompressed bytes of ``name`` (or ``name.gz``) and their SHA-256, checked
    against ``expected`` (``owner``'s sum: a set's name, or the folder's SHA256SUMS)."""
    directory = Path(directory)
    for candidate, opener in ((directory / name, open), (directory / f"{name}.gz", gzip.open)):
        if candidate.exists():
            try:
                with opener(candidate, "rb") as f:
                    raw = f.read()
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise DataError(f"{candidate}: cannot be read ({exc})") from exc
            break
    else:
        raise DataError(f"{directory / name}(.gz) is missing")
    digest = hashlib.sha256(raw).hexdigest()
    if expected and digest != expected:
        raise DataError(f"{candidate}: SHA-256 {digest[:16]}... does not match the "
                        f"checksum {expected[:16]}... in {owner}; the file is corrupt")
    return raw, digest


def read_pair(directory: Path, images: str, labels: str, sums: dict | None = None,
              owner: str = "SHA256SUMS") -> tuple[np.ndarray, np.ndarray, dict]:
    """One IDX images file (N, H, W), any H and W, and its labels (N,), verified against
    ``sums`` (default: the folder's SHA256SUMS). Returns (x, y, {file: sha256})."""
    sums = read_sums(directory) if sums is None else sums
    raw_x, sum_x = read_file(directory, images, sums.get(images), owner)
    raw_y, sum_y = read_file(directory, labels, sums.get(labels), owner)
    x, y = parse_idx(raw_x, images), parse_idx(raw_y, labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{directory / images}: not uint8 images (shape {x.shape}, {x.dtype})")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{directory / labels}: {y.shape} labels for {len(x)} images")
    if len(y) and int(y.max()) > 9:
        raise DataError(f"{directory / labels}: labels must be digits 0-9 (found {int(y.max())})")
    return x, y, {images: sum_x, labels: sum_y}


# --- the known sets ----------------------------------------------------------------------

def spec(name: str) -> Spec:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


def parse_names(value: str | list | tuple | None) -> tuple[str, ...]:
    """``"mnist,ardis"`` (or a list) -> ("mnist", "ardis"), each a known set; None -> ("mnist",)."""
    from digitrec.training.recipes import dataset_names

    names = dataset_names(value) if value is not None else ["mnist"]
    if not names:
        raise DataError(f"no data set named; choose from {', '.join(DATASETS)}")
    for n in names:
        spec(n)
    return tuple(names)


def where_to_get(name: str = "mnist") -> str:
    """What set ``name`` needs and where to get it: the end of every message about a
    missing set."""
    s = spec(name)
    return (f"{name} is the files {', '.join(s.checksums)} (each .gz or not, checked against "
            f"their SHA-256) from {s.source}; put them in any folder and pass it as --data DIR "
            f"or set {ENV_VAR} (MNIST's folder, with ardis/ and usps/ beside it, or a folder "
            "holding mnist/, ardis/ and usps/); nothing is downloaded")


def find_data_dir(data: str | os.PathLike | None = None, name: str = "mnist") -> Path:
    """The folder of set ``name``, from ``data`` else $DIGITREC_DATA: ``data/name`` where
    that exists, else MNIST's own folder (``data`` itself) with the others beside it."""
    chosen = data or os.environ.get(ENV_VAR)
    if not chosen:  # the folder named is MNIST's, or holds it: its files are what to get first
        raise DataError(f"no data folder given. {where_to_get()}")
    path = Path(chosen).expanduser()
    if not path.is_dir():
        given = "--data" if data else f"${ENV_VAR}"
        raise DataError(f"data folder {path} (from {given}) does not exist. {where_to_get()}")
    if (path / name).is_dir():
        return path / name
    return path if name == "mnist" or path.name == name else path.parent / name


def load(name: str, data: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """Set ``name``'s four files from its folder (see :func:`find_data_dir`), verified."""
    s = spec(name)
    directory = find_data_dir(data, name)
    if not directory.is_dir():
        raise DataError(f"{name} is missing: no folder {directory}. {where_to_get(name)}")
    for file in s.checksums:
        if not (directory / file).exists() and not (directory / f"{file}.gz").exists():
            raise DataError(f"{directory / file}(.gz) is missing. {where_to_get(name)}")
    arrays, sums = {}, {}
    for split, (images, labels) in s.files.items():
        x, y, got = read_pair(directory, images, labels, s.checksums if verify else {}, owner=f"{name}'s table")
        arrays[split] = (x, y)
        sums.update(got)
    return Dataset(name, *arrays["train"], *arrays["test"], directory=directory, checksums=sums)


def cvl_writers(data: str | os.PathLike | None, split: str) -> np.ndarray:
    """Who wrote each CVL digit of ``split`` ("train" or "valid"), in file order, from the
    folder's writers.csv (checked against its SHA256SUMS)."""
    import csv

    directory = find_data_dir(data, "cvl")
    raw, _ = read_file(directory, "writers.csv", read_sums(directory).get("writers.csv"), "SHA256SUMS")
    rows = [r for r in csv.DictReader(io.StringIO(raw.decode())) if r["split"] == split]
    return np.array([r["writer"] for r in sorted(rows, key=lambda r: int(r["index"]))])


def load_mnist(data: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    return load("mnist", data, verify)


def unique(x: np.ndarray) -> np.ndarray:
    """Indices of the first of each group of identical images, in order."""
    _, first = np.unique(x.reshape(len(x), -1), axis=0, return_index=True)
    return np.sort(first)


# --- the digits as the network reads them ------------------------------------------------

def preprocessing_version() -> str:
    """A digest of the preprocessing's source: a cached set is remade when it changes."""
    import cv2

    from digitrec.reading import decode, normalize

    text = inspect.getsource(normalize) + inspect.getsource(decode) + cv2.__version__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    chosen = os.environ.get(CACHE_ENV_VAR)
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "digitrec"


def _normalize_chunk(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from digitrec.reading.normalize import NoDigit, normalize

    out = np.zeros((len(images), 28, 28), np.uint8)
    ok = np.zeros(len(images), bool)
    for i, image in enumerate(images):
        try:
            out[i] = np.clip(normalize(image).x28 * 255 + 0.5, 0, 255).astype(np.uint8)
            ok[i] = True
        except NoDigit:  # stays black, marked not found
            pass
    return out, ok


def normalize_all(images: np.ndarray, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each image through :func:`normalize` -> (N, 28, 28) uint8 and N bools (False where
    the preprocessing found no digit: those stay black)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(images) // 500 or 1))
    if workers == 1:
        return _normalize_chunk(images)
    chunks = np.array_split(np.asarray(images), workers * 4)
    # spawn, not fork: the parent may hold TensorFlow's and OpenCV's threads
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_normalize_chunk, chunks))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cached(key: str, compute) -> tuple[dict, Path | None]:
    """The arrays stored under ``key`` in the cache, or ``compute()``'s (a dict of arrays),
    stored there. Returns (arrays, the cache file; None where it cannot be written)."""
    path = cache_dir() / "prepared" / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}, path
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache file is made again
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        write_atomically({path: buffer.getvalue()})
    except OSError:  # a read-only home: the run goes on, and computes it again next time
        path = None
    return arrays, path


@dataclass(frozen=True)
class Prepared:
    """One split of one set as the network reads it."""

    name: str
    split: str
    x: np.ndarray  # (N, 28, 28) uint8
    y: np.ndarray  # (N,) uint8
    found: np.ndarray  # (N,) bool: the preprocessing found a digit (always True for MNIST)
    checksums: dict  # the split's files -> SHA-256
    cached: Path | None  # the cache file it came from or went to (None: MNIST, used as stored)


def prepared(dataset: Dataset, split: str, workers: int | None = None) -> Prepared:
    """``dataset``'s ``split`` as the network reads it: MNIST as stored, any other set
    through :func:`normalize`, from the cache when it holds this file under this
    preprocessing, else computed now and cached."""
    s = spec(dataset.name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    x, y = (dataset.x_train, dataset.y_train) if split == "train" else (dataset.x_test, dataset.y_test)
    images, labels = s.files[split]
    sums = {f: dataset.checksums[f] for f in (images, labels)}
    if s.mnist_form:
        return Prepared(dataset.name, split, x, y, np.ones(len(x), bool), sums, None)

    def compute():
        x28, found = normalize_all(x, workers)
        return {"x": x28, "found": found}

    key = f"{dataset.name}-{split}-{sums[images][:16]}-{preprocessing_version()}"
    arrays, path = cached(key, compute)
    return Prepared(dataset.name, split, arrays["x"], y, arrays["found"], sums, path)


def scored(dataset: Dataset, probabilities) -> dict:
    """``probabilities`` ((N, 28, 28) float32 in [0, 1] -> (N, 10)) scored on the set's
    test digits as the network reads them (:func:`prepared`), each distinct image once.
    A picture in which the preprocessing finds no digit counts as an error; the
    per-class figures and the confusion matrix are of the others."""
    from digitrec.training.evaluate import scores

    test = prepared(dataset, "test")
    keep = unique(dataset.x_test)
    x, y, found = test.x[keep], test.y[keep], test.found[keep]
    report = scores(probabilities(x[found].astype(np.float32) / 255.0), y[found])
    report["accuracy"] = round((len(y[found]) - report["errors"]) / max(len(y), 1), 5)
    report["errors"] += int((~found).sum())
    report["n"], report["no_digit"] = int(len(y)), int((~found).sum())
    report["duplicates_left_out"] = int(len(dataset.x_test) - len(keep))
    return report


# --- small crops (augmentation) ----------------------------------------------------------

def small_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training digit as another program may have saved it (a 16x16 scan, a 32x32
    bitmap, a 15x16 thumbnail): cut to its ink, perhaps stretched to fill the box, 15-32
    px, perhaps thickened, binary, a few grey levels or grey, either polarity."""
    import cv2

    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    ys, xs = np.nonzero(big > 64)
    if len(xs) == 0:
        return image
    big = big[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    if rng.random() < 0.35:  # a marker, or a bold pen
        r = int(rng.integers(1, max(2, int(0.07 * max(big.shape))) + 1))
        big = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    side = int(rng.integers(15, 33))
    h, w = big.shape
    if rng.random() < 0.5:  # stretched to fill the box, whatever the digit's shape
        size = (side - int(rng.integers(0, 2)), side)
        canvas = cv2.resize(big, size, interpolation=cv2.INTER_AREA)
    else:
        fit = (side - 2 * int(rng.integers(0, 3))) / max(h, w)
        small = cv2.resize(big, (max(1, round(w * fit)), max(1, round(h * fit))), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((side, side), np.uint8)
        top, left = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
        canvas[top: top + small.shape[0], left: left + small.shape[1]] = small
    kind = rng.random()
    if kind < 0.4:  # binary, cut at some level: jagged edges
        canvas = np.where(canvas > rng.uniform(60, 160), 255, 0).astype(np.uint8)
    elif kind < 0.6:  # a few grey levels
        levels = int(rng.integers(3, 8))
        canvas = (np.round(canvas / 255 * (levels - 1)) * (255 / (levels - 1))).astype(np.uint8)
    return 255 - canvas if rng.random() < 0.5 else canvas


def _small_chunk(task) -> tuple[np.ndarray, np.ndarray]:
    images, seed = task
    rng = np.random.default_rng(seed)
    return _normalize_chunk([small_crop(im, rng) for im in images])


def small_crops(x, n: int, seed: int, workers: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`small_crop` of ``n`` of the images ``x`` (any size, ink bright), drawn
    without repeats while they last, through :func:`normalize`. Returns (indices into x,
    the (n, 28, 28) uint8 digits, found). Deterministic for a given seed, whatever the
    number of ``workers``."""
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.permutation(len(x)) for _ in range(n // max(len(x), 1) + 1)])[:n]
    chunks = np.array_split(np.arange(n), max(1, n // 500))
    tasks = [([x[i] for i in index[c]], seed * 100_003 + k) for k, c in enumerate(chunks)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        parts = [_small_chunk(t) for t in tasks]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_small_chunk, tasks))
    return index, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
