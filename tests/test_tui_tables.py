"""SyncTable: a refresh rewrites the rows on screen at once and the rest in time-bounded slices
between turns of the event loop (keys are read in between); the cursor stays on its row by key."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from meshobs.tui.rows import TableRow
from meshobs.tui.widgets import tables
from meshobs.tui.widgets.tables import SyncTable

pytestmark = pytest.mark.anyio
COLUMNS = (("name", "name", 0), ("value", "value", 8))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield SyncTable(COLUMNS, id="t")


def rows(n: int, value: int) -> list[TableRow]:
    return [TableRow(f"row{i}", (f"row{i}", str(value + i))) for i in range(n)]


async def test_a_big_refresh_updates_the_screen_first_and_the_rest_between_frames() -> None:
    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(SyncTable)
        table.sync(rows(1000, 0))
        while not table.settled:
            await pilot.pause(0.01)
        table.move_cursor(row=5)
        written = table.sync(rows(1000, 10_000))
        # The rows on screen (and a margin) now; the rest is queued, not written in one go.
        assert 0 < written <= table.size.height + 2 * tables.MARGIN
        assert str(table.get_row_at(0)[1]) == "10000" and not table.settled
        assert str(table.get_row_at(999)[1]) == "999"
        while not table.settled:
            await pilot.pause(0.01)
        assert str(table.get_row_at(999)[1]) == "10999"
        assert table.selected_key() == "row5"
        # A newer refresh takes over from queued chunks of an older one.
        table.sync(rows(1000, 20_000))
        table.sync(rows(1000, 30_000))
        while not table.settled:
            await pilot.pause(0.01)
        assert {str(table.get_row_at(i)[1]) for i in (0, 500, 999)} == {"30000", "30500", "30999"}


async def test_slices_are_bounded_by_time_not_by_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no time to spare each slice does the least it can (a few rows): many slices, the
    same end state, the cursor kept. A rebuild adds a screenful at once, the rest in slices."""
    monkeypatch.setattr(tables, "SLICE_S", 0.0)
    slices: list[int] = []
    update = SyncTable._update_rows

    def counted(self: SyncTable, deadline: float) -> int:
        slices.append(self._next_update)
        return update(self, deadline)

    monkeypatch.setattr(SyncTable, "_update_rows", counted)
    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(SyncTable)
        added = table.sync(rows(500, 0))
        assert table.size.height <= added < 500 and not table.settled
        while not table.settled:
            await pilot.pause(0.01)
        assert table.row_count == 500 and str(table.get_row_at(499)[1]) == "499"
        table.move_cursor(row=7)
        table.sync(list(reversed(rows(500, 1000))))
        while not table.settled:
            await pilot.pause(0.01)
        assert len(slices) >= (500 - table.size.height - 2 * tables.MARGIN) // tables.CHECK_EVERY
        assert [str(table.get_row_at(i)[1]) for i in (0, 250, 499)] == ["1499", "1249", "1000"]
        assert table.selected_key() == "row7" and table.cursor_row == 492
