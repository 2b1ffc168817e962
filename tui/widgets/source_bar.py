"""The source bar under the status line on every screen: ok, stale since T, or down: why."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from ..sources import SourceEntry
from ..styles import adapt, is_no_color

STATE_STYLE = {"ok": "green", "stale": "bold yellow", "down": "bold red", "no data": "dim"}
# A source's error can be a paragraph; the bar keeps each entry to this many characters and
# :sources shows them in full.
WHY_MAX = 60


class SourceBar(Static):
    """One entry per source kind; wraps (never cuts) onto a second or third line."""

    DEFAULT_CSS = """
    SourceBar { height: auto; max-height: 3; padding: 0 1; }
    """

    def show(self, entries: list[SourceEntry], now: datetime) -> None:
        mono = is_no_color(self)
        text = Text()
        if not entries:
            text.append("no sources yet", style=adapt("dim", mono))
        for i, entry in enumerate(entries):
            if i:
                text.append("  ")
            words = entry.text(now)
            if len(words) > WHY_MAX + len(entry.kind) + 8:
                words = words[: WHY_MAX + len(entry.kind) + 7] + "…"
            text.append(words, style=adapt(STATE_STYLE.get(entry.state, ""), mono))
        if any(e.state != "ok" for e in entries):
            text.append("  (:sources)", style=adapt("dim", mono))
        self.update(text)
