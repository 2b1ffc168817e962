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
    for _ in range(12):
        data.analyse(loader)
        counts.append(gc.get_freeze_count())
    # Growth between collections, then a drop back: refreshes 4, 8 and 12 unfreeze and collect.
    assert counts[2] > counts[0]
    assert counts[11] <= counts[2] + (counts[2] - counts[0])
