"""The one-line status at the top of every screen: what is shown, how fresh, what failed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..styles import adapt, is_no_color


class StatusLine(Static):
    """Origin, health counts, time range and refresh state; a stale warning leads when the
    screen shows the last good data of a failed refresh.

    Source failures have their own bar (:class:`..widgets.source_bar.SourceBar`).
    """

    DEFAULT_CSS = """
    StatusLine { height: auto; max-height: 2; background: $boost; padding: 0 1; }
    """

    def on_mount(self) -> None:
        update = getattr(self.app, "update_status", None)
        if update is not None:
            self.call_after_refresh(update)

    _shown: tuple[str, str | None, str | None] | None = None

    def show(self, summary: str, stale: str | None = None, error: str | None = None) -> None:
        # Called every second: an unchanged line is not redrawn (a redraw re-lays out the screen).
        if self._shown == (summary, stale, error):
            return
        self._shown = (summary, stale, error)
        mono = is_no_color(self)
        text = Text(overflow="ellipsis")  # wraps onto a second line at 80 columns
        if stale:
            text.append(f"‼ {stale}", style=adapt("bold reverse yellow", mono))
            text.append(" · ")
        text.append(summary)
        if error:
            text.append("  × " + error, style=adapt("bold red", mono))
        self.update(text)
