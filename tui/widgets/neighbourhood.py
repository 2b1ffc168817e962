"""Callers and callees of the selected service with the numbers of their edges, and why the
service has the health it has."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..styles import adapt, is_no_color
from ..viewmodel import HEALTH_MARK, NeighbourRow


class Neighbourhood(Static):
    """A few lines per direction, busiest (and erroring) peers first; hubs show "+N more"."""

    DEFAULT_CSS = """
    Neighbourhood { height: auto; max-height: 9; border-top: solid $primary; padding: 0 1; }
    """

    def show(self, service: str, rows: list[NeighbourRow], hidden: int, health: str = "",
             reason: str = "", note: str = "") -> None:
        """``reason``: the one-line message of the service's top finding (why it is not healthy);
        ``note``: where the verdict stands (its diagnosis runs; it is the previous refresh's)."""
        mono = is_no_color(self)
        text = Text(f"{service}: ", style="bold", no_wrap=True, overflow="ellipsis")
        callers = sum(1 for r in rows if r.direction == "in")
        text.append(f"{callers} caller(s), {len(rows) - callers} callee(s) shown")
        if hidden:
            text.append(f", +{hidden} more", style=adapt("dim", mono))
        if reason:
            # A service can fail without inbound errors (a gateway whose calls fail): say why.
            mark = HEALTH_MARK.get(health, health)
            alarm = "bold red" if health == "failing" else "yellow"
            text.append("\n" + mark, style=adapt(alarm, mono))
            text.append(": " + reason)
        if note:
            text.append("\n" + note, style=adapt("italic", mono))
        for row in rows:
            # Bold, not reverse, without colour: a whole reversed line would outshout the health.
            style = ("bold" if mono else "red") if row.red.error_ratio >= 0.01 else ""
            text.append("\n" + row.line(), style=style)
        if not rows:
            text.append("\nno traffic in or out over the window", style=adapt("dim", mono))
        self.update(text)

    def say(self, message: str) -> None:
        """A single line instead of a neighbourhood (no service selected, nothing matches)."""
        self.update(Text(message, style="bold"))
