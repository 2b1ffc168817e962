"""``:sources``: every source of the last refresh with its whole message (the bar shortens them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from meshobs.model import SourceState

from ..sources import MARKS, age, kind_of
from ..styles import adapt, is_no_color
from ..widgets.source_bar import STATE_STYLE
from .base import MeshScreen

if TYPE_CHECKING:
    from ..data import Analysis


class SourcesScreen(MeshScreen):
    AUTO_FOCUS = "#sources-scroll"
    DEFAULT_CSS = """
    SourcesScreen #sources-scroll { height: 1fr; padding: 0 1; }
    """

    def body(self) -> ComposeResult:
        with VerticalScroll(id="sources-scroll") as box:
            box.border_title = "sources"
            yield Static(id="sources-text")

    def show_analysis(self, analysis: Analysis) -> None:
        self.refresh_text()

    def status_changed(self) -> None:
        self.refresh_text()

    def refresh_text(self) -> None:
        """Statuses of what is shown; sources that failed since are marked stale with the reason."""
        app = self.app
        analysis = self.analysis_now()
        mono = is_no_color(self)
        text = Text()
        if analysis is None:
            self.query_one("#sources-text", Static).update("no load yet")
            return
        now = app.clock()  # type: ignore[attr-defined]
        stale_since = getattr(app, "stale_since", None)
        failed = getattr(app, "failed_attempt", [])
        if stale_since is not None:
            text.append(f"The last refresh failed; the screens show the data from {stale_since:%H:%M:%S} "
                        f"({age(now, stale_since)} ago).\n", style=adapt("bold yellow", mono))
            for s in failed:
                text.append(f"{MARKS['down']} {s.name}", style=adapt(STATE_STYLE["down"], mono))
                text.append(f"  {s.state.value}" + (f"\n    {s.message}" if s.message else "") + "\n")
            text.append("\nSources of the data shown:\n", style="bold")
        for s in sorted(analysis.snapshot.sources, key=lambda s: (kind_of(s), s.name)):
            stale = analysis.stale.get(s.name)
            state = "stale" if stale is not None else \
                {SourceState.OK: "ok", SourceState.ERROR: "down", SourceState.NO_DATA: "no data"}[s.state]
            text.append(f"{MARKS[state]} {s.name}", style=adapt(STATE_STYLE[state], mono))
            text.append(f"  {s.state.value}, {s.duration_s:.2f} s")
            if stale is not None:
                text.append(f"; shown from {stale.since:%H:%M:%S}, failing now: {stale.why}")
            if s.message:
                text.append(f"\n    {s.message}")
            text.append("\n")
        self.query_one("#sources-text", Static).update(text)
