"""Readings as a person takes them away: one record per picture (JSON, as the CLI's
``--json`` writes them, with the file's name and how it was read), and one CSV row per
digit or number read. Plain data from :mod:`digitrec.reading.results`; no pictures.

    record(name, mode, result[, count][, correction])  -> dict
    to_json(records) -> str         a list, indented
    to_csv(records) -> str          file, mode, number, text, confidence, unsure, box,
                                    digits_in_picture, correction, error
"""
from __future__ import annotations

import csv
import io
import json

from digitrec.reading.count import DigitCount
from digitrec.reading.results import Number, Prediction, Reading

DIGIT, NUMBERS = "one digit", "numbers"  # how a picture was read
COLUMNS = ("file", "mode", "number", "text", "confidence", "unsure", "box", "digits_in_picture",
           "correction", "error")


def record(name: str, mode: str, result: Prediction | Number | Reading | str,
           count: DigitCount | None = None, correction: str | list | None = None) -> dict:
    """One picture's record: its name, ``mode`` (:data:`DIGIT` or :data:`NUMBERS`), what
    was read (``result``; a string is the reason the file could not be read), how many
    digits the picture holds where that was checked, and the person's correction (a list:
    one per number read, None where that number was not corrected)."""
    out: dict = {"file": name, "mode": mode}
    if isinstance(result, str):
        out["error"] = result
        return out
    if isinstance(result, Number):
        result = Reading([result] if result.digits else [], result.reason)
    out.update(result.to_dict())
    if isinstance(result, Prediction) and result.box is not None:
        out["box"] = list(result.box)
    if count is not None:
        out["digits_in_picture"] = count.to_dict()
    if correction and (not isinstance(correction, list) or any(correction)):
        out["correction"] = correction
    return out


def to_json(records: list[dict]) -> str:
    return json.dumps(records, indent=2) + "\n"


def rows(rec: dict) -> list[dict]:
    """A record's CSV rows: one for a digit, one per number read, one saying there was
    none (or why the file could not be read)."""
    correction = rec.get("correction") or ""
    base = {"file": rec["file"], "mode": rec["mode"], "error": rec.get("error", ""),
            "correction": "" if isinstance(correction, list) else correction,
            "digits_in_picture": rec.get("digits_in_picture", {}).get("digits", "")}
    if "error" in rec:
        return [base]
    if "numbers" not in rec:  # one digit
        return [{**base, "text": "" if rec["digit"] is None else rec["digit"],
                 "confidence": rec.get("confidence", ""), "unsure": rec.get("low_confidence", ""),
                 "box": " ".join(map(str, rec.get("box", []))), "error": rec.get("reason") or ""}]
    if not rec["numbers"]:
        return [{**base, "error": rec.get("reason") or "no number found"}]
    each = correction if isinstance(correction, list) else [correction] + [""] * len(rec["numbers"])
    return [{**base, "number": i + 1, "text": n["text"], "confidence": n["confidence"],
             "unsure": n["low_confidence"], "box": " ".join(map(str, n["box"] or [])),
             "correction": (each[i] if i < len(each) else "") or ""}
            for i, n in enumerate(rec["numbers"])]


def to_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerows(rows(rec))
    return out.getvalue()


__all__ = ["DIGIT", "NUMBERS", "COLUMNS", "record", "rows", "to_json", "to_csv"]
