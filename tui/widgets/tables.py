"""DataTables that update in place: unchanged rows are not touched on a refresh."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from ..keys import MOVE, bindings
from ..rows import TableRow

__all__ = ["NavTable", "RowLike", "SyncTable", "TableRow", "style_of", "styled"]
from ..styles import adapt, is_no_color

# UI-thread time per slice of a big table change (rows added on a rebuild, cells rewritten on
# a refresh); between slices the event loop reads keys, runs timers and draws. Sized by time,
# not by count: a row costs 5-100 µs depending on the machine and its load (5,000 changed rows
# at once held the UI thread for 0.1-0.2 s; 300-row chunks still took up to 40 ms each).
SLICE_S = 0.008
# Rows around the visible ones that a refresh rewrites at once, before any slice: whatever a
# key press scrolls into view next is already current.
MARGIN = 20
# Rows a rebuild adds at once, whatever the time: a screen (more than any terminal shows).
FIRST_ROWS = 100
CHECK_EVERY = 8  # rows between looks at the clock
# DataTable's render caches, cut to a few screens. Their keys hold the cursor's position, so
# every key press renders the visible lines anew and the caches fill to Textual's sizes (1,000
# lines and rows, 10,000 cells): 100-130k live objects (lists, Segments, Strips with their
# FIFOCaches) that every full garbage collection walks on the UI thread (50-280 ms while keys
# were pressed at 1,000 services). A few screens keep scrolling back cheap.
RENDER_CACHES = {"_line_cache": 200, "_row_render_cache": 200, "_row_renderable_cache": 200,
                 "_cell_render_cache": 2000}
T = TypeVar("T")


def _sliced(items: Sequence[T], start: int, deadline: float, do: Callable[[Sequence[T]], int],
            at_least: int = 0) -> tuple[int, int]:
    """Run ``do`` over ``items[start:]``, :data:`CHECK_EVERY` at a time, until ``deadline`` has
    passed (once ``at_least`` items are done): where it stopped, and the sum of what ``do`` returned.
    One loop for both kinds of slice (rows added on a rebuild, rows rewritten on a refresh)."""
    end, total = start, 0
    while end < len(items):
        stop = min(end + CHECK_EVERY, len(items))
        total += do(items[end:stop])
        end = stop
        if end - start >= at_least and time.perf_counter() >= deadline:
            break
    return end, total


# Cells whose text starts with one of these get a style; under NO_COLOR its colours become
# emphasis (bold / reverse, see ..styles) because Textual's greyscale would hide them.
STYLES = {"×": "bold red", "!": "yellow", "?": "dim", "✓": "green", "error": "bold red",
          "warning": "yellow", "fail": "bold red", "warn": "yellow", "≠": "bold magenta", "diagnosing": "dim"}


class RowLike(Protocol):
    @property
    def key(self) -> str: ...

    def cells(self) -> tuple[str, ...]: ...


# j/k as in vi, less and k9s; ids let the config file rebind them (dashboard.keys).
MOVE_BINDINGS = bindings(MOVE, back=False)


class NavTable(DataTable[str | Text]):
    """A DataTable with j/k."""

    BINDINGS = MOVE_BINDINGS


def style_of(cell: str, no_color: bool = False) -> str:
    """The style of a cell by its leading mark or word ("" for none)."""
    for prefix, style in STYLES.items():
        if cell.startswith(prefix):
            return adapt(style, no_color)
    return ""


def styled(cell: str, no_color: bool = False) -> str | Text:
    style = style_of(cell, no_color)
    return Text(cell, style=style) if style else cell


class SyncTable(DataTable[str | Text]):
    """A DataTable fed whole lists of rows; it works out the cheapest way to show them,
    keeping the cursor on the same row (by key) across refreshes."""

    BINDINGS = MOVE_BINDINGS

    def __init__(self, columns: Sequence[tuple[str, str, int]], **kwargs: object) -> None:
        # No padding: the widths include one space, so 80 columns fit eight of them.
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=0, **kwargs)  # type: ignore[arg-type]
        for name, size in RENDER_CACHES.items():
            if isinstance(getattr(self, name, None), LRUCache):  # private to Textual: only where it is one
                setattr(self, name, LRUCache(size))
        self._columns = columns
        self._col_keys = [c[0] for c in columns]
        self._keys: list[str] = []  # our row keys (services), in display order
        self._dt_keys: list[RowKey] = []  # the DataTable's key of each position
        self._shown_cells: list[tuple[str, ...]] = []
        self._pending: list[RowLike] = []  # rows a rebuild still has to add, from _next_row
        self._next_row = 0
        self._pending_updates: list[tuple[int, RowLike]] = []  # rows a refresh still has to rewrite
        self._next_update = 0
        self._generation = 0
        self._on_settled: list[Callable[[], None]] = []
        self.rows_shown: list[RowLike] = []

    def on_mount(self) -> None:
        for key, label, width in self._columns:
            self.add_column(label, width=width or self._flex_width(), key=key)

    def _flex_width(self) -> int:
        """The width of each flexible (0) column: what the fixed ones leave, shared."""
        fixed = sum(w for _k, _l, w in self._columns)
        flexible = sum(1 for _k, _l, w in self._columns if w == 0) or 1
        return max(12, (self.size.width - fixed - 2) // flexible)  # 2: the vertical scrollbar

    def on_resize(self) -> None:
        flex = self._flex_width()
        for index, (key, _label, width) in enumerate(self._columns):
            if width == 0 and key in self.columns:
                old = self.columns[key].width  # type: ignore[index]
                if old == flex:
                    continue
                self.columns[key].width = flex  # type: ignore[index]
                # Rows added before the first layout (a screen filled on mount) were cut to the
                # 12-column minimum: cut them again to the real width, only where it matters.
                shortest = min(old, flex)
                for i, cells in enumerate(self._shown_cells):
                    if len(cells[index]) >= shortest:
                        self.update_cell(self._dt_keys[i], key, self._fit(index, cells[index]))
                self._require_update_dimensions = True
                self.refresh()

    def _fit(self, index: int, cell: str) -> str | Text:
        """Cut a cell one short of its column so neighbouring columns never touch."""
        width = self._columns[index][2] or self._flex_width()
        if len(cell) >= width:
            cell = cell[: max(1, width - 2)] + "…"
        return styled(cell, is_no_color(self))

    def sync(self, rows: Sequence[RowLike]) -> int:
        """Show ``rows``; returns how many cells (or rows, on a rebuild) were written now.

        Same number of rows (a refresh): cells are overwritten in place, position by position,
        and only where they changed, so a re-sorted refresh of 5,000 rows touches no row
        structure; the rows on screen are written at once, the rest in slices of at most
        :data:`SLICE_S` between turns of the event loop. Another count (a new filter): the
        table is rebuilt, a screenful at once and the rest in slices, so keys keep flowing.
        """
        self._generation += 1
        current = self.selected_key()
        keys = [r.key for r in rows]
        self.rows_shown = list(rows)
        if len(keys) == len(self._keys) and not self._pending:
            self._keys = keys
            top = max(0, int(self.scroll_y) - MARGIN)
            bottom = int(self.scroll_y) + self.size.height + MARGIN
            indexed = list(enumerate(rows))
            written = self._write(indexed[top:bottom])
            # Below the screen first (where ↓ and page-down go), then above it.
            self._pending_updates = indexed[bottom:] + indexed[:top]
            self._next_update = 0
            if self._pending_updates:
                self._schedule(self._generation)
        else:
            self._pending_updates = []
            self.clear()
            self._keys, self._dt_keys, self._shown_cells = keys, [], []
            self._pending, self._next_row = list(rows), 0
            written = self._add_chunk(time.perf_counter() + SLICE_S, max(FIRST_ROWS, self.size.height + MARGIN))
            if self._pending:
                self._schedule(self._generation)
        if current is not None and current in keys:
            index = keys.index(current)
            if index != self.cursor_row and index < self.row_count:
                self.move_cursor(row=index, animate=False)
        if self.settled:
            self._settled()  # whoever waited for an earlier sync: this one is on screen whole
        return written

    def _write(self, rows: Sequence[tuple[int, RowLike]]) -> int:
        """Rewrite the cells that changed in these (position, row) pairs; how many were written."""
        written = 0
        for i, r in rows:
            new = r.cells()
            old = self._shown_cells[i]
            if new != old:
                dt_key = self._dt_keys[i]
                for col, (ckey, a, b) in enumerate(zip(self._col_keys, old, new)):
                    if a != b:
                        self.update_cell(dt_key, ckey, self._fit(col, b))
                        written += 1
                self._shown_cells[i] = new
        return written

    def _update_rows(self, deadline: float) -> int:
        """One slice of a refresh's queued rows: rewrite them until ``deadline``; cells written."""
        self._next_update, written = _sliced(self._pending_updates, self._next_update, deadline, self._write)
        if self._next_update >= len(self._pending_updates):
            self._pending_updates = []
        return written

    def _add_chunk(self, deadline: float, at_least: int = 0) -> int:
        """One slice of a rebuild: add queued rows until ``deadline`` (and ``at_least`` rows)."""
        start = self._next_row
        self._next_row, _ = _sliced(self._pending, start, deadline, self._add_rows, at_least)
        if self._next_row >= len(self._pending):
            self._pending = []
        return self._next_row - start

    def _add_rows(self, rows: Sequence[RowLike]) -> int:
        for r in rows:
            cells = r.cells()
            self._shown_cells.append(cells)
            self._dt_keys.append(self.add_row(*(self._fit(i, c) for i, c in enumerate(cells)), height=1))
        return len(rows)

    def _schedule(self, generation: int) -> None:
        def more() -> None:
            if generation != self._generation:
                return  # a newer sync took over (it compares against what is shown)
            deadline = time.perf_counter() + SLICE_S
            if self._pending:
                self._add_chunk(deadline)
            elif self._pending_updates:
                self._update_rows(deadline)
            if not self.settled:
                self._schedule(generation)
            else:
                self._settled()

        # A timer, not call_later: it waits for the event loop, so queued keys go first.
        self.set_timer(0.001, more)

    @property
    def settled(self) -> bool:
        """Every row shows its latest cells (no rows or updates still queued)."""
        return not self._pending and not self._pending_updates

    def when_settled(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the UI thread) once every row shows its latest cells: now if
        they do, else after the last slice."""
        if self.settled:
            callback()
        else:
            self._on_settled.append(callback)

    def _settled(self) -> None:
        waiting, self._on_settled = self._on_settled, []
        for callback in waiting:
            callback()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Every column has a fixed width and every row one line: measuring each new cell (what
        # DataTable does) would cost ~0.3 s per 1,000 rows on the UI thread for nothing.
        super()._update_dimensions(())

    @property
    def shown_keys(self) -> list[str]:
        """The keys of the rows shown, in display order (including rows still being added)."""
        return list(self._keys)

    def selected_key(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def selected(self) -> RowLike | None:
        if self.cursor_row < 0 or self.cursor_row >= min(len(self.rows_shown), self.row_count):
            return None
        return self.rows_shown[self.cursor_row]
