"""The two-stage render: the overview shows the traffic as soon as the sources have answered,
"diagnosing…" while the engine runs (never a healthy look), then the findings; on a refresh the
previous refresh's health and findings stay, marked, until the new ones replace them.

The diagnosis is held back by a loader whose ``settings()`` (the first thing the diagnosis
asks for) waits on an event the test sets, so each stage can be looked at on its own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.widgets import Static

from meshobs.checks.base import Settings
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.tui.app import MeshobsApp, make_app
from meshobs.tui.data import DiagnosisReady, SnapshotLoader
from meshobs.tui.screens.findings import FindingsScreen
from meshobs.tui.screens.proxy import ProxyScreen
from meshobs.tui.screens.service import ServiceScreen
from meshobs.tui.widgets.neighbourhood import Neighbourhood
from meshobs.tui.widgets.status_line import StatusLine
from meshobs.tui.widgets.tables import SyncTable
from tests.support.builders import busier
from tests.test_tui import _deterministic, anyio_backend  # noqa: F401  (fixtures: no cursor blink, asyncio)

pytestmark = pytest.mark.anyio

FIXED = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
CART = ServiceRef("shop", "cart-service")


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    bundle = load_demo("ecommerce")
    return bundle, build_snapshot(bundle, origin="demo:ecommerce")


class HeldLoader(SnapshotLoader):
    """A live loader whose diagnoses wait until the test lets them run (one ``go`` each)."""

    def __init__(self, produce: Callable[[], MeshSnapshot], bundle: object, fail: bool = False) -> None:
        super().__init__(produce, live=True, description="demo:ecommerce", bundle=bundle)  # type: ignore[arg-type]
        self.go = threading.Semaphore(0)
        self.fail = fail

    def settings(self) -> tuple[Settings, Sequence[Any]]:
        assert self.go.acquire(timeout=20), "the test never let the diagnosis run"
        if self.fail:
            raise RuntimeError("engine exploded")
        return super().settings()


def held_app(demo: tuple[object, MeshSnapshot], **kwargs: Any) -> tuple[MeshobsApp, HeldLoader]:
    bundle, snapshot = demo
    calls = [0]

    def produce() -> MeshSnapshot:
        calls[0] += 1
        return snapshot if calls[0] == 1 else busier(snapshot, 2.0)

    loader = HeldLoader(produce, bundle, **kwargs)
    return make_app(loader=loader, refresh_s=0, clock=lambda: FIXED), loader


async def until(pilot: Any, condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("the dashboard never got there")


def shown(app: MeshobsApp) -> list[tuple[str, ...]]:
    """The overview as displayed: every row's cells as text."""
    table = app.screen.query_one("#services", SyncTable)
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


def column(app: MeshobsApp, key: str) -> list[str]:
    keys = [c[0] for c in app.screen.query_one("#services", SyncTable)._columns]
    return [row[keys.index(key)] for row in shown(app)]


def status(app: MeshobsApp) -> str:
    return str(app.screen.query_one(StatusLine).render())


def settled(app: MeshobsApp) -> bool:
    table = app.screen.query_one("#services", SyncTable)
    return app.analysis is not None and table.settled and table.row_count == len(app.analysis.rows)


async def test_table_first_then_findings(demo: tuple[object, MeshSnapshot]) -> None:
    app, loader = held_app(demo)
    posted: list[object] = []
    async with app.run_test(size=(120, 30), message_hook=posted.append) as pilot:
        await until(pilot, lambda: settled(app))
        # Stage one: every service with its traffic, nobody judged yet.
        assert app.analysis is not None and app.analysis.pending and app.diagnosing
        assert len(shown(app)) == 5
        assert set(column(app, "health")) == {"diagnosing"}
        assert set(column(app, "findings")) == {"…"}
        assert "12.0" in column(app, "rate") and "45.0%" in column(app, "errors")  # cart-service's numbers
        assert column(app, "errors")[0] == "45.0%"  # worst errors first while health is unknown
        assert "diagnosing…" in status(app)
        assert "healthy" not in status(app) and "failing" not in status(app)
        table = app.screen.query_one("#services", SyncTable)
        assert "diagnosing…" in str(table.border_subtitle)
        assert "diagnosing…" in str(app.screen.query_one(Neighbourhood).render())
        assert not [m for m in posted if isinstance(m, DiagnosisReady)]

        loader.go.release()
        await until(pilot, lambda: not app.loading and settled(app))
        # Stage two: the same snapshot, diagnosed.
        assert app.analysis is not None and not app.analysis.pending and not app.diagnosing
        assert column(app, "health") == ["× failing"] * 4 + ["✓ healthy"]
        assert column(app, "findings")[0] == "5"
        assert app.screen.query_one("#services", SyncTable).shown_keys[0] == "shop/cart-service"
        assert "4 failing · 1 healthy · 0 unknown" in status(app) and "diagnosing" not in status(app)
        assert "diagnosing" not in str(table.border_subtitle)
        assert len([m for m in posted if isinstance(m, DiagnosisReady)]) == 1
        assert app.loads == 1  # one load, shown in two stages


