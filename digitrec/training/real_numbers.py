"""Real handwritten numbers with their labels: cheque amounts (``orand-train``) and the
row numbers of parish registers (``danish-rows``), each split into the part that trains
and a part held out to choose and tune on. ``orand-dev`` is read only to report.

Where they are: ``--data DIR`` (or $DIGITREC_DATA) names MNIST's folder with these beside
it, or a folder holding them (as :func:`digitrec.training.datasets.find_data_dir`). Every
file is checked against the folder's ``SHA256SUMS`` when a set is first loaded in a
process.

Held out, and never trained on:
  * orand-train: HELD_OUT_SHARE of the amounts, chosen by a hash of the file's name;
  * danish-rows: whole books (every page a parish book holds), chosen by a hash of the
    book's name, so the held-out hands are hands the networks never saw.

A number's box: orand-train gives every digit's box (their union is the number's);
danish-rows gives none, so its boxes are ``labels/danish_boxes.csv`` (see
``labels/README.md``). A picture without a known box trains neither network.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from digitrec.training.datasets import DataError, find_data_dir, read_sums

HELD_OUT_SHARE = 0.15  # of orand-train's amounts
HELD_OUT_BOOKS = 7  # one danish-rows book in this many (by the hash of its name) is held out
LABELS = Path(__file__).resolve().parent / "labels"
SETS = ("orand-train", "danish-rows", "orand-dev")


@dataclass(frozen=True)
class RealNumber:
    path: Path
    text: str  # the digits, left to right
    box: tuple[int, int, int, int] | None  # the number's box in the picture (x, y, w, h), where known
    group: str  # what is held out together: the file (amounts), the book (registers)


def _hash(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16)


def _verified(directory: Path, files) -> None:
    sums = read_sums(directory)
    if not sums:
        raise DataError(f"{directory} has no SHA256SUMS")
    for f in files:
        expected = sums.get(f)
        if expected is None:
            raise DataError(f"{directory / f} is not listed in {directory / 'SHA256SUMS'}")
        try:
            digest = hashlib.sha256((directory / f).read_bytes()).hexdigest()
        except OSError as exc:
            raise DataError(f"{directory / f}: cannot be read ({exc})") from None
        if digest != expected:
            raise DataError(f"{directory / f}: SHA-256 does not match {directory / 'SHA256SUMS'}; the file is corrupt")


def _folder(name: str, data) -> Path:
    directory = find_data_dir(data, name)
    if not (directory / "labels.csv").exists():
        raise DataError(f"{name} is missing: no {directory / 'labels.csv'} (a folder of images with "
                        "labels.csv, file,text)")
    return directory


def _rows(directory: Path) -> list[dict]:
    with open(directory / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def orand(name: str = "orand-train", data=None, verify: bool = True) -> list[RealNumber]:
    """Every amount of ``orand-train`` (with its box) or ``orand-dev`` (without)."""
    directory = _folder(name, data)
    rows = _rows(directory)
    boxes: dict[str, list] = {}
    if (directory / "digits.csv").exists():
        with open(directory / "digits.csv", newline="") as f:
            for r in csv.DictReader(f):
                boxes.setdefault(r["file"], []).append([int(r[k]) for k in "xywh"])
    if verify and (directory / "SHA256SUMS").exists():
        _verified(directory, ["labels.csv", *(["digits.csv"] if boxes else []), *(r["file"] for r in rows)])
    out = []
    for r in rows:
        b = boxes.get(r["file"])
        box = None
        if b:
            x0, y0 = min(v[0] for v in b), min(v[1] for v in b)
            x1, y1 = max(v[0] + v[2] for v in b), max(v[1] + v[3] for v in b)
            box = (x0, y0, x1 - x0, y1 - y0)
        out.append(RealNumber(directory / r["file"], r["text"], box, r["file"]))
    return out


def book(file: str) -> str:
    """The parish book a register crop comes from (``born_K2697_0115a-FM_row_id_0`` -> K2697)."""
    parts = Path(file).stem.split("_")
    return parts[1] if len(parts) > 2 else Path(file).stem


BOXES = LABELS / "danish_boxes.csv"


def danish(data=None, verify: bool = True, boxes_csv=BOXES) -> list[RealNumber]:
    """Every row number of ``danish-rows``, with its box where ``boxes_csv`` (default:
    labels/danish_boxes.csv) has one."""
    directory = _folder("danish-rows", data)
    rows = _rows(directory)
    if verify:
        _verified(directory, ["labels.csv", *(r["file"] for r in rows)])
    boxes = {}
    with open(boxes_csv, newline="") as f:
        for r in csv.DictReader(f):
            boxes[r["file"]] = tuple(int(r[k]) for k in "xywh")
    return [RealNumber(directory / r["file"], r["text"], boxes.get(r["file"]), book(r["file"])) for r in rows]


def held_out(number: RealNumber, name: str) -> bool:
    """Whether ``number`` of set ``name`` is in the part held out to choose and tune on."""
    if name == "danish-rows":
        return _hash(number.group) % HELD_OUT_BOOKS == 0
    return _hash(number.group) % 1000 < HELD_OUT_SHARE * 1000


def split(name: str, data=None, verify: bool = True,
          limit: int | None = None) -> tuple[list[RealNumber], list[RealNumber]]:
    """(training part, held-out part) of ``orand-train`` or ``danish-rows``; ``limit``: at
    most that many of each, spread over the set (a quick trial)."""
    numbers = danish(data, verify) if name == "danish-rows" else orand(name, data, verify)
    train = [n for n in numbers if not held_out(n, name)]
    held = [n for n in numbers if held_out(n, name)]
    if limit:
        train, held = (part[:: max(1, len(part) // limit)][:limit] for part in (train, held))
    return train, held


__all__ = ["RealNumber", "BOXES", "orand", "danish", "split", "held_out", "book", "SETS", "HELD_OUT_SHARE"]
