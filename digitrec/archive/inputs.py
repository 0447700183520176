"""The pictures an archive holds: files, folders (read recursively) and glob patterns
expanded into the list of files to read, each named as written.

A file named on the command line is always read: if it is no picture, its record says
why, as ``predict``/``read`` always did. A file *found* in a folder or by a pattern is
read only if its content is a picture (Pillow recognises its header; the extension does
not count), so that an archive's notes, checksums and empty files are reported and left
out instead of filling the results with errors. A file whose header is a picture but whose
data is damaged (a truncated PNG) is read and gets an error record: it is a picture that
could not be read, which the results should show.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from digitrec.reading.decode import FORMATS


@dataclass
class Found:
    """What the paths hold: the pictures to read (as written, each once, in the order
    found), the files left out with why, and the patterns that matched nothing."""

    pictures: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def not_a_picture(path: str) -> str | None:
    """Why the file at ``path`` is not a picture, or None if its header is one Pillow reads
    (only the header is read; decoding happens in the reading itself)."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with Image.open(path, formats=tuple(FORMATS)):
            return None
    except UnidentifiedImageError:
        return f"not a picture (formats read: {', '.join(FORMATS)})"
    except OSError:
        return None  # unreadable (permissions, a broken link): its record says why
    except Exception:  # a header Pillow rejects for its size or contents: still a picture
        return None


def _walk(folder: str):
    """Every file under ``folder``, recursively, sorted, named by joining onto ``folder``
    as written."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            yield os.path.join(root, name)


def expand(paths: list[str], exclude: tuple[str, ...] = (), known=frozenset()) -> Found:
    """The pictures in ``paths``: a folder is read recursively, a pattern with ``*``, ``?``
    or ``[`` is expanded (``**`` across folders) unless a file has that very name, a file
    is taken as named (a missing one too: its record says so). Files found in folders and
    by patterns are kept only if :func:`not_a_picture` finds nothing wrong. ``exclude``:
    files never to read (the results file and what is written beside it); ``known``: files
    (as written) known to be pictures, taken without a look (those a results file holds)."""
    found = Found()
    seen = {os.path.normpath(os.path.abspath(p)) for p in exclude}

    def add(path: str, named: bool) -> None:
        key = os.path.normpath(os.path.abspath(path))
        if key in seen:
            return
        seen.add(key)
        why = None if named or path in known else not_a_picture(path)
        if why is None:
            found.pictures.append(path)
        else:
            found.skipped.append((path, why))

    for path in paths:
        if os.path.isdir(path):
            for file in _walk(path):
                add(file, named=False)
        elif os.path.lexists(path) or not glob.has_magic(path):
            add(path, named=True)
        else:
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                found.unmatched.append(path)
            for match in matches:
                for file in (_walk(match) if os.path.isdir(match) else [match]):
                    add(file, named=False)
    return found
