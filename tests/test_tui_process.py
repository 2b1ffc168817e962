"""The dashboard with its loads built in a load process (``make_app(process=True)``, as the CLI
runs it): the same rows and views as thread workers, errors in the load process shown as a
message with the rows kept, and no process left behind when the app quits.

Each test spawns a process that imports meshobs (1-3 s on the shared machine)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from meshobs.bundle import Bundle
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.tui.app import MeshobsApp, make_app
from meshobs.tui.data import SourceLoader
from meshobs.tui.screens.graph import GraphScreen
from meshobs.tui.screens.service import ServiceScreen
from tests.support.tui import settled, until

pytestmark = pytest.mark.anyio

FIXED = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
CART = ServiceRef("shop", "cart-service")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SecondLoadFails(SourceLoader):
    """The demo, then a load that raises (or, with ``exit_code``, a load process that dies)."""

    def __init__(self, exit_code: int | None = None) -> None:
        super().__init__(None, None, clock=_fixed)
        self.loads, self.exit_code = 0, exit_code

    def load(self) -> tuple[Bundle | None, MeshSnapshot]:
        self.loads += 1
        if self.loads >= 2:
            if self.exit_code is not None:
                os._exit(self.exit_code)
            raise RuntimeError("the mesh's Prometheus answered 500")
        return super().load()


class Stuck(SourceLoader):
    """A load that never ends (a backend that hangs past any timeout)."""

    def load(self) -> tuple[Bundle | None, MeshSnapshot]:
        time.sleep(600)
        raise AssertionError("unreachable")


def _fixed() -> datetime:
    return FIXED


def shown(app: MeshobsApp) -> list[tuple[str, tuple[str, ...]]]:
    assert app.analysis is not None
    return [(r.key, r.cells()) for r in app.analysis.rows]


async def test_the_load_process_shows_what_thread_workers_show() -> None:
    """Rows, findings, the service screen and the graph are the same with the model kept in
    the load process; the UI's snapshot is only the header (no edges, proxies or traces)."""
    seen: dict[bool, Any] = {}
    for process in (False, True):
        app = make_app(loader=SourceLoader(None, None, clock=_fixed), refresh_s=0, clock=_fixed, process=process)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: settled(app))  # noqa: B023 (awaited in the loop)
            assert app.analysis is not None
            findings = [(f.finding.code, str(f.finding.subject)) for f in app.analysis.findings]
            app.open_service(CART)
            await until(pilot, lambda: isinstance(app.screen, ServiceScreen) and app.screen.view is not None)  # noqa: B023
            screen = app.screen
            assert isinstance(screen, ServiceScreen) and screen.view is not None
            service = ([n.peer for n in screen.view.neighbours], screen.verdict)
            app.open_graph(CART)
            await until(pilot, lambda: isinstance(app.screen, GraphScreen) and app.screen.view is not None)  # noqa: B023
            graph = app.screen
            assert isinstance(graph, GraphScreen) and graph.view is not None
            seen[process] = (shown(app), findings, service, [e.peer for e in graph.view.callees],
                             app.analysis.snapshot.edges)
    assert seen[True][:4] == seen[False][:4]
    assert seen[False][0] and seen[False][1]  # the demo has services and findings
    assert seen[True][4] == () and seen[False][4]  # the UI process does not hold the model


async def test_a_load_failing_in_the_load_process_is_a_message_and_the_rows_stay() -> None:
    app = make_app(loader=SecondLoadFails(), refresh_s=0, clock=_fixed, process=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: settled(app))
        before = shown(app)
        app.action_refresh()
        await until(pilot, lambda: app.last_error is not None)
        assert app.last_error == "load failed: the mesh's Prometheus answered 500"
        assert shown(app) == before and not app.loading
        assert app.stale_since is not None  # the rows kept are marked as the last good ones
        assert app.load_process is not None and app.load_process.process.is_alive()


async def test_a_load_process_that_dies_is_reported_and_the_rows_stay() -> None:
    app = make_app(loader=SecondLoadFails(exit_code=3), refresh_s=0, clock=_fixed, process=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: settled(app))
        before = shown(app)
        app.action_refresh()
        await until(pilot, lambda: app.last_error is not None)
        assert app.last_error == "load failed: the load process stopped (exit code 3)"
        assert shown(app) == before


async def test_quitting_ends_the_load_process_even_in_the_middle_of_a_load() -> None:
    """No orphan: the load process is gone once the app has quit, also when a load hangs."""
    app = make_app(loader=Stuck(None, None), refresh_s=0, clock=_fixed, process=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.load_process is not None)
        assert app.load_process is not None
        child = app.load_process.process
        await pilot.pause(0.5)
        assert child.is_alive() and app.analysis is None
        started = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - started < 10
    assert not child.is_alive() and child.exitcode is not None
    with pytest.raises(ProcessLookupError):  # joined: not even a zombie is left
        os.kill(child.pid, 0)  # type: ignore[arg-type]


async def test_quitting_after_loads_ends_the_load_process_cleanly() -> None:
    app = make_app(loader=SourceLoader(None, None, clock=_fixed), refresh_s=0, clock=_fixed, process=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: settled(app))
        assert app.load_process is not None
        child = app.load_process.process
    assert child.exitcode == 0
