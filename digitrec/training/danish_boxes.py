"""Boxes for the register cells (``labels/danish_boxes.csv``).

danish-rows labels a cell's text, not where in the cell it is written. A cell without a
box trains neither network. This reads cells with a reader (by default the shipped
detector and recognizer) and gives a cell the box of the first number it finds whose
digits equal the cell's label; a cell the reader does not read so keeps what it had.

    python -m digitrec.training.danish_boxes --data DIR --by "learned reader, fifth training"
    python -m digitrec.training.danish_boxes --data DIR --every --by "learned reader, fifth training"

By default only the cells without a box are read (their boxes appended); ``--every``
reads every cell and puts the reader's box in place of the one it had (the first boxes
came from a reader of hand-tuned stages, which often boxed a whole column, a margin's mark
or a death's cross with the number). Every cell is labelled the same way whether its book
trains or is held out; held-out cells' boxes only let a card score the networks on boxes
as labelled, and whole cells are what the benchmarks read.
"""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from digitrec.training import real_numbers

FIELDS = ["file", "text", "x", "y", "w", "h", "by"]


def label(data=None, by: str = "learned reader", detector=None, recognizer=None,
          boxes_csv=real_numbers.BOXES, limit: int | None = None, every: bool = False) -> tuple[int, int]:
    """Box the cells without one (``every``: all cells; the first ``limit`` of them) that the
    reader reads exactly, and write the boxes to ``boxes_csv``. Returns (cells read, boxes
    given)."""
    from digitrec import store
    from digitrec.reading import engine, numbers
    from digitrec.reading.decode import load_image

    networks = (engine.load(detector or store.lite_path(store.DETECTOR)),
                engine.load(recognizer or store.lite_path(store.RECOGNIZER)))
    cells = [n for n in real_numbers.danish(data, boxes_csv=boxes_csv) if every or n.box is None][:limit]
    directory = cells[0].path.parent.parent if cells else None
    given: dict[str, list] = {}
    for cell in cells:
        for number in numbers.read(load_image(cell.path), *networks).numbers:
            if "".join(str(d.digit) for d in number.digits) == cell.text and number.box:
                given[str(cell.path.relative_to(directory))] = [cell.text, *number.box, by]
                break
    with open(boxes_csv, newline="") as f:
        rows = [[r[k] for k in FIELDS] for r in csv.DictReader(f)]
    had = {r[0] for r in rows}
    rows = [[r[0], *given[r[0]]] if r[0] in given else r for r in rows]  # in place, in order
    rows += [[file, *row] for file, row in given.items() if file not in had]  # then the cells that had none
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\r\n")
    out.writerow(FIELDS)
    out.writerows(rows)
    store.write_atomically({Path(boxes_csv): text.getvalue().encode()})  # whole or not at all
    return len(cells), len(given)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="MNIST's folder with danish-rows beside it (default: $DIGITREC_DATA)")
    ap.add_argument("--by", default="learned reader", help="who gave the boxes, as the CSV records it")
    ap.add_argument("--every", action="store_true",
                    help="read every cell, not only those without a box, and replace the boxes it reads")
    ap.add_argument("--detector", help="read with this detector (.tflite; default: the shipped one)")
    ap.add_argument("--recognizer", help="...and this recognizer (default: the shipped one)")
    args = ap.parse_args(argv)
    had, given = label(args.data, args.by, args.detector, args.recognizer, every=args.every)
    print(f"{given} boxes given to the {had} cells read")


if __name__ == "__main__":
    main()
