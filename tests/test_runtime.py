"""digitrec.runtime: imports without the garbage collector, then frozen out of its sight."""
import gc

from digitrec import runtime


def test_frozen_imports_turns_the_collector_off_then_freezes_once(monkeypatch):
    monkeypatch.setattr(runtime, "_frozen", False)
    assert gc.isenabled()
    before = gc.get_freeze_count()
    with runtime.frozen_imports():
        assert not gc.isenabled()
        made = [[i] for i in range(1000)]  # objects alive at the end of the block
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    assert frozen >= before + len(made)
    with runtime.frozen_imports():  # later blocks freeze nothing more
        more = [[i] for i in range(1000)]
    assert gc.get_freeze_count() == frozen and len(more) == 1000


def test_frozen_imports_leaves_a_disabled_collector_disabled(monkeypatch):
    monkeypatch.setattr(runtime, "_frozen", True)
    gc.disable()
    try:
        with runtime.frozen_imports():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
