"""The one-line status at the top of every screen: what is shown, how fresh, what failed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..styles import adapt, is_no_color


class StatusLine(Static):
    """Origin, snapshot time, refresh state and failing sources ("jaeger: timed out after 5 s").

    A failing source never blanks the screen: it is listed here while the rest keeps working.
    """

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $boost; padding: 0 1; }
    """

    def on_mount(self) -> None:
        update = getattr(self.app, "update_status", None)
        if update is not None:
            self.call_after_refresh(update)

    def show(self, summary: str, failing: list[str], error: str | None = None) -> None:
        text = Text(summary, no_wrap=True, overflow="ellipsis")
        mono = is_no_color(self)
        if error:
            text.append("  × " + error, style=adapt("bold red", mono))
        if failing:
            text.append("  ⚠ " + "; ".join(failing), style=adapt("bold yellow", mono))
        self.update(text)
