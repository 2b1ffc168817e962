"""Pilot tests: drive the dashboard with keys on the ecommerce demo and assert on what it shows
and on the messages it posts."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from meshobs.bundle import read_bundle
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, ServiceRef, SourceState, SourceStatus
from meshobs.tui.app import MeshobsApp, make_app
from meshobs.tui.data import DataFailed, DataLoaded, SnapshotLoader
from meshobs.tui.screens.finding import FindingScreen
from meshobs.tui.screens.findings import FindingsScreen
from meshobs.tui.screens.help import HelpScreen
from meshobs.tui.screens.overview import OverviewScreen
from meshobs.tui.screens.service import ServiceScreen
from meshobs.tui.widgets.source_bar import SourceBar
from meshobs.tui.widgets.status_line import StatusLine
from meshobs.tui.widgets.tables import SyncTable

pytestmark = pytest.mark.anyio  # anyio's pytest plugin runs the async tests (no pytest-asyncio)

CART = ServiceRef("shop", "cart-service")
FIXED = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cursor blink (a blinking cursor makes screens differ by the millisecond)."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_DEMO: list[tuple[object, MeshSnapshot]] = []


def demo_pair() -> tuple[object, MeshSnapshot]:
    """The ecommerce demo bundle and its snapshot, built once for every TUI test module."""
    if not _DEMO:
        bundle = load_demo("ecommerce")
        _DEMO.append((bundle, build_snapshot(bundle, origin="demo:ecommerce")))
    return _DEMO[0]


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_pair()


def app_for(demo: tuple[object, MeshSnapshot], produce: Callable[[], MeshSnapshot] | None = None,
            **kwargs: object) -> MeshobsApp:
    bundle, snapshot = demo
    loader = SnapshotLoader(produce or (lambda: snapshot), live=True, description="demo:ecommerce",
                            bundle=bundle)  # type: ignore[arg-type]
    return make_app(loader=loader, refresh_s=0, clock=lambda: FIXED, **kwargs)  # type: ignore[arg-type]


async def settle(app: MeshobsApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


def status_text(app: MeshobsApp) -> str:
    return str(app.screen.query_one(StatusLine).render())


def source_bar(app: MeshobsApp) -> str:
    return str(app.screen.query_one(SourceBar).render())


def table_keys(table: SyncTable) -> list[str]:
    assert table.row_count == len(table.shown_keys)
    return table.shown_keys


async def test_overview_worst_first_and_enter_opens_cart_service(demo: tuple[object, MeshSnapshot]) -> None:
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#services", SyncTable)
        keys = table_keys(table)
        assert keys[0] == "shop/cart-service"  # 45 % errors: the worst service leads
        assert keys[-1] == "shop/product-service"  # the only healthy one comes last
        assert len(keys) == 5
        await pilot.press("enter")  # one keystroke from the overview
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen)
        assert app.screen.ref == CART


async def test_search_then_enter_reaches_cart_service(demo: tuple[object, MeshSnapshot]) -> None:
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("o")  # sort by name: cart-service is no longer first by luck
        assert table_keys(app.screen.query_one("#services", SyncTable))[0] == "shop/cart-service"
        await pilot.press("o", "slash", *"cart", "enter")
        table = app.screen.query_one("#services", SyncTable)
        assert table_keys(table) == ["shop/cart-service"]
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen) and app.screen.ref == CART


async def test_cart_service_diagnosis_ranks_the_database_first(demo: tuple[object, MeshSnapshot]) -> None:
    app = app_for(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter", "d")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ServiceScreen) and screen.view is not None
        findings = screen.query_one("#findings", DataTable)
        first = [str(c) for c in findings.get_row_at(0)]
        assert first[0] == "1" and first[2] == "MSH0406" and "database-service" in first[3]
        codes = {str(findings.get_row_at(i)[2]) for i in range(findings.row_count)}
        assert {"MSH0401", "MSH0402", "MSH0407"} <= codes
        checklist = str(screen.query_one("#checklist").render())
        assert "traffic" in checklist and "proxy" in checklist
        # proxies of cart-v1: two ready pods, workload cert expiry shown
        proxies = screen.query_one("#proxy-table", DataTable)
        assert proxies.row_count == 2
        assert {str(proxies.get_row_at(i)[1]) for i in range(2)} == {"yes"}
        # copy the rank-1 finding as markdown
        await pilot.press("c")
        assert app.clipboard.startswith("**MSH0406**") and "```json" in app.clipboard


async def test_filters_by_health_namespace_and_text(demo: tuple[object, MeshSnapshot]) -> None:
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#services", SyncTable)
        await pilot.press("h")  # health: failing
        assert len(table_keys(table)) == 4 and "shop/product-service" not in table_keys(table)
        await pilot.press("h", "h")  # degraded, then healthy
        assert table_keys(table) == ["shop/product-service"]
        await pilot.press("escape", "n")  # clear, then the first namespace (istio-system)
        assert table_keys(table) == ["istio-system/istio-ingressgateway"]
        await pilot.press("escape", "slash", *"ns:shop data", "enter")
        assert table_keys(table) == ["shop/database-service"]
        await pilot.press("escape")
        assert len(table_keys(table)) == 5


async def test_refresh_while_a_source_fails_keeps_the_screen(demo: tuple[object, MeshSnapshot]) -> None:
    _bundle, snapshot = demo
    calls = []

    def produce() -> MeshSnapshot:
        calls.append(1)
        if len(calls) == 1:
            return snapshot
        jaeger = SourceStatus("jaeger", SourceState.ERROR, "timed out after 5 s", kind="jaeger")
        others = tuple(s for s in snapshot.sources if s.kind != "jaeger")
        return dataclasses.replace(snapshot, sources=(*others, jaeger), traces=())

    app = app_for(demo, produce)
    posted: list[object] = []
    async with app.run_test(size=(120, 30), message_hook=posted.append) as pilot:
        await settle(app, pilot)
        assert "√ jaeger" in source_bar(app)
        await pilot.press("r")
        await settle(app, pilot)
        assert len(calls) == 2
        loaded = [m for m in posted if isinstance(m, DataLoaded)]
        assert len(loaded) == 2
        assert [(e.kind, e.state, e.why) for e in app.board if e.kind == "jaeger"] == \
            [("jaeger", "down", "timed out after 5 s")]
        assert "× jaeger down: timed out after 5 s" in source_bar(app)
        assert len(app.screen.query_one("#services", SyncTable).rows) == 5  # the rest keeps working
        await pilot.press("enter")
        await settle(app, pilot)
        assert "× jaeger down" in source_bar(app)  # on every screen


async def test_a_failed_load_is_reported_and_old_data_stays(demo: tuple[object, MeshSnapshot]) -> None:
    _bundle, snapshot = demo
    calls = []

    def produce() -> MeshSnapshot:
        calls.append(1)
        if len(calls) > 1:
            raise ConnectionError("cannot reach Prometheus at http://prom:9090")
        return snapshot

    app = app_for(demo, produce)
    posted: list[object] = []
    async with app.run_test(size=(120, 30), message_hook=posted.append) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        failed = [m for m in posted if isinstance(m, DataFailed)]
        assert len(failed) == 1 and "prom:9090" in failed[0].error
        assert "load failed" in status_text(app)
        assert len(app.screen.query_one("#services", SyncTable).rows) == 5
        assert app.is_running


async def test_input_is_not_blocked_while_loading(demo: tuple[object, MeshSnapshot]) -> None:
    _bundle, snapshot = demo
    release = threading.Event()

    def slow() -> MeshSnapshot:
        release.wait(10)
        return snapshot

    app = app_for(demo, slow)
    async with app.run_test(size=(80, 24)) as pilot:
        started = time.perf_counter()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.loading  # help opened mid-load
        assert time.perf_counter() - started < 5
        release.set()
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen) and not app.loading


async def test_pause_stops_the_live_refresh(demo: tuple[object, MeshSnapshot]) -> None:
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.loads == 1
        app._tick()
        await settle(app, pilot)
        assert app.loads == 2
        await pilot.press("p")
        app._tick()
        await settle(app, pilot)
        assert app.loads == 2 and "paused" in status_text(app)


async def test_findings_screen_groups_and_enter_jumps_to_subject(demo: tuple[object, MeshSnapshot]) -> None:
    app = app_for(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("f")
        await settle(app, pilot)
        assert isinstance(app.screen, FindingsScreen)
        table = app.screen.query_one("#findings", SyncTable)
        severities = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        # the demo's findings are errors only (its one info finding, MSH0502, is now given only
        # when asked for); the order by severity weight is checked below
        assert severities[0] == "error"
        rows = table.rows_shown
        weights = [r.finding.severity.weight for r in rows]  # type: ignore[attr-defined]
        assert weights == sorted(weights, reverse=True)
        # Within a severity the engine's rank orders the list: the root cause leads.
        assert str(table.get_row_at(0)[2]) == "MSH0406" and str(table.get_row_at(0)[0]) == "1"
        errors = [r.rank for r in rows if r.finding.severity.value == "error"]  # type: ignore[attr-defined]
        assert errors == sorted(errors) and errors[:3] == [1, 2, 3]
        # enter opens the finding itself (evidence, doc); enter again its service; esc back.
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, FindingScreen) and app.screen.finding == rows[0].finding  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen)
        assert app.screen.ref == rows[0].finding.service  # type: ignore[attr-defined]
        await pilot.press("escape", "escape")
        await settle(app, pilot)
        assert isinstance(app.screen, FindingsScreen)


async def test_save_writes_a_bundle_that_replays(demo: tuple[object, MeshSnapshot], tmp_path: Path) -> None:
    app = app_for(demo, save_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
    path = tmp_path / "meshobs-20261120T123000Z.tar.gz"
    assert path.is_file()
    replay = build_snapshot(read_bundle(path))
    assert {str(s.ref) for s in replay.services} >= {"shop/cart-service", "shop/database-service"}


async def test_cli_app_shows_the_demo_without_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(None, None, refresh_s=0, clock=lambda: FIXED)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.analysis is not None and app.analysis.snapshot.origin == "demo:ecommerce"
        assert "frozen" in status_text(app)
        assert not app.loader.live
