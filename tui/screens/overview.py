"""The overview: every service, worst first, with the neighbourhood of the selected one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Input

from meshobs.model import ServiceRef

from ..keys import OVERVIEW, bindings
from ..viewmodel import (
    OVERVIEW_COLUMNS,
    PREVIOUS,
    SORT_KEYS,
    NeighbourRow,
    RowFilter,
    ServiceRow,
    filter_rows,
    sort_rows,
)
from ..widgets.neighbourhood import Neighbourhood
from ..widgets.prompt import Prompt
from ..widgets.tables import SyncTable
from .base import MeshScreen

if TYPE_CHECKING:
    from ..data import Analysis

HEALTH_CYCLE = ("", "failing", "degraded", "healthy", "unknown", "partial", "clean")
# Above this many services the filter applies on enter rather than on every keystroke.
LIVE_FILTER_MAX = 1500


class OverviewScreen(MeshScreen):
    """All services; ``/`` search, ``n``/``h`` cycle namespace/health filters, ``o`` sort."""

    BINDINGS = bindings(OVERVIEW, back=False)

    AUTO_FOCUS = "#services"
    DEFAULT_CSS = """
    OverviewScreen #search { display: none; height: 3; }
    OverviewScreen #search.visible { display: block; }
    OverviewScreen #services { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.analysis: Analysis | None = None
        self.filter = RowFilter()
        self.namespace, self.health, self.query_text = "", "", ""
        self.sort_key, self.reverse = "health", False
        self.shown = 0

    def body(self) -> ComposeResult:
        yield Prompt(placeholder="search: text, ns:NAME, health:failing  (enter to apply, esc to clear)",
                    id="search")
        table = SyncTable(OVERVIEW_COLUMNS, id="services")
        table.border_title = "services"
        yield table
        yield Neighbourhood(id="neighbourhood")

    @property
    def table(self) -> SyncTable:
        return self.query_one("#services", SyncTable)

    def show_analysis(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.apply()

    def visible_rows(self) -> list[ServiceRow]:
        if self.analysis is None:
            return []
        rows = filter_rows(self.analysis.rows, self.filter)
        # Rows come worst-first from the worker; only another order needs a sort here.
        if self.sort_key != "health" or self.reverse:
            rows = sort_rows(rows, self.sort_key, self.reverse)
        return rows

    def apply(self) -> None:
        self.filter = RowFilter.parse(self.query_text, self.namespace, self.health)
        rows = self.visible_rows()
        self.table.sync(rows)
        total = len(self.analysis.rows) if self.analysis else 0
        described = self.filter.describe()
        order = f"sort: {self.sort_key}{' ↑' if self.reverse else ''}"
        self.table.border_title = f"services {len(rows)}/{total}" + (f"  {described}" if described else "")
        self.table.border_subtitle = order + self.diagnosis_note()
        self.shown = len(rows)
        self.update_neighbourhood()
        update = getattr(self.app, "update_status", None)
        if update is not None:
            update()

    def diagnosis_note(self) -> str:
        """What the health column says while the diagnosis runs ("" once it has)."""
        if self.analysis is None or not self.analysis.pending:
            return ""
        if self.analysis.from_previous:
            return f"  ·  diagnosing…  {PREVIOUS} health from the previous refresh"
        return "  ·  diagnosing…  health and findings follow"

    def services_label(self, total: int) -> str:
        """The status line's count: "2 of 5 services · filter: data" while a filter is on."""
        described = self.filter.describe()
        if not described:
            return f"{total} services"
        return f"{self.shown} of {total} services · filter: {described}"

    def update_neighbourhood(self) -> None:
        panel = self.query_one(Neighbourhood)
        row = self.table.selected()
        if self.analysis is None or not isinstance(row, ServiceRow):
            described = self.filter.describe()
            if self.analysis is not None and described and not self.shown:
                panel.say(f"no service matches '{described}' (esc clears)")
            elif self.analysis is not None and not self.analysis.answered:
                panel.say("no source answered, so there is nothing to show: see the source bar above "
                          "(:sources for every error)")
            elif self.analysis is not None and not self.analysis.rows:
                panel.say("no services: the sources answered but found none (:sources)")
            else:
                panel.update("")
            return
        if self.analysis.remote is not None:
            # The load process has the edges: asked off the UI thread (a key must never wait
            # for it), the service's own line shown meanwhile.
            self._show_neighbours(row, [], 0)
            self.ask_neighbours(self.analysis, row)
            return
        rows, hidden = self.analysis.views(self.app.loader).neighbourhood(row.ref, 3)  # type: ignore[attr-defined]
        self._show_neighbours(row, rows, hidden)

    def _show_neighbours(self, row: ServiceRow, rows: list[NeighbourRow], hidden: int) -> None:
        note = ""
        if row.health == "pending":
            note = "diagnosing…: its health and findings follow"
        elif row.previous:
            note = "health from the previous refresh: diagnosing…"
        self.query_one(Neighbourhood).show(str(row.ref), rows, hidden, row.health, row.reason, note)

    class NeighboursReady(Message):
        def __init__(self, row: ServiceRow, rows: list[NeighbourRow], hidden: int) -> None:
            super().__init__()
            self.row, self.rows, self.hidden = row, rows, hidden

    @work(thread=True, exclusive=True, exit_on_error=False, group="neighbours", description="neighbours")
    def ask_neighbours(self, analysis: Analysis, row: ServiceRow) -> None:
        rows, hidden = analysis.views(self.app.loader).neighbourhood(row.ref, 3)  # type: ignore[attr-defined]
        self.post_message(self.NeighboursReady(row, rows, hidden))

    def on_overview_screen_neighbours_ready(self, message: NeighboursReady) -> None:
        if self.is_attached and self.table.selected() is message.row:  # still the row selected
            self._show_neighbours(message.row, message.rows, message.hidden)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.update_neighbourhood()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.table.selected()
        if isinstance(row, ServiceRow):
            self.app.open_service(row.ref)  # type: ignore[attr-defined]

    def selected_service(self) -> ServiceRef | None:
        row = self.table.selected()
        return row.ref if isinstance(row, ServiceRow) else None

    def action_graph(self) -> None:
        self.app.open_graph(self.selected_service())  # type: ignore[attr-defined]

    # -- filters ----------------------------------------------------------------------------
    # Focus moves with Screen.set_focus, not Widget.focus(): focus() takes effect only after
    # the keys already queued, so a pasted "/cart⏎" typed "cart" into the table, opened the
    # selected service with ⏎ and left the hidden search box focused (q then typed a "q").
    def action_search(self) -> None:
        if isinstance(self.focused, Input):
            raise SkipAction()  # a "/" typed into a prompt is a character (priority binding)
        box = self.query_one("#search", Input)
        box.add_class("visible")
        box.value = self.query_text
        box.action_select_all()  # the search in effect, to edit or type over
        self.set_focus(box)

    def prompt_done(self, prompt: Input, key: str) -> None:
        if prompt.id != "search":
            return
        if key == "escape":
            self.action_clear_filter()
            return
        self.query_text = prompt.value
        self.apply()
        prompt.remove_class("visible")
        self.set_focus(self.table)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "search":
            return
        if self.analysis is not None and len(self.analysis.rows) <= LIVE_FILTER_MAX:
            self.query_text = event.value
            self.apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        self.query_text = event.value
        self.apply()
        event.input.remove_class("visible")
        self.set_focus(self.table)

    def action_clear_filter(self) -> None:
        box = self.query_one("#search", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_text, self.namespace, self.health = "", "", ""
        self.apply()
        self.set_focus(self.table)

    def set_namespace(self, namespace: str) -> None:
        """``:ns NAME`` (``:ns`` alone: every namespace)."""
        known = {r.ref.namespace for r in self.analysis.rows} if self.analysis else set()
        if namespace and known and namespace not in known:
            self.notify(f"no namespace {namespace!r} (known: {', '.join(sorted(known))})", severity="warning")
            return
        self.namespace = namespace
        self.apply()
        self.set_focus(self.table)

    def action_cycle_namespace(self) -> None:
        if self.analysis is None:
            return
        options = ["", *sorted({r.ref.namespace for r in self.analysis.rows})]
        self.namespace = options[(options.index(self.namespace) + 1) % len(options)] \
            if self.namespace in options else ""
        self.apply()

    def action_cycle_health(self) -> None:
        self.health = HEALTH_CYCLE[(HEALTH_CYCLE.index(self.health) + 1) % len(HEALTH_CYCLE)]
        self.apply()

    def action_cycle_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.reverse = False
        self.apply()

    def action_reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self.apply()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORT_KEYS:
            self.reverse = (not self.reverse) if key == self.sort_key else False
            self.sort_key = key
            self.apply()
