"""Where models live and how their files are written: the one place that knows.

A model is three files with one stem, written together:

    NAME.keras    the Keras model, for further training (training side only)
    NAME.tflite   the same network exported for LiteRT, what reading loads
    NAME.json     its card: what it was trained on, the command, its test figures

The shipped networks sit in the repository's ``models/``; models trained from the browser
in ``$DIGITREC_MODELS_DIR/user/`` (default ``models/user/``). Standard library only: the
reading path, the training side and the app's server all import it.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

ENV_VAR = "DIGITREC_MODELS_DIR"
REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DIGIT_MODEL = REPO_MODELS / "digitrec.keras"  # the shipped digit model
DETECTOR = REPO_MODELS / "detector.keras"  # the shipped number detector
RECOGNIZER = REPO_MODELS / "recognizer.keras"  # the shipped number recognizer (CTC)
SUFFIXES = (".keras", ".tflite", ".json")


def models_dir() -> Path:
    """Where user models and the active pointer live."""
    chosen = os.environ.get(ENV_VAR)
    return Path(chosen).expanduser().resolve() if chosen else REPO_MODELS


def user_dir() -> Path:
    """Where models trained from the browser are saved."""
    return models_dir() / "user"


def new_model_path(preset: str) -> Path:
    """A fresh ``.keras`` name for a model trained now (the directory is created)."""
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{preset}-{stamp}.keras"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{preset}-{stamp}-{n}.keras"
    return path


def lite_path(model: str | os.PathLike) -> Path:
    """The exported network that reading loads: models/x.keras -> models/x.tflite."""
    return Path(model).with_suffix(".tflite")


def card_path(model: str | os.PathLike) -> Path:
    """The model card beside the weights: models/x.keras -> models/x.json."""
    return Path(model).with_suffix(".json")


def read_card(model: str | os.PathLike) -> dict:
    """The card beside a model file ({} when there is none or it is unreadable)."""
    try:
        return json.loads(card_path(model).read_text())
    except (OSError, ValueError):
        return {}


def write_atomically(files: dict[Path, bytes | None], write=None) -> None:
    """Write every file to a hidden temporary file beside it, then rename them all into
    place: a reader sees the old files or the new ones, never half of one, and a failed
    write leaves the old ones. ``write(tmp_path, final_path)`` makes a file whose value
    is None (Keras writes its model to a path, not to bytes); a temporary file keeps its
    final suffix (``.x.keras.abc.tmp.keras``), as Keras asks."""
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
            temporaries.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                if data is not None:
                    f.write(data)
            if data is None:
                write(tmp, path)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is for every reader
        for tmp, path in temporaries:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temporaries:
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_json(path: str | os.PathLike, record: dict) -> None:
    """A JSON file, written atomically."""
    write_atomically({Path(path): (json.dumps(record, indent=2) + "\n").encode()})
