"""One picture's record: the JSON object ``predict --json`` and ``read --json`` print for
a file, made in one place for the CLI's own loop, the worker processes and the Ray actors.

A file that cannot be decoded gives a record with ``error`` (and no answer), never an
exception: one bad picture in an archive is a line of the results, not the end of a run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.reading.decode import ImageError, load_image

COMMANDS = ("predict", "read")


@dataclass
class Answer:
    """A file's record, and what it was made from: the decoded picture and the
    :class:`~digitrec.reading.results.Prediction` or ``Reading`` (None when the file could
    not be decoded)."""

    record: dict
    image: np.ndarray | None = None
    result: object | None = None

    @property
    def failed(self) -> bool:
        return "error" in self.record


def answer(recognizer, command: str, file: str, path: str | None = None) -> Answer:
    """``command`` ("predict": one digit; "read": every number) on the picture at ``path``
    (default: ``file``), named ``file`` in the record, as written."""
    try:
        image = load_image(file if path is None else path)
    except ImageError as exc:
        empty = {"digit": None} if command == "predict" else {"text": None, "numbers": []}
        return Answer({"file": file, **empty, "error": exc.reason})  # the file is named in "file"
    result = recognizer.predict(image) if command == "predict" else recognizer.read(image)
    return Answer({"file": file, **result.to_dict()}, image, result)


def command_of(record: dict) -> str:
    """Which command made ``record``: a digit's record has ``digit``, a reading's ``numbers``."""
    return "predict" if "digit" in record else "read"
