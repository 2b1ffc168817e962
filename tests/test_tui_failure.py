"""Failure is loud: every source's state on every screen; a refresh where nothing answers keeps
the last good data, greyed and labelled with its age; a source that fails alone is shown from
its last good answer, marked stale; no data is never counted as healthy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from meshobs.bundle import Bundle
from meshobs.model import MeshSnapshot, SourceState, SourceStatus
from meshobs.raw import Payload, RawSource
from meshobs.tui.data import LastGood, SnapshotLoader
from meshobs.tui.sources import SourceHistory, Stale, source_board
from meshobs.tui.widgets.tables import SyncTable
from tests.test_tui import _deterministic, anyio_backend, app_for, demo_pair, settle, source_bar, status_text  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_pair()
T0 = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def all_down(snapshot: MeshSnapshot) -> MeshSnapshot:
    """What a refresh returns when the whole mesh is unreachable: every source failed, no data."""
    down = tuple(SourceStatus(s.name, SourceState.ERROR, f"cannot reach {s.kind} (connection refused)", kind=s.kind)
                 for s in snapshot.sources)
    return MeshSnapshot(time=snapshot.time, window_s=snapshot.window_s, sources=down, origin=snapshot.origin)


async def test_all_sources_down_after_a_good_load_keeps_the_data_greyed_and_labelled(demo) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    calls: list[int] = []
    clock = [T0]

    def produce() -> MeshSnapshot:
        calls.append(1)
        return snapshot if len(calls) == 1 else all_down(snapshot)

    app = app_for(demo, produce)
    app.clock = lambda: clock[0]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#services", SyncTable)
        assert table.row_count == 5 and "STALE" not in status_text(app)
        clock[0] = T0 + timedelta(seconds=75)
        await pilot.press("r")
        await settle(app, pilot)
        assert len(calls) == 2
        # Not replaced by an empty mesh: the five services stay, greyed, with their age.
        assert table.row_count == 5 and app.analysis is not None and len(app.analysis.rows) == 5
        assert app.screen.has_class("-stale")
        assert "STALE: last good data from 12:30:00 (1m15s ago)" in status_text(app)
        states = {e.kind: (e.state, e.why) for e in app.board}
        assert set(states) == {"kubernetes", "prometheus", "envoy", "jaeger"}
        assert all(state == "stale" for state, _why in states.values())
        assert states["prometheus"][1] == "cannot reach prometheus (connection refused)"
        bar = source_bar(app)
        for kind in states:
            assert f"‼ {kind}" in bar
        assert "stale since 12:30:00 (1m15s)" in bar
        # The service screen says the same.
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen.has_class("-stale") and "‼ prometheus" in source_bar(app)
        # The mesh answers again: the stale marks go.
        calls.clear()
        await pilot.press("escape", "r")
        await settle(app, pilot)
        assert not app.screen.has_class("-stale") and "STALE" not in status_text(app)
        assert {e.state for e in app.board} == {"ok"}


async def test_a_first_load_with_every_source_down_says_so(demo) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    app = app_for(demo, lambda: all_down(snapshot))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert {e.state for e in app.board} == {"down"}
        assert "× kubernetes down: cannot reach kubernetes" in source_bar(app)
        panel = str(app.screen.query_one("#neighbourhood").render())
        assert "no source answered" in panel


async def test_without_traffic_metrics_no_service_is_healthy(demo) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    no_prometheus = dataclasses.replace(
        snapshot, edges=(), series=(),
        sources=tuple(dataclasses.replace(s, state=SourceState.ERROR, message="connection refused")
                      if s.kind == "prometheus" else s for s in snapshot.sources))
    app = app_for(demo, lambda: no_prometheus)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert app.analysis is not None
        health = {str(r.ref): r.health for r in app.analysis.rows}
        assert "healthy" not in health.values()
        assert health["shop/product-service"] == "unknown"  # healthy with traffic data; unknown without
        unknown = sum(1 for h in health.values() if h == "unknown")
        assert f"0 healthy · {unknown} unknown" in status_text(app)


async def test_pause_on_a_recorded_bundle_says_there_is_nothing_to_pause(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    app.loader.live = False  # type: ignore[attr-defined]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused
        notes = [n.message for n in app._notifications]
        assert any("frozen" in m for m in notes) and not any("paused" in m for m in notes)


def raw(name: str, kind: str, error: str | None = None, body: str = "{}") -> RawSource:
    source = RawSource(name, kind)
    source.add(Payload("query:requests", body=None if error else body, error=error, status=None if error else 200))
    return source


def test_last_good_shows_a_failing_source_from_its_last_answer() -> None:
    memory = LastGood()
    first = Bundle(time=T0, window_s=300, sources=[raw("prometheus", "prometheus", body='{"a": 1}'),
                                                   raw("jaeger", "jaeger")])
    kept, stale = memory.apply(first, T0)
    assert stale == {} and kept.sources == first.sources
    later = T0 + timedelta(minutes=2)
    second = Bundle(time=later, window_s=300, sources=[raw("prometheus", "prometheus", error="connection refused"),
                                                       raw("jaeger", "jaeger", body='{"b": 2}')])
    kept, stale = memory.apply(second, later)
    assert stale == {"prometheus": Stale(T0, "connection refused")}
    assert kept.sources[0] is first.sources[0] and kept.sources[1] is second.sources[1]
    # A source that never answered has nothing to show: it stays failed (down, not stale).
    third = Bundle(time=later, window_s=300, sources=[raw("xray", "xray", error="AccessDenied")])
    kept, stale = memory.apply(third, later)
    assert stale == {} and kept.sources[0].error is None and kept.sources[0].payloads[0].error == "AccessDenied"
    memory.clear()
    _kept, stale = memory.apply(second, later)
    assert stale == {}  # after a time-range change earlier answers are not shown


def test_source_board_groups_envoy_pods_and_orders_by_kind() -> None:
    statuses = [SourceStatus("jaeger", SourceState.NO_DATA, "no traces", kind="jaeger"),
                *(SourceStatus(f"envoy:shop/p{i}", SourceState.OK, kind="envoy") for i in range(8)),
                SourceStatus("envoy:shop/p8", SourceState.ERROR, "proxy unreachable: refused", kind="envoy"),
                SourceStatus("envoy:shop/p9", SourceState.ERROR, "proxy unreachable: refused", kind="envoy"),
                SourceStatus("prometheus", SourceState.OK, kind="prometheus")]
    board = source_board(statuses, {"prometheus": Stale(T0, "timed out")})
    assert [(e.kind, e.state, e.total, e.failed) for e in board] == [
        ("prometheus", "stale", 1, 0), ("envoy", "down", 10, 2), ("jaeger", "no data", 1, 0)]
    now = T0 + timedelta(seconds=45)
    assert [e.text(now) for e in board] == [
        "‼ prometheus stale since 12:30:00 (45s): timed out",
        "× envoy 2/10 down: proxy unreachable: refused",
        "– jaeger no data: no traces"]


def test_history_marks_what_stays_on_screen_as_stale_since_it_last_answered(demo) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    history = SourceHistory()
    history.observe(snapshot, T0, {})
    failed = all_down(snapshot).sources
    stale, board = history.after_failure(failed, snapshot)
    assert set(stale) == {s.name for s in snapshot.sources}
    assert all(s.since == T0 and "connection refused" in s.why for s in stale.values())
    assert {e.state for e in board} == {"stale"}


class EveryAnswerOld(SnapshotLoader):
    """A live loader whose second collection got nothing: every source is its last answer."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        super().__init__(lambda: snapshot, live=True)
        self.loads = 0

    def load(self):  # type: ignore[no-untyped-def]
        self.loads += 1
        return super().load()

    def stale(self) -> dict[str, Stale]:
        if self.loads < 2:
            return {}
        return {s.name: Stale(T0, "connection refused") for s in self.produce().sources}


async def test_a_live_refresh_where_every_source_is_its_last_answer_is_stale_as_a_whole(demo) -> None:  # type: ignore[no-untyped-def]
    from meshobs.tui.app import make_app

    _bundle, snapshot = demo
    app = make_app(loader=EveryAnswerOld(snapshot), refresh_s=0, clock=lambda: T0)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert app.stale_since == T0 and app.screen.has_class("-stale")
        assert "STALE" in status_text(app)
        assert {e.state for e in app.board} == {"stale"}
        assert all(s.state is SourceState.ERROR for s in app.failed_attempt)