async def test_refresh_keeps_previous_findings_marked_until_replaced(demo: tuple[object, MeshSnapshot]) -> None:
    app, loader = held_app(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        loader.go.release()
        await until(pilot, lambda: not app.loading and settled(app))
        before = column(app, "rate")
        await pilot.press("r")
        await until(pilot, lambda: app.loads == 2 and settled(app))
        assert app.analysis is not None and app.analysis.from_previous
        # New numbers (twice the traffic), the previous verdict marked as such.
        assert column(app, "rate") != before and "24.0" in column(app, "rate")
        assert column(app, "health") == ["× failing*"] * 4 + ["✓ healthy*"]
        assert column(app, "findings")[0] == "5*"
        assert "diagnosing… (previous refresh: 4 failing" in status(app)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FindingsScreen))
        await pilot.pause()
        findings = app.screen.query_one(SyncTable)
        assert findings.row_count == len(app.analysis.findings) > 0  # the previous ones, listed
        assert "previous refresh" in str(findings.border_subtitle)

        loader.go.release()
        await until(pilot, lambda: not app.loading)
        await pilot.pause()
        assert "previous refresh" not in str(findings.border_subtitle)
        await pilot.press("escape")
        await until(pilot, lambda: settled(app))
        assert column(app, "health") == ["× failing"] * 4 + ["✓ healthy"]
        assert "24.0" in column(app, "rate")


