"""DataTables that update in place: unchanged rows are not touched on a refresh."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.text import Text
from textual.widgets import DataTable

# Cells whose text starts with one of these get a colour (dropped under NO_COLOR by Textual).
STYLES = {"✗": "bold red", "!": "yellow", "?": "dim", "✓": "green", "error": "bold red",
          "warning": "yellow", "fail": "bold red", "warn": "yellow", "≠": "bold magenta"}


class RowLike(Protocol):
    @property
    def key(self) -> str: ...

    def cells(self) -> tuple[str, ...]: ...


def style_of(cell: str) -> str:
    """The colour of a cell by its leading mark or word ("" for none)."""
    for prefix, style in STYLES.items():
        if cell.startswith(prefix):
            return style
    return ""


def styled(cell: str) -> str | Text:
    style = style_of(cell)
    return Text(cell, style=style) if style else cell


class SyncTable(DataTable[str | Text]):
    """A DataTable fed whole lists of rows; it works out the cheapest way to show them.

    Same keys in the same order (a refresh of an unchanged filter): only the cells that changed
    are updated. Otherwise the table is rebuilt in one batch, keeping the cursor on the same row.
    """

    def __init__(self, columns: Sequence[tuple[str, str, int]], **kwargs: object) -> None:
        # No padding: the widths include one space, so 80 columns fit eight of them.
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=0, **kwargs)  # type: ignore[arg-type]
        self._columns = columns
        self._keys: list[str] = []
        self._cells: dict[str, tuple[str, ...]] = {}
        self.rows_shown: list[RowLike] = []

    def on_mount(self) -> None:
        for key, label, width in self._columns:
            self.add_column(label, width=width or self._flex_width(), key=key)

    def _flex_width(self) -> int:
        fixed = sum(w for _k, _l, w in self._columns)
        return max(12, self.size.width - fixed - 2)  # 2: the vertical scrollbar

    def on_resize(self) -> None:
        for key, _label, width in self._columns:
            if width == 0 and key in self.columns:
                self.columns[key].width = self._flex_width()  # type: ignore[index]
                self._require_update_dimensions = True
                self.refresh()

    def _fit(self, index: int, cell: str) -> str | Text:
        """Cut a cell one short of its column so neighbouring columns never touch."""
        width = self._columns[index][2] or self._flex_width()
        if len(cell) >= width:
            cell = cell[: max(1, width - 2)] + "…"
        return styled(cell)

    def sync(self, rows: Sequence[RowLike]) -> int:
        """Show ``rows``; returns how many cells (or rows, on a rebuild) were written."""
        keys = [r.key for r in rows]
        self.rows_shown = list(rows)
        if keys == self._keys:
            written = 0
            col_keys = [c[0] for c in self._columns]
            for r in rows:
                new = r.cells()
                old = self._cells[r.key]
                if new != old:
                    for i, (col, a, b) in enumerate(zip(col_keys, old, new)):
                        if a != b:
                            self.update_cell(r.key, col, self._fit(i, b))
                            written += 1
                    self._cells[r.key] = new
            return written
        current = self.selected_key()
        self.clear()
        self._cells = {}
        for r in rows:
            cells = r.cells()
            self._cells[r.key] = cells
            self.add_row(*(self._fit(i, c) for i, c in enumerate(cells)), key=r.key)
        self._keys = keys
        if current in self._cells:
            self.move_cursor(row=self.get_row_index(current), animate=False)
        return len(rows)

    def selected_key(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def selected(self) -> RowLike | None:
        key = self.selected_key()
        return self.rows_shown[self.cursor_row] if key is not None else None
