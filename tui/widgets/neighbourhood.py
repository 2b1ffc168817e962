"""Callers and callees of the selected service with the numbers of their edges."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..viewmodel import NeighbourRow


class Neighbourhood(Static):
    """A few lines per direction, busiest (and erroring) peers first; hubs show "+N more"."""

    DEFAULT_CSS = """
    Neighbourhood { height: auto; max-height: 9; border-top: solid $primary; padding: 0 1; }
    """

    def show(self, service: str, rows: list[NeighbourRow], hidden: int) -> None:
        text = Text(f"{service}: ", style="bold", no_wrap=True)
        callers = sum(1 for r in rows if r.direction == "in")
        text.append(f"{callers} caller(s), {len(rows) - callers} callee(s) shown")
        if hidden:
            text.append(f", +{hidden} more", style="dim")
        for row in rows:
            style = "red" if row.red.error_ratio >= 0.01 else ""
            text.append("\n" + row.line(), style=style)
        if not rows:
            text.append("\nno traffic in or out over the window", style="dim")
        self.update(text)
