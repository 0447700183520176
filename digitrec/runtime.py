"""Process-wide care for a process that holds TensorFlow: the app's server and the CLI."""
from __future__ import annotations

import gc
from contextlib import contextmanager

_frozen = False


@contextmanager
def frozen_imports():
    """Import TensorFlow and Keras inside this block.

    While they load, the garbage collector is off: their modules create some 400,000
    objects, which set off six full collections (0.6 s in a ``fast`` training's 12-15 s)
    that found almost nothing. Afterwards, the first time only, everything alive is
    frozen out of the collector's sight (``gc.freeze``): in the app's server each full
    collection had walked all of it with the GIL held (0.22 s) after every visitor's
    rerun. Objects made later (models, datasets, sessions) are collected as usual."""
    global _frozen
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not _frozen:
            gc.freeze()
            _frozen = True
        if enabled:
            gc.enable()
