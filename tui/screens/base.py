"""What every dashboard screen has: the status line and source bar on top, the ``:`` prompt and
the footer at the bottom, esc to go back, and (for screens with tabs) Tab/Shift-Tab/1-6."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Input, TabbedContent

from meshobs.model import ServiceRef

from ..keys import TABS, bindings
from ..widgets.command_bar import CommandBar
from ..widgets.source_bar import SourceBar
from ..widgets.status_line import StatusLine

if TYPE_CHECKING:
    from ..data import Analysis


class MeshScreen(Screen[None]):
    """A screen of the dashboard. Subclasses yield their widgets from :meth:`body` and show a
    new load in :meth:`show_analysis` (called on every screen of the stack)."""

    BINDINGS = bindings()
    DEFAULT_CSS = """
    MeshScreen.-stale DataTable, MeshScreen.-stale .data { text-opacity: 55%; text-style: italic; }
    MeshScreen TabbedContent { height: 1fr; }
    MeshScreen TabbedContent > ContentSwitcher { height: 1fr; }
    MeshScreen TabPane { height: 1fr; padding: 0; }
    """

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield SourceBar(id="source-bar")
        yield from self.body()
        yield CommandBar(self.command_words, id="command")
        yield Footer(show_command_palette=False)  # ^p still opens it; the room is for our keys

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        if self not in self.app.screen_stack:
            # Popped before it was built (a burst of keys: ":sources⏎:proxies⏎" closes it again at
            # once); its widgets are being removed, so there is nothing to show a load in.
            return
        analysis = self.analysis_now()
        if analysis is not None:
            self.show_analysis(analysis)
        refresh_bars = getattr(self.app, "refresh_bars", None)
        if refresh_bars is not None:
            self.call_after_refresh(refresh_bars, self)

    def analysis_now(self) -> Analysis | None:
        return getattr(self.app, "analysis", None)

    def show_analysis(self, analysis: Analysis) -> None:
        """A new load to show (every screen of the stack gets it)."""

    def status_changed(self) -> None:
        """The bars were redrawn (every second, and when a refresh failed)."""

    def selected_service(self) -> ServiceRef | None:
        """The service the screen is about or has selected (for :graph and G)."""
        return None

    def command_words(self) -> tuple[Sequence[str], Sequence[str]]:
        """Namespaces and services, for the prompt's completion."""
        analysis = self.analysis_now()
        if analysis is None:
            return (), ()
        refs = [r.ref for r in analysis.rows]
        return sorted({r.namespace for r in refs}), sorted({f"{r.namespace}/{r.name}" for r in refs})

    def open_command(self) -> None:
        self.query_one(CommandBar).open()

    def prompt_done(self, prompt: Input, key: str) -> None:
        """A screen's own prompt (a search box) got enter or esc."""

    def on_command_bar_run(self, message: CommandBar.Run) -> None:
        run = getattr(self.app, "run_command", None)
        if run is not None:
            run(message.text)

    def action_back(self) -> None:
        back = getattr(self.app, "back", None)
        if back is not None:
            back()


class TabbedScreen(MeshScreen):
    """A screen whose body holds one TabbedContent: Tab/Shift-Tab and 1-6 switch tabs."""

    BINDINGS = [*MeshScreen.BINDINGS, *bindings(TABS, back=False)]

    def _tabs(self) -> tuple[TabbedContent, list[str]]:
        tabs = self.query_one(TabbedContent)
        ids = [str(pane.id) for pane in tabs.query("TabPane")]
        return tabs, ids

    def switch_to(self, tab: str) -> None:
        """Show tab ``tab`` and put the keys on its first table (so arrows and enter work)."""
        tabs, _ids = self._tabs()
        tabs.active = tab
        self.focus_tab(tab)

    def focus_tab(self, tab: str) -> None:
        pane: Any = self.query_one(f"#{tab}")
        for widget in pane.query("DataTable, OptionList"):
            self.set_focus(widget)
            return

    def action_next_tab(self) -> None:
        self._step(1)

    def action_prev_tab(self) -> None:
        self._step(-1)

    def _step(self, by: int) -> None:
        tabs, ids = self._tabs()
        if ids:
            current = ids.index(tabs.active) if tabs.active in ids else 0
            self.switch_to(ids[(current + by) % len(ids)])

    def action_tab_number(self, number: int) -> None:
        _tabs, ids = self._tabs()
        if 1 <= number <= len(ids):
            self.switch_to(ids[number - 1])

    def action_tab(self, tab: str) -> None:
        self.switch_to(tab)
