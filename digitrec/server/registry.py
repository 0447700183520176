"""Which model the app uses: the shipped one, or a model a user trained and activated.

    models/digitrec.*           the shipped model (in git, never overwritten by the app;
                                digitrec/shipped/ in an installed package)
    $MODELS/user/*.keras        models trained from the browser (git-ignored), each with
                                its .tflite and card (:mod:`digitrec.store`)
    $MODELS/active.json         {"path": ...}: the active model; absent = the shipped one

($MODELS: :func:`digitrec.store.models_dir`, the checkout's ``models/`` by default.)

The pointer is written atomically, so a reader sees the old model or the new one, never
half a file. No TensorFlow, no Streamlit.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from digitrec import store
from digitrec.store import DIGIT_MODEL as SHIPPED_MODEL
from digitrec.store import models_dir

POINTER = "active.json"


def _pointer() -> Path:
    return models_dir() / POINTER


class OutsideModelsDir(ValueError):
    """A model path outside the models directory (and not the shipped model)."""


def is_allowed(path: str | os.PathLike) -> bool:
    """True for the shipped model and for files inside the models directory, after
    resolving symlinks and ``..``: models load from nowhere else."""
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError):
        return False
    if real == SHIPPED_MODEL.resolve():
        return True
    return real.is_relative_to(models_dir().resolve()) or real.is_relative_to(store.SHIPPED_DIR.resolve())


def active_status() -> tuple[Path, str | None]:
    """The model every page should use, and why it is not the one the pointer names
    (None when all is well). Falls back to the shipped model when the pointer is
    unreadable, names a file that no longer exists, or a file outside the models directory.
    No pointer at all is the normal state (the shipped model) and no problem."""
    pointer = _pointer()
    if not pointer.exists():
        return SHIPPED_MODEL, None
    try:
        record = json.loads(pointer.read_text())
        path = Path(record["path"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return SHIPPED_MODEL, f"the active-model pointer {POINTER} is unreadable ({type(exc).__name__})"
    if not path.is_absolute():
        path = models_dir() / path
    if not is_allowed(path):
        return SHIPPED_MODEL, f"the active model {path.name} is outside the models directory"
    if not path.is_file() or not store.lite_path(path).is_file():
        return SHIPPED_MODEL, f"the active model {path.name} is missing"
    return path, None


def active_model_path() -> Path:
    """The model every page should use (see :func:`active_status`)."""
    return active_status()[0]


def is_shipped(path: str | os.PathLike) -> bool:
    return Path(path).resolve() == SHIPPED_MODEL.resolve()


def set_active(path: str | os.PathLike) -> Path:
    """Make ``path`` the active model for every page and every browser session (the
    shipped model: no pointer, as :func:`restore_shipped`)."""
    path = Path(path).resolve()
    if is_shipped(path):
        return restore_shipped()
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    if not is_allowed(path):
        raise OutsideModelsDir(f"{path} is outside the models directory {models_dir()}: "
                               "models load only from there")
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        stored = str(path.relative_to(directory))
    except ValueError:
        stored = str(path)
    store.write_json(_pointer(), {"path": stored, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return path


def restore_shipped() -> Path:
    """Go back to the shipped model."""
    try:
        _pointer().unlink()
    except FileNotFoundError:
        pass
    return SHIPPED_MODEL


def clean_stale_temporaries(max_age: float = 3600.0) -> list[Path]:
    """Remove the hidden temporary files (``.name.*.tmp.*``) that a save killed halfway
    leaves behind, once older than ``max_age`` seconds (a younger one may belong to a
    save in progress). They are never shown as models."""
    removed = []
    now = time.time()
    for directory in (models_dir(), store.user_dir()):
        if not directory.is_dir():
            continue
        for path in directory.glob(".*.tmp*"):
            try:
                if path.is_file() and now - path.stat().st_mtime >= max_age:
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass
    return removed


def models() -> list[tuple[Path, dict]]:
    """The models trained here (``$MODELS/user/``) that can be made active: each one's
    ``.keras`` path and card, newest first. A model missing its ``.tflite`` (what reading
    loads) is left out, and so are the hidden temporaries of a save in progress."""
    directory = store.user_dir()
    if not directory.is_dir():
        return []
    found = [(p, store.read_card(p)) for p in directory.glob("*.keras")
             if not p.name.startswith(".") and store.lite_path(p).is_file()]
    return sorted(found, key=lambda item: (item[1].get("created", ""), item[0].stat().st_mtime), reverse=True)


def cache_key(path: str | os.PathLike | None = None) -> tuple[str, float]:
    """(path, mtime of its .tflite): a loader cached on this reloads when the file is replaced."""
    path = Path(path) if path else active_model_path()
    try:
        mtime = store.lite_path(path).stat().st_mtime
    except OSError:
        mtime = 0.0
    return str(path), mtime
