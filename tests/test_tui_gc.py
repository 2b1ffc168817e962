"""The dashboard keeps full garbage collections off the UI thread while it shows a load, and
freezes what the load left once the table holds it (see tui/gc_policy.py); the cyclic garbage
that freezing hides is still freed by the periodic collection.

The collector's thresholds are lowered for these tests so that, without the policy, the
allocations of one table fill would certainly start full collections on the UI thread."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot
from meshobs.tui import data
from meshobs.tui.app import MeshobsApp
from meshobs.tui.data import SnapshotLoader
from meshobs.tui.widgets.tables import SyncTable
from tests.support.builders import busier
from tests.support.tui import settled, until
from tests.test_tui import _deterministic, anyio_backend  # noqa: F401  (fixtures: no cursor blink, asyncio)

pytestmark = pytest.mark.anyio

EAGER = (50, 2, 1)  # full collections after very few allocations: a fill surely triggers them


@pytest.fixture(scope="module")
def snapshot() -> MeshSnapshot:
    return build_snapshot(load_demo("ecommerce"), origin="demo:ecommerce")


@pytest.fixture
def eager_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved, enabled = gc.get_threshold(), gc.isenabled()
    # Out of sight first, as the dashboard's loads do: else every one of these full collections
    # would walk the whole test process.
    gc.freeze()
    # ... and forget how big the process's heap once was: the interpreter runs a full collection
    # only when the objects that survived since the last one exceed a quarter of the long-lived
    # objects it counted then, and freeze() does not reset that count. After an earlier test in
    # this process held millions of objects, no full collection would come in time to be seen.
    gc.collect()
    gc.set_threshold(*EAGER)
    # Whatever an earlier test in this process left (a thread still inside gc_paused, a
    # disabled collector): automatic collection is what these tests watch.
    gc.enable()
    monkeypatch.setattr(data, "_refreshes", 0)  # no periodic collection inside the test
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        if not enabled:
            gc.disable()


def live_app(snapshot: MeshSnapshot) -> MeshobsApp:
    calls = [0]

    def produce() -> MeshSnapshot:
        calls[0] += 1
        return busier(snapshot, 1.0 + calls[0] / 10)  # every row's numbers change

    return MeshobsApp(SnapshotLoader(produce, live=True, description="test"), refresh_s=0)


async def refresh(pilot: Any, app: MeshobsApp) -> None:
    """Press r and wait until the table holds the new load's findings."""
    loads = app.loads
    app.action_refresh()
    await until(pilot, lambda: app.loads > loads and settled(app))


class FullOnUiThread:
    """Each full collection on this (the UI) thread: whether the app held them off then."""

    def __init__(self, app: MeshobsApp) -> None:
        self.app, self.ui = app, threading.get_ident()
        self.held: list[bool] = []
        self.young_while_held = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase != "start" or threading.get_ident() != self.ui:
            return
        if info["generation"] == 2:
            self.held.append(self.app.full_gc.held)
        elif self.app.full_gc.held:
            self.young_while_held += 1


@pytest.mark.usefixtures("eager_gc")
async def test_no_full_collection_on_the_ui_thread_while_a_load_is_shown(snapshot: MeshSnapshot) -> None:
    app = live_app(snapshot)
    probe = FullOnUiThread(app)
    gc.callbacks.append(probe)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: settled(app))
            for _ in range(3):
                await refresh(pilot, app)
                # Once the table holds the load: the thresholds are the process's again, and
                # what the fill made is frozen (a cell of the table is in no generation).
                assert not app.full_gc.held and gc.get_threshold() == EAGER
                table = app.screen.query_one("#services", SyncTable)
                cells = [c for i in range(table.row_count) for c in table.get_row_at(i) if gc.is_tracked(c)]
                assert cells and not any(o is cells[0] for o in gc.get_objects())
    finally:
        gc.callbacks.remove(probe)
    assert probe.young_while_held > 0  # the fills ran while held, and allocated
    assert True in [not h for h in probe.held]  # full collections did run on this thread...
    assert probe.held.count(True) == 0  # ... never while a load was being shown
    assert app.full_gc.freezes >= 8  # numbers and findings of 4 loads
    assert gc.get_threshold() == EAGER  # the app gave the thresholds back


class _Junk:
    """A cycle only the collector can free (weak-referenceable, so the test sees it go)."""

    def __init__(self) -> None:
        self.me = self


