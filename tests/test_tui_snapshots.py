"""Snapshot tests (pytest-textual-snapshot) of every screen on the demo bundles, at 80x24 and
120x40. Update with ``pytest tests/test_tui_snapshots.py --snapshot-update`` after checking the
SVGs (tests/__snapshots__/test_tui_snapshots/)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, SourceState, SourceStatus
from meshobs.tui.app import MeshobsApp, make_app
from meshobs.tui.data import SnapshotLoader

FIXED = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
SMALL, LARGE = (80, 24), (120, 40)
SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove what changes between runs: the cursor blink, colour settings of the caller's shell."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.delenv("NO_COLOR", raising=False)


_demos: dict[str, tuple[object, MeshSnapshot]] = {}


def demo_of(name: str) -> tuple[object, MeshSnapshot]:
    if name not in _demos:
        bundle = load_demo(name)
        _demos[name] = (bundle, build_snapshot(bundle, origin=f"demo:{name}"))
    return _demos[name]


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_of("ecommerce")


def app_for(demo: tuple[object, MeshSnapshot], produce: Callable[[], MeshSnapshot] | None = None) -> MeshobsApp:
    bundle, snapshot = demo
    # live=False: the status line says "frozen", never a countdown that depends on timing.
    loader = SnapshotLoader(produce or (lambda: snapshot), live=False, description="demo",
                            bundle=bundle)  # type: ignore[arg-type]
    return make_app(loader=loader, refresh_s=0, clock=lambda: FIXED)


def keys(*pressed: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot) -> None:  # type: ignore[type-arg]
        app = pilot.app
        await app.workers.wait_for_complete()
        await pilot.pause()
        for key in pressed:
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


@SIZES
def test_overview(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys())


@SIZES
def test_service_diagnosis(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("enter", "d"))


@SIZES
def test_service_proxies(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("enter", "2"))


@SIZES
def test_service_traces(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("enter", "4"))


@SIZES
def test_service_config_with_drift(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    """weight-drift: the frontend's proxies run 50/50 where the VirtualService says 90/10."""
    assert snap_compare(app_for(demo_of("weight-drift")), terminal_size=size,
                        run_before=keys("slash", *"product", "enter", "enter", "5", "j"))


@SIZES
def test_yaml_live_vs_effective(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo_of("weight-drift")), terminal_size=size,
                        run_before=keys("slash", *"product", "enter", "enter", "5", "j", "y"))


@SIZES
def test_findings(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("f"))


@SIZES
def test_finding_opened(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("f", "enter"))


@SIZES
def test_proxy_clusters(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    """cart-v1's Envoy: the database cluster with its endpoints ejected."""
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("enter", "2", "enter", "3"))


@SIZES
def test_proxy_xds_stale(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    """envoyfilter-nack: a dispatch-api proxy that rejects every RDS push (an EnvoyFilter's patch),
    as the engine's MSH0107 says; syncz shows the routes sent and not acknowledged."""
    assert snap_compare(app_for(demo_of("envoyfilter-nack")), terminal_size=size,
                        run_before=keys("colon", *"proxies", "enter", "enter", "6"))


@SIZES
def test_proxies_view(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo_of("weight-drift")), terminal_size=size,
                        run_before=keys("colon", *"proxies", "enter"))


@SIZES
def test_graph(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("G"))


@SIZES
def test_stale_after_every_source_failed(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    """A good load, then a refresh where nothing answers: the data stays, greyed, labelled."""
    _bundle, snapshot = demo
    calls: list[int] = []

    def produce() -> MeshSnapshot:
        calls.append(1)
        if len(calls) == 1:
            return snapshot
        down = tuple(SourceStatus(s.name, SourceState.ERROR, f"cannot reach {s.kind} (connection refused)",
                                  kind=s.kind) for s in snapshot.sources)
        return MeshSnapshot(time=snapshot.time, window_s=snapshot.window_s, sources=down, origin=snapshot.origin)

    assert snap_compare(app_for(demo, produce), terminal_size=size, run_before=keys("r"))


def test_sources(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("colon", *"sources", "enter"))


def test_command_prompt(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("colon", "p", "r"))


def test_help(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("question_mark"))


def test_overview_no_color(snap_compare, demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """NO_COLOR: failing rows stay readable (bold reverse marks, not grey on grey)."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys())


def test_service_diagnosis_no_color(snap_compare, demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("enter", "d"))


def test_overview_filtered(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    """A search in effect shows in the status line ("1 of 5 services · filter: data")."""
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("slash", *"data", "enter"))


def test_overview_no_match(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("slash", *"xyz", "enter"))