async def test_screens_say_diagnosing_never_no_findings(demo: tuple[object, MeshSnapshot]) -> None:
    app, loader = held_app(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: settled(app))
        await pilot.press("f")  # the mesh's findings: none yet, and not "every check passed"
        await until(pilot, lambda: isinstance(app.screen, FindingsScreen))
        await pilot.pause()
        assert app.screen.query_one(SyncTable).row_count == 0
        detail = str(app.screen.query_one("#finding-detail", Static).render())
        assert "diagnosing…" in detail and "passed" not in detail
        await pilot.press("escape")
        app.open_service(CART)
        await until(pilot, lambda: isinstance(app.screen, ServiceScreen) and app.screen.view is not None)
        screen = app.screen
        assert isinstance(screen, ServiceScreen) and screen.verdict == "pending"
        assert "diagnosing" in str(screen.query_one("#red", Static).render())
        assert "12.0 req/s" in str(screen.query_one("#red", Static).render())  # the numbers are there
        detail = str(screen.query_one("#finding-detail", Static).render())
        assert "diagnosing…" in detail and "passed" not in detail
        pod = next(p.pod for p in app.analysis.snapshot.proxies if p.pod.startswith("cart-"))  # type: ignore[union-attr]
        app.push_screen(ProxyScreen("shop", pod))
        await until(pilot, lambda: isinstance(app.screen, ProxyScreen) and app.screen.view is not None)
        assert "diagnosing…" in str(app.screen.query_one("#proxy-summary", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)

        loader.go.release()
        await until(pilot, lambda: not app.loading and screen.verdict == "")
        assert [f.code for f in screen.view.findings]  # type: ignore[union-attr]
        assert "diagnosing" not in str(screen.query_one("#red", Static).render())
        assert screen.query_one("#findings", SyncTable).row_count == len(screen.view.findings)  # type: ignore[union-attr]


async def test_an_engine_that_fails_is_not_health(demo: tuple[object, MeshSnapshot]) -> None:
    app, loader = held_app(demo, fail=True)
    async with app.run_test(size=(120, 30)) as pilot:
        loader.go.release()
        await until(pilot, lambda: not app.loading and settled(app))
        assert app.analysis is not None and app.analysis.diagnosis == "failed"
        assert set(column(app, "health")) == {"? unknown"}
        assert "could not diagnose: RuntimeError: engine exploded" in status(app)
        assert "5 unknown" in status(app) and "0 healthy" in status(app)
        assert app.is_running and len(shown(app)) == 5  # the numbers stay


async def test_no_worker_reprs_a_load(demo: tuple[object, MeshSnapshot], monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual names a worker after repr() of its arguments unless it has a description: the
    repr of a 1,000-service load held the UI thread for seconds. A load that cannot be repr'd
    goes through every worker that is handed one (load, service view, proxies) unread."""
    from meshobs.tui.data import Analysis

    reprs: list[str] = []

    def counted(self: object) -> str:  # Textual swallows an exception here: count instead
        reprs.append(type(self).__name__)
        return "Analysis(…)"

    monkeypatch.setattr(Analysis, "__repr__", counted)
    app, loader = held_app(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        loader.go.release()
        await until(pilot, lambda: not app.loading and settled(app))
        app.open_service(CART)
        await until(pilot, lambda: isinstance(app.screen, ServiceScreen) and app.screen.view is not None)
        await pilot.press("r")
        loader.go.release()
        await until(pilot, lambda: app.loads == 2 and not app.loading)
        await pilot.press("colon", *"proxies", "enter")
        await until(pilot, lambda: app.screen.query("#proxy-list") and
                    app.screen.query_one("#proxy-list", SyncTable).row_count > 0)
        assert app.is_running and app.last_error is None
        assert reprs == []


async def test_a_range_change_that_brings_nothing_still_ends_the_diagnosis(demo: tuple[object, MeshSnapshot]) -> None:
    """``:range`` asks for a new load while the shown one is being diagnosed; when no source
    answers the new range, the shown numbers stay, and so does their diagnosis: it arrives and
    replaces "diagnosing…" (it used to be dropped as superseded, leaving "diagnosing…" for good)."""
    from dataclasses import replace

    from meshobs.model import SourceState

    bundle, snapshot = demo
    down = replace(snapshot, sources=tuple(replace(s, state=SourceState.ERROR, message="connection refused")
                                           for s in snapshot.sources))
    produced = iter([snapshot, down])
    loader = HeldLoader(lambda: next(produced), bundle)
    app = make_app(loader=loader, refresh_s=0, clock=lambda: FIXED)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: settled(app) and app.diagnosing)
        assert "diagnosing…" in status(app)
        await pilot.press("colon", *"range 15m", "enter")
        await until(pilot, lambda: app.stale_since is not None)  # the new range: nothing answered
        assert app.analysis is not None and app.analysis.pending  # the numbers shown are the old range's
        loader.go.release()  # the shown load's diagnosis
        loader.go.release()  # the new range's (nothing to show)
        await until(pilot, lambda: not app.loading and not app.analysis.pending)  # type: ignore[union-attr]
        await until(pilot, lambda: settled(app) and "diagnosing" not in status(app))
        assert column(app, "health") == ["× failing"] * 4 + ["✓ healthy"]
        assert "4 failing · 1 healthy" in status(app)
        assert "diagnosing" not in str(app.screen.query_one("#services", SyncTable).border_subtitle)


async def test_the_graph_marks_the_previous_refreshs_health(demo: tuple[object, MeshSnapshot]) -> None:
    """While a refresh is diagnosed the graph shows the previous health with ``*``, as the
    overview does, and drops the mark once the new diagnosis is in."""
    from meshobs.tui.screens.graph import GraphList, GraphScreen

    app, loader = held_app(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        loader.go.release()
        await until(pilot, lambda: not app.loading and settled(app))
        await pilot.press("r")
        await until(pilot, lambda: app.loads == 2 and settled(app))
        assert app.analysis is not None and app.analysis.from_previous
        app.open_graph(CART)
        await until(pilot, lambda: isinstance(app.screen, GraphScreen) and app.screen.view is not None)
        screen = app.screen
        assert isinstance(screen, GraphScreen) and screen.view is not None

        def texts() -> list[str]:
            graph = screen.query_one(GraphList)
            return [str(graph.get_option_at_index(i).prompt) for i in range(graph.option_count)]

        centre = next(t for t in texts() if "shop/cart-service" in t and "┃" in t)
        assert "× failing*" in centre
        edges = [t for t in texts() if "──▶" in t]
        assert len(edges) == 2 and all(t.rstrip().endswith("failing*") for t in edges)
        assert "previous refresh" in str(screen.query_one(GraphList).border_subtitle)

        loader.go.release()
        await until(pilot, lambda: not app.loading and screen.view is not None and not screen.view.previous)
        await pilot.pause()
        assert not any("*" in t for t in texts())
        assert "× failing" in next(t for t in texts() if "shop/cart-service" in t and "┃" in t)
        assert not str(screen.query_one(GraphList).border_subtitle)
