"""The source bar under the status line on every screen: ok, stale since T, or down: why."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from ..sources import SourceEntry
from ..styles import adapt, is_no_color

STATE_STYLE = {"ok": "green", "stale": "bold yellow", "down": "bold red", "no data": "dim"}
# A source's error can be a paragraph: the bar gives each entry a share of its three lines
# (never less than this) and :sources shows them in full.
WHY_MIN = 24
LINES = 3


class SourceBar(Static):
    """One entry per source kind; wraps (never cuts) onto a second or third line."""

    DEFAULT_CSS = """
    SourceBar { height: auto; max-height: 3; padding: 0 1; }
    """

    _shown: tuple[object, ...] | None = None

    def show(self, entries: list[SourceEntry], now: datetime) -> None:
        width = (self.size.width or 80) - 2
        words_of = [e.text(now) for e in entries]
        # Called every second: an unchanged bar is not redrawn (a redraw re-lays out the screen).
        if self._shown == (width, *words_of):
            return
        self._shown = (width, *words_of)
        mono = is_no_color(self)
        text = Text()
        if not entries:
            text.append("no sources yet", style=adapt("dim", mono))
        # Every source stays in view: when the entries do not fit the bar's lines (wrapping
        # wastes some room: 90 %), each gets an equal share and its reason is cut.
        room = int(width * LINES * 0.9)
        full = sum(len(w) + 2 for w in words_of)
        share = room if full <= room else max(WHY_MIN, room // max(1, len(entries)) - 2)
        for i, (entry, words) in enumerate(zip(entries, words_of)):
            if i:
                text.append("  ")
            if len(words) > share:
                words = words[: share - 1] + "…"
            text.append(words, style=adapt(STATE_STYLE.get(entry.state, ""), mono))
        if any(e.state != "ok" for e in entries):
            text.append("  (:sources)", style=adapt("dim", mono))
        self.update(text)
