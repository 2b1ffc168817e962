"""Snapshot tests (pytest-textual-snapshot) of the main screens on the ecommerce demo bundle,
at 80x24 and at a large terminal. Update with ``pytest --snapshot-update`` after checking the SVGs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot
from meshobs.tui.app import MeshobsApp, make_app
from meshobs.tui.data import SnapshotLoader

FIXED = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
SMALL, LARGE = (80, 24), (160, 48)


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove what changes between runs: the cursor blink, colour settings of the caller's shell."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    bundle = load_demo("ecommerce")
    return bundle, build_snapshot(bundle, origin="demo:ecommerce")


def app_for(demo: tuple[object, MeshSnapshot]) -> MeshobsApp:
    bundle, snapshot = demo
    # live=False: the status line says "frozen", never a countdown that depends on timing.
    loader = SnapshotLoader(lambda: snapshot, live=False, description="demo:ecommerce",
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
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_overview(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_service_diagnosis(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("enter", "d"))


def test_service_proxies(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("enter", "x"))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_findings(snap_compare, demo, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=size, run_before=keys("f"))


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


def test_service_config(snap_compare, demo) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_for(demo), terminal_size=SMALL, run_before=keys("enter", "g"))