async def test_frozen_ui_garbage_is_freed_by_the_periodic_collection(
        snapshot: MeshSnapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cyclic garbage the UI thread left in the oldest generation is frozen with the next load
    (not collected: freezing is what keeps full collections short), and the worker's periodic
    collection frees it: memory stays bounded over a long session."""
    monkeypatch.setattr(data, "COLLECT_EVERY", 3)
    monkeypatch.setattr(data, "_refreshes", 0)  # the first load is 1: the second refresh is 3
    app = live_app(snapshot)
    enabled = gc.isenabled()
    gc.disable()  # only the dashboard's own collections may free the junk
    try:
        alive = await refreshes_after_junk(app)
    finally:
        if enabled:
            gc.enable()
    # Frozen by the refresh after it became garbage (refresh 2), freed by the periodic
    # collection (refresh 3, in the worker), and gone since.
    assert alive == [200, 0, 0, 0]


async def refreshes_after_junk(app: MeshobsApp) -> list[int]:
    """Leave 200 cycles of garbage in the oldest generation, refresh 4 times: how many are
    alive after each refresh."""
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: settled(app))
        junk = [_Junk() for _ in range(200)]
        refs = [weakref.ref(j) for j in junk]
        gc.collect(1)  # survivors of the young generations: the junk is in the oldest one now
        del junk
        alive = []
        for _ in range(4):
            await refresh(pilot, app)
            alive.append(sum(r() is not None for r in refs))
    return alive


def test_settling_while_a_worker_builds_collects_nothing() -> None:
    """A load shown while the next one is being built (r pressed during a fill): the worker's
    pause holds the collector off, and the settle must not walk its young objects (millions at
    scale) with an explicit collection; it only freezes, and gives the thresholds back."""
    from meshobs.gc_pause import gc_paused
    from meshobs.tui.gc_policy import NO_FULL, FullCollections

    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    policy, before = FullCollections(), gc.get_threshold()
    policy.hold()
    assert gc.get_threshold()[2] == NO_FULL
    gc.callbacks.append(record)
    try:
        with gc_paused():  # as the worker's numbers() and diagnosed() do
            policy.settled()
    finally:
        gc.callbacks.remove(record)
    assert started == [] and policy.freezes == 1
    assert gc.get_threshold() == before and not policy.held


def test_with_the_load_process_full_collections_stay_off_and_run_every_n_loads() -> None:
    """The load process's UI (``collect_every``): no automatic full collection for the app's
    life, one explicit unfreeze-and-collect of the UI's own heap every n loads shown."""
    from meshobs.tui.gc_policy import NO_FULL, QUIET_S, FullCollections

    policy, before = FullCollections(collect_every=2), gc.get_threshold()
    junk = _Junk()
    ref = weakref.ref(junk)
    policy.hold()
    try:
        policy.settled()  # freezes the junk's cycle
        del junk
        assert policy.held and gc.get_threshold()[2] == NO_FULL and policy.full_collections == 0
        assert ref() is not None  # frozen: only the periodic collection frees it
        policy.settled()  # due now, but it waits for a quiet moment
        assert policy.full_collections == 0 and ref() is not None
        assert not policy.when_quiet(QUIET_S / 10)  # a key came just now
        assert policy.when_quiet(QUIET_S)
        assert policy.full_collections == 1 and ref() is None
        assert not policy.when_quiet(QUIET_S)  # once per due
        assert policy.held and gc.get_threshold()[2] == NO_FULL
    finally:
        policy.release()
        gc.unfreeze()
    assert gc.get_threshold() == before and not policy.held


def test_a_due_collection_runs_even_for_a_user_who_never_stops_typing() -> None:
    """Memory stays bounded: after OVERDUE_LOADS more loads the due collection runs, keys or not."""
    from meshobs.tui.gc_policy import OVERDUE_LOADS, FullCollections

    policy = FullCollections(collect_every=1)
    policy.hold()
    try:
        policy.settled()
        junk = _Junk()
        ref = weakref.ref(junk)
        policy.settled()  # the junk's cycle is frozen with this load
        del junk
        for _ in range(OVERDUE_LOADS - 2):
            policy.settled()
            assert not policy.when_quiet(0.0)
        policy.settled()
        assert policy.when_quiet(0.0) and ref() is None
    finally:
        policy.release()
        gc.unfreeze()
