"""Which model the app uses: the shipped one, or a model a user trained and activated.

    models/digitrec.keras       the shipped model (in git, never overwritten by the app)
    $MODELS/user/*.keras        models trained from the browser (git-ignored)
    $MODELS/active.json         {"path": ...}: the active model; absent = the shipped one

``$MODELS`` is ``$DIGITREC_MODELS_DIR`` when set (tests point it at a temporary
directory), else the repository's ``models/``. The pointer is written atomically, so a
reader sees the old model or the new one, never half a file. No TensorFlow, no Streamlit.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

ENV_VAR = "DIGITREC_MODELS_DIR"
REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
SHIPPED_MODEL = REPO_MODELS / "digitrec.keras"
POINTER = "active.json"


def models_dir() -> Path:
    """Where user models and the active pointer live."""
    chosen = os.environ.get(ENV_VAR)
    return Path(chosen).expanduser().resolve() if chosen else REPO_MODELS


def user_dir() -> Path:
    return models_dir() / "user"


def shipped_model() -> Path:
    return SHIPPED_MODEL


def _pointer() -> Path:
    return models_dir() / POINTER


def active_model_path() -> Path:
    """The model every page should use. Falls back to the shipped model when the pointer
    is missing, unreadable or names a file that no longer exists."""
    try:
        record = json.loads(_pointer().read_text())
        path = Path(record["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return SHIPPED_MODEL
    if not path.is_absolute():
        path = models_dir() / path
    return path if path.is_file() else SHIPPED_MODEL


def is_shipped(path: str | os.PathLike) -> bool:
    return Path(path).resolve() == SHIPPED_MODEL.resolve()


def set_active(path: str | os.PathLike) -> Path:
    """Make ``path`` the active model for every page and every browser session."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        stored = str(path.relative_to(directory))
    except ValueError:
        stored = str(path)
    record = {"path": stored, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fd, tmp = tempfile.mkstemp(prefix=".active.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(tmp, _pointer())
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def restore_shipped() -> Path:
    """Go back to the shipped model."""
    try:
        _pointer().unlink()
    except FileNotFoundError:
        pass
    return SHIPPED_MODEL


def new_model_path(preset: str) -> Path:
    """A fresh file name for a model trained now (the directory is created)."""
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{preset}-{stamp}.keras"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{preset}-{stamp}-{n}.keras"
    return path


def read_card(path: str | os.PathLike) -> dict:
    """The model card beside a model file ({} when there is none or it is unreadable)."""
    try:
        return json.loads(Path(path).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}


def cache_key(path: str | os.PathLike | None = None) -> tuple[str, float]:
    """(path, mtime): a loader cached on this reloads when the file is replaced."""
    path = Path(path) if path else active_model_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return str(path), mtime
