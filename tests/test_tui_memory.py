"""The dashboard's refresh freezes objects away from the GC; cyclic garbage must not pile up."""

from __future__ import annotations

import gc
import weakref

import pytest

from meshobs.tui import data


class _Junk:
    """A cycle the collector must free (weak-referenceable, so the test can see it go)."""

    def __init__(self) -> None:
        self.me = self


def test_frozen_garbage_is_collected_periodically(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cyclic garbage a live refresh leaves behind (an old snapshot's cycles) is hidden from
    the collector by the refresh's freeze, and freed by the periodic collection: every 4th
    refresh here. Watched through weak references to garbage this test makes, so the verdict
    does not depend on what else the test process holds."""
    monkeypatch.setattr(data, "COLLECT_EVERY", 4)
    monkeypatch.setattr(data, "_refreshes", 0)
    loader = data.SourceLoader("demo:healthy")
    alive: list[int] = []
    refs: list[weakref.ref[_Junk]] = []
    enabled = gc.isenabled()
    gc.disable()  # only the refresh's own collections may free the garbage below
    try:
        for _ in range(12):
            junk = [_Junk() for _ in range(200)]
            refs.extend(weakref.ref(j) for j in junk)
            del junk
            data.analyse(loader)
            alive.append(sum(r() is not None for r in refs))
    finally:
        if enabled:
            gc.enable()
    # Frozen between collections (the garbage of refreshes 1-3 is still there after the 3rd),
    # freed by the 4th, 8th and 12th refreshes.
    assert alive[2] == 600
    assert alive[3] == alive[7] == alive[11] == 0
