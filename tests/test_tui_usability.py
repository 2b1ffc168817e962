"""Pilot tests of what a first-time user at 80x24 (tmux, maybe NO_COLOR) must be able to read:
meaning without colour, the active filter, a footer that fits, why a gateway fails, config
fields, help that fits."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable, Static

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.tui.screens.help import HelpScreen, help_text
from meshobs.tui.screens.overview import OverviewScreen
from meshobs.tui.screens.service import ServiceScreen
from meshobs.tui.service_model import config_entries
from meshobs.tui.widgets.neighbourhood import Neighbourhood
from meshobs.tui.widgets.tables import SyncTable
from tests.test_tui import _deterministic, anyio_backend, app_for, settle, status_text  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    bundle = load_demo("ecommerce")
    return bundle, build_snapshot(bundle, origin="demo:ecommerce")

INGRESS = ServiceRef("istio-system", "istio-ingressgateway")


def cell_style(cell: object) -> Style:
    assert isinstance(cell, Text), f"{cell!r} carries no style"
    return Style.parse(str(cell.style)) if isinstance(cell.style, str) else cell.style


@pytest.mark.parametrize("no_color", [True, False], ids=["NO_COLOR", "colour"])
async def test_failing_and_error_cells_stay_readable_without_colour(demo, monkeypatch, no_color) -> None:  # type: ignore[no-untyped-def]
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.no_color is no_color
        table = app.screen.query_one("#services", SyncTable)
        # Row 1 is failing and not under the cursor: Textual's greyscale would hide red there.
        style = cell_style(table.get_row_at(1)[0])
        if no_color:
            assert style.bold and style.reverse and style.color is None
        else:
            assert style.color is not None and style.color.name == "red"
        await pilot.press("enter", "d")
        await settle(app, pilot)
        findings = app.screen.query_one("#findings", DataTable)
        sev = cell_style(findings.get_row_at(1)[1])  # "error", not the selected row
        assert bool(sev.reverse) is no_color and (sev.color is None) is no_color


async def test_search_shows_the_filter_and_says_when_nothing_matches(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "5 services" in status_text(app) and "filter" not in status_text(app)
        await pilot.press("slash", *"data", "enter")
        assert "1 of 5 services · filter: data" in status_text(app)
        await pilot.press("slash", *"xyz", "enter")
        table = app.screen.query_one("#services", SyncTable)
        assert table.row_count == 0 and "0 of 5 services" in status_text(app)
        panel = str(app.screen.query_one(Neighbourhood).render())
        assert "'xyz'" in panel and "esc" in panel
        await pilot.press("escape")
        assert table.row_count == 5 and "filter" not in status_text(app)
        assert "'xyz'" not in str(app.screen.query_one(Neighbourhood).render())


@pytest.mark.parametrize("keys", [(), ("enter",), ("f",)], ids=["overview", "service", "findings"])
async def test_footer_fits_80_columns_and_keeps_quit_and_help(demo, keys) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*keys)
        await settle(app, pilot)
        from textual.widgets._footer import FooterKey

        shown = [k for k in app.screen.query(FooterKey) if k.key != "ctrl+p"]
        palette = [k for k in app.screen.query(FooterKey) if k.key == "ctrl+p"]
        right = palette[0].region.x if palette else 80  # the palette key is docked on the right
        assert shown and all(k.region.width > 0 and k.region.right <= right for k in shown), \
            [(k.key, k.region) for k in shown]
        assert {"q", "question_mark", "f"} <= {k.key for k in shown}


async def test_gateway_row_shows_outbound_traffic_and_why_it_fails(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#services", SyncTable)
        assert table.columns["findings"].label.plain == "findings"  # type: ignore[index]
        index = table.shown_keys.index(str(INGRESS))
        row = table.rows_shown[index]
        # Nobody calls the gateway: its numbers are its calls to the frontend (40 req/s, 13.5 %).
        assert row.outbound and row.cells()[3:5] == ("→40.0", "→13.5%")  # type: ignore[attr-defined]
        assert app.analysis is not None
        report = app.analysis.report_of(INGRESS)
        assert report is not None and row.reason == report.findings[0].message  # type: ignore[attr-defined]
        table.move_cursor(row=index)
        await pilot.pause()
        panel = str(app.screen.query_one(Neighbourhood).render())
        assert report.findings[0].subject.split()[-1] in panel  # the rank-1 subject: database-service


def test_config_entries_name_each_drifted_field(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    cart = ServiceRef("shop", "cart-service")
    entries = config_entries(snapshot, cart)
    assert entries and all(not e.drifts and e.checked == ("live-effective",) for e in entries)  # in sync
    assert {e.cells()[1] for e in entries} == {"in sync"}
    vs = next(c for c in snapshot.config if c.kind == "VirtualService" and c.name == "cart-service")
    drift = SimpleNamespace(resource=SimpleNamespace(kind=vs.kind, name=vs.name, namespace=vs.namespace),
                            path="spec.http[0].route[cart-service|v2].weight", left=90, right=50,
                            layers="live-effective", proxies=("frontend-1.shop",))
    monkeypatch.setattr("meshobs.drift.effective.compare_effective", lambda *a, **k: [drift])
    entries = config_entries(snapshot, cart)
    drifted = [e for e in entries if e.drifts]
    assert [e.resource for e in drifted] == [vs] and drifted[0].cells() == (f"≠ {vs}", "1 drifted")
    [line] = drifted[0].lines()
    assert drift.path in line and "live 90" in line and "effective 50" in line and "frontend-1.shop" in line


async def test_help_fits_80_columns_and_closes_with_its_keys(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for key in ("escape", "q", "question_mark"):
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            text = app.screen.query_one(Static)
            shown = help_text({})
            lines = shown.rstrip("\n").count("\n") + 1
            assert text.virtual_size.height == lines  # no line wrapped
            assert max(len(re.sub(r"\[/?b\]", "", line)) for line in shown.splitlines()) <= 74
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, OverviewScreen)
        assert app.is_running


async def test_service_screen_header_mark_is_not_colour_only(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen)
        header = app.screen.query_one("#red", Static).render()
        plain = str(header)
        marks = [s for s in header.spans if plain[s.start:s.end].startswith("×")]  # type: ignore[union-attr]
        # Textual's own Style here (Content spans), with the same attribute names as Rich's.
        assert marks and all(s.style.reverse and s.style.foreground is None for s in marks)  # type: ignore[union-attr]


async def test_findings_message_gets_the_width_at_80_columns(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f")
        await settle(app, pilot)
        table = app.screen.query_one("#findings", SyncTable)
        assert table.columns["message"].width >= 55  # type: ignore[index]
        first = str(table.get_row_at(0)[3])
        assert len(first) >= 55 and first.startswith("shop/database-service")
