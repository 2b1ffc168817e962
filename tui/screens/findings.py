"""Every finding across the mesh, by severity then rank (root cause first); enter opens the subject."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..viewmodel import FindingRow, finding_markdown
from ..widgets.status_line import StatusLine
from ..widgets.tables import SyncTable

if TYPE_CHECKING:
    from ..data import Analysis

# The message names its subject, so no Subject column: at 80 columns the message gets 57
# characters; the panel under the table shows the selected one in full.
COLUMNS = (("rank", "#", 4), ("severity", "Severity", 9), ("code", "Code", 8), ("message", "Message", 0))


class FindingsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "copy_finding", "Copy as markdown"),
    ]

    AUTO_FOCUS = "#findings"
    DEFAULT_CSS = """
    FindingsScreen #findings { height: 1fr; }
    FindingsScreen #finding-detail { height: auto; max-height: 5; border-top: solid $primary; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        table = SyncTable(COLUMNS, id="findings")
        table.border_title = "findings"
        yield table
        yield Static(id="finding-detail")
        yield Footer(show_command_palette=False)  # ^p still opens it; the room is for our keys

    def on_mount(self) -> None:
        analysis = getattr(self.app, "analysis", None)
        if analysis is not None:
            self.show_analysis(analysis)

    def show_analysis(self, analysis: Analysis) -> None:
        table = self.query_one(SyncTable)
        table.sync(analysis.findings)
        errors = sum(1 for r in analysis.findings if r.finding.severity.value == "error")
        table.border_title = f"findings {len(analysis.findings)} ({errors} errors)"
        self.show_detail()

    def show_detail(self) -> None:
        """The selected finding in full: subject, message, what it explains or is caused by."""
        row = self.selected()
        detail = self.query_one("#finding-detail", Static)
        if row is None:
            detail.update("no findings: every check passed or was skipped")
            return
        f = row.finding
        text = Text(f"#{row.rank} {f.code} {f.subject}\n" if row.rank else f"{f.code} {f.subject}\n",
                    style="bold")
        text.append(f.message)
        if f.caused_by:
            text.append("\ncaused by: " + "; ".join(f.caused_by), style="italic")
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def selected(self) -> FindingRow | None:
        row = self.query_one(SyncTable).selected()
        return row if isinstance(row, FindingRow) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        row = self.selected()
        if row is None:
            return
        if row.finding.service is None:
            self.notify(f"{row.finding.code} is about the mesh, not one service", severity="warning")
            return
        self.app.open_service(row.finding.service)  # type: ignore[attr-defined]

    def action_copy_finding(self) -> None:
        row = self.selected()
        if row is None:
            self.notify("no finding to copy", severity="warning")
            return
        self.app.copy_to_clipboard(finding_markdown(row.finding))
        self.notify(f"copied {row.finding.code} {row.finding.subject} as markdown")
