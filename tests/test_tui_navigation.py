"""Navigation by habit (k9s, lazygit, htop): key bursts land where they are typed, the `:`
prompt, Tab / Shift-Tab / number keys for tabs, j/k, enter on a finding opens it in place,
esc back, help generated from the bindings, keys rebound from the config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from textual import events
from textual.widgets import Input, TabbedContent

from meshobs.cli.main import cli
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.tui.commands import candidates, complete, parse
from meshobs.tui.keys import check_keymap
from meshobs.tui.screens.finding import FindingScreen
from meshobs.tui.screens.findings import FindingsScreen
from meshobs.tui.screens.graph import GraphScreen
from meshobs.tui.screens.help import HelpScreen
from meshobs.tui.screens.overview import OverviewScreen
from meshobs.tui.screens.proxies import ProxiesScreen
from meshobs.tui.screens.service import ServiceScreen
from meshobs.tui.screens.sources import SourcesScreen
from meshobs.tui.widgets.command_bar import CommandBar
from meshobs.tui.widgets.tables import SyncTable
from tests.test_tui import _deterministic, anyio_backend, app_for, demo_pair, settle, status_text  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_pair()
CART = ServiceRef("shop", "cart-service")
KEY_NAMES = {"/": "slash", ":": "colon", "\r": "enter", " ": "space", "?": "question_mark", "-": "minus",
             ".": "full_stop"}


def burst(app, text: str) -> None:  # type: ignore[no-untyped-def]
    """Queue every key at once through the driver, as a paste or `tmux send-keys` delivers them:
    no pause between keys (pilot.press waits for the app to idle after each one)."""
    for ch in text:
        key = events.Key(KEY_NAMES.get(ch, ch), ch)
        key.set_sender(app)
        app._driver.send_message(key)


def services_table(app) -> SyncTable:  # type: ignore[no-untyped-def]
    return app.screen.query_one("#services", SyncTable)


async def test_a_pasted_search_filters_and_q_still_quits(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        burst(app, "/cart\r")
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen)  # the ⏎ applied the search, opened nothing
        assert services_table(app).shown_keys == ["shop/cart-service"]
        assert app.screen.focused is services_table(app)
        assert not app.screen.query_one("#search", Input).has_class("visible")
        burst(app, "q")
        await settle(app, pilot)
        assert not app.is_running


async def test_a_burst_of_search_then_open_then_quit_lands_key_by_key(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        burst(app, "/data\r\r")  # search, apply, then open the one match
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen) and app.screen.ref == ServiceRef("shop", "database-service")


async def test_colon_commands_switch_views(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        burst(app, ":proxies\r")
        await settle(app, pilot)
        assert isinstance(app.screen, ProxiesScreen)
        assert app.screen.query_one("#proxy-list", SyncTable).row_count == 10
        burst(app, ":findings\r")
        await settle(app, pilot)
        assert isinstance(app.screen, FindingsScreen) and len(app.screen_stack) == 3  # overview, findings
        burst(app, ":graph cart-service\r")
        await settle(app, pilot)
        assert isinstance(app.screen, GraphScreen) and app.screen.centre == CART
        burst(app, ":sources\r")
        await settle(app, pilot)
        assert isinstance(app.screen, SourcesScreen)
        assert "prometheus" in str(app.screen.query_one("#sources-text").render())
        burst(app, ":ns shop\r")
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert all(k.startswith("shop/") for k in services_table(app).shown_keys)
        assert len(services_table(app).shown_keys) == 4
        burst(app, ":ns\r")
        await settle(app, pilot)
        assert len(services_table(app).shown_keys) == 5
        burst(app, ":svc cart-service\r")
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen) and app.screen.ref == CART
        burst(app, ":svc\r")
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen)
        burst(app, ":nope\r")
        await settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen) and app.is_running
        assert any("unknown command :nope" in n.message for n in app._notifications)
        burst(app, ":q\r")
        await settle(app, pilot)
        assert not app.is_running


async def test_the_prompt_completes_with_tab_and_closes_with_esc(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", "p", "r", "o", "tab")
        bar = app.screen.query_one(CommandBar)
        assert bar.value == "proxies "
        await pilot.press("escape")
        assert not bar.has_class("-open") and app.screen.focused is services_table(app)
        await pilot.press("colon", *"ns sh", "tab")
        assert bar.value == "ns shop"
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(services_table(app).shown_keys) == 4


def test_commands_parse_and_complete() -> None:
    assert parse(":ns shop").verb == "ns" and parse("ns shop").arg == "shop"
    assert parse("po").verb == "proxies" and parse("services").verb == "svc"
    for bad in ("", "nope", "range", "findings now"):
        with pytest.raises(ValueError):
            parse(bad)
    assert complete("gr") == "graph"
    assert complete("svc ca", services=["shop/cart-service"]) == "svc shop/cart-service"
    assert candidates("range ") == ["range 5m", "range 15m", "range 1h", "range 6h"]


async def test_tabs_by_tab_shift_tab_and_numbers(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "traffic"
        await pilot.press("tab")
        assert tabs.active == "proxies" and app.screen.focused is app.screen.query_one("#proxy-table")
        await pilot.press("tab", "tab")
        assert tabs.active == "traces"
        await pilot.press("shift+tab")
        assert tabs.active == "diagnosis"
        await pilot.press("5")
        assert tabs.active == "config"
        await pilot.press("1")
        assert tabs.active == "traffic"
        await pilot.press("shift+tab")
        assert tabs.active == "config"  # wraps around
        await pilot.press("d")  # the letters still work
        assert tabs.active == "diagnosis"


async def test_j_and_k_move_like_arrows(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = services_table(app)
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1


async def test_enter_on_a_finding_opens_it_in_place_with_evidence_and_doc(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter", "d")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, FindingScreen) and screen.finding.code == "MSH0406"
        text = str(screen.query_one("#finding-text").render())
        assert "evidence" in text and "ejected" in text
        doc = screen.query_one("#finding-doc")
        assert "What it means" in doc.source  # type: ignore[attr-defined]  # docs/findings/MSH0406.md
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen)
        assert app.screen.query_one(TabbedContent).active == "diagnosis"  # back where it was


async def test_keys_from_the_config_file_rebind_actions_and_help_shows_them(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo, keymap={"quit": "ctrl+q", "findings": "F"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f")
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("F")
        await settle(app, pilot)
        assert isinstance(app.screen, FindingsScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one("Static").render())
        assert "ctrl+q" in shown and "  F " in shown
        await pilot.press("escape", "q")
        assert app.is_running
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        assert not app.is_running


def test_keymap_problems_are_named() -> None:
    assert check_keymap({"quit": "ctrl+q", "down": "j,n"}) == []
    [problem] = check_keymap({"quitt": "x"})
    assert "dashboard.keys.quitt" in problem and "did you mean quit" in problem


def test_dashboard_refuses_unknown_key_actions_before_taking_the_terminal(tmp_path: Path) -> None:
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"dashboard": {"keys": {"serach": "/"}}}))
    result = CliRunner().invoke(cli, ["dashboard", "--config", str(config)])
    assert result.exit_code == 2
    assert "dashboard.keys.serach" in result.output and "search" in result.output


async def test_status_line_counts_unknown_apart_from_healthy(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert "5 services · 4 failing · 1 healthy · 0 unknown" in status_text(app)


@pytest.mark.parametrize("screen", [SourcesScreen, ProxiesScreen, FindingsScreen])
async def test_a_refresh_before_a_screen_is_built_is_shown_once_it_is(demo, screen) -> None:  # type: ignore[no-untyped-def]
    """The status tick (every second) or a new load arriving between a screen's push and its
    compose (on a loaded machine: ``NoMatches '#sources-text'``) is not the screen's to draw
    yet: it shows them once it is built."""
    app = app_for(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.push_screen(screen())  # on the stack, its widgets not composed yet
        assert isinstance(app.screen, screen) and not app.screen.is_mounted
        app.update_status()
        app._show(app.analysis)
        await settle(app, pilot)
        assert isinstance(app.screen, screen) and app.screen.is_mounted
        assert "demo:ecommerce" in status_text(app)
        if screen is SourcesScreen:
            assert "prometheus" in str(app.screen.query_one("#sources-text").render())


async def test_views_opened_and_closed_in_one_burst_land_on_the_last(demo) -> None:  # type: ignore[no-untyped-def]
    """Each ``:`` view closes the one before, often before that one was built: a screen popped
    before it mounts shows nothing (it used to query its own widgets as they were removed)."""
    app = app_for(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        burst(app, ":sources\r:proxies\r:findings\r:sources\r:proxies\r")
        await settle(app, pilot)
        assert isinstance(app.screen, ProxiesScreen) and len(app.screen_stack) == 3  # default, overview, proxies
        assert app.screen.query_one("#proxy-list", SyncTable).row_count == 10
        burst(app, ":proxies\r:sources\r")
        await settle(app, pilot)
        assert isinstance(app.screen, SourcesScreen)
        assert "prometheus" in str(app.screen.query_one("#sources-text").render())


@pytest.mark.parametrize("from_path", ["demo:nosuch", "demo:generated-0", "no/such/bundle.tar.gz"])
def test_dashboard_unknown_from_is_exit_2_before_the_screen(from_path: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """As for every other command, an unknown demo or a missing bundle is a usage error before
    the UI takes over the terminal (it started and showed 'load failed' instead)."""
    import meshobs.tui.app

    def screen_started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dashboard started")

    monkeypatch.setattr(meshobs.tui.app, "make_app", screen_started)
    result = CliRunner().invoke(cli, ["dashboard", "--from", str(tmp_path / from_path)
                                      if "/" in from_path else from_path])
    assert result.exit_code == 2, result.output
