"""The dashboard's refresh freezes objects away from the GC; cyclic garbage must not pile up."""

from __future__ import annotations

import gc

import pytest

from meshobs.tui import data


def test_frozen_garbage_is_collected_periodically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "COLLECT_EVERY", 4)
    monkeypatch.setattr(data, "_refreshes", 0)
    loader = data.SourceLoader("demo:healthy")
    counts = []
    enabled = gc.isenabled()
    gc.disable()  # only the refresh's own collections may free the garbage below
    try:
        for _ in range(12):
            # The cyclic garbage a live refresh leaves behind (an old snapshot's cycles): the
            # refresh's freeze hides it from the collector until a periodic collection.
            junk: list[list[object]] = [[] for _ in range(500)]
            for item in junk:
                item.append(item)
            del junk
            data.analyse(loader)
            counts.append(gc.get_freeze_count())
    finally:
        if enabled:
            gc.enable()
    # Growth between collections, then a drop back: refreshes 4, 8 and 12 unfreeze and collect.
    assert counts[2] > counts[0]
    assert counts[11] <= counts[2] + (counts[2] - counts[0])
