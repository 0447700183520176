"""Boxes for the register cells that have none yet (``labels/danish_boxes.csv``).

danish-rows labels a cell's text, not where in the cell it is written. A cell without a
box trains neither network, and the cells left without one are the hard ones (a date or a
word beside the number, a neighbouring column's strokes, a faint hand). This reads each of
them with a reader (by default the shipped detector and recognizer) and keeps the box of
the first number it finds whose digits equal the cell's label; the rest stay without.

    python -m digitrec.training.danish_boxes --data DIR --by "learned reader, second training"

Every cell is labelled the same way whether its book trains or is held out; held-out
cells' boxes only let a card score the recognizer on boxes as labelled, and whole cells
are what the benchmarks read.
"""
from __future__ import annotations

import argparse
import csv

from digitrec.training import real_numbers


def label(data=None, by: str = "learned reader", detector=None, recognizer=None,
          boxes_csv=real_numbers.BOXES, limit: int | None = None) -> tuple[int, int]:
    """Box every unboxed cell (the first ``limit`` of them) the reader reads exactly, and
    append the boxes to ``boxes_csv``. Returns (cells tried, boxes added)."""
    from digitrec import store
    from digitrec.reading import engine, numbers
    from digitrec.reading.decode import load_image

    networks = (engine.load(detector or store.lite_path(store.DETECTOR)),
                engine.load(recognizer or store.lite_path(store.RECOGNIZER)))
    cells = [n for n in real_numbers.danish(data, boxes_csv=boxes_csv) if n.box is None][:limit]
    directory = cells[0].path.parent.parent if cells else None
    rows = []
    for cell in cells:
        for number in numbers.read(load_image(cell.path), *networks).numbers:
            if "".join(str(d.digit) for d in number.digits) == cell.text and number.box:
                x, y, w, h = number.box
                rows.append([str(cell.path.relative_to(directory)), cell.text, x, y, w, h, by])
                break
    with open(boxes_csv, "a", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    return len(cells), len(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="MNIST's folder with danish-rows beside it (default: $DIGITREC_DATA)")
    ap.add_argument("--by", default="learned reader", help="who gave the boxes, as the CSV records it")
    ap.add_argument("--detector", help="read with this detector (.tflite; default: the shipped one)")
    ap.add_argument("--recognizer", help="...and this recognizer (default: the shipped one)")
    args = ap.parse_args(argv)
    had, added = label(args.data, args.by, args.detector, args.recognizer)
    print(f"{added} boxes added for the {had} cells that had none")


if __name__ == "__main__":
    main()
