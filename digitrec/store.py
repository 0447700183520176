"""Where models live and how their files are written: the one place that knows.

A model is three files with one stem, written together:

    NAME.keras    the Keras model, for further training (training side only)
    NAME.tflite   the same network exported for LiteRT, what reading loads
    NAME.json     its card: what it was trained on, the command, its test figures

The shipped networks sit in the repository's ``models/``, which an installed package
carries as :mod:`digitrec.shipped` (``pyproject.toml`` maps that package onto the folder).
What the app and the CLI write (models trained from the browser in ``user/``, the active
pointer, the samples database) goes to the models directory: ``$DIGITREC_MODELS_DIR``,
else the checkout's ``models/``, else (an installed package, whose own folder may be
read-only and is replaced by an upgrade) the user's data folder, such as
``~/.local/share/digitrec``. Standard library only, but for platformdirs where installed:
the reading path, the training side and the app's server all import it.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

ENV_VAR = "DIGITREC_MODELS_DIR"
CHECKOUT = Path(__file__).resolve().parent.parent  # the repository, when digitrec runs from one


def _shipped_dir() -> tuple[Path, bool]:
    """The folder of the shipped networks, and whether it is a checkout's ``models/``
    (a repository: its ``pyproject.toml`` beside ``models/``) rather than an installed
    package's :mod:`digitrec.shipped`."""
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "models" / "digitrec.tflite").is_file():
        return CHECKOUT / "models", True
    return Path(os.fspath(resources.files("digitrec.shipped"))), False


SHIPPED_DIR, FROM_CHECKOUT = _shipped_dir()
REPO_MODELS = SHIPPED_DIR  # the name earlier code uses
DIGIT_MODEL = SHIPPED_DIR / "digitrec.keras"  # the shipped digit model
DETECTOR = SHIPPED_DIR / "detector.keras"  # the shipped number detector
RECOGNIZER = SHIPPED_DIR / "recognizer.keras"  # the shipped number recognizer (CTC)
SUFFIXES = (".keras", ".tflite", ".json")


def models_dir() -> Path:
    """Where user models, the active pointer and the samples database live."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return Path(chosen).expanduser().resolve()
    if FROM_CHECKOUT:
        return SHIPPED_DIR
    import platformdirs

    return platformdirs.user_data_path("digitrec")


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
