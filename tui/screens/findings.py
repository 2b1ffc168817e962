"""Every finding across the mesh, by severity then rank (root cause first); enter opens one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from ..keys import FINDINGS, bindings
from ..viewmodel import FindingRow, finding_markdown
from ..widgets.tables import SyncTable
from .base import MeshScreen

if TYPE_CHECKING:
    from ..data import Analysis

# The message names its subject, so no Subject column: at 80 columns the message gets 57
# characters; the panel under the table shows the selected one in full.
COLUMNS = (("rank", "#", 4), ("severity", "Severity", 9), ("code", "Code", 8), ("message", "Message", 0))


class FindingsScreen(MeshScreen):
    BINDINGS = bindings(FINDINGS)

    AUTO_FOCUS = "#findings"
    DEFAULT_CSS = """
    FindingsScreen #findings { height: 1fr; }
    FindingsScreen #finding-detail { height: auto; max-height: 6; border-top: solid $primary; padding: 0 1; }
    """

    def body(self) -> ComposeResult:
        table = SyncTable(COLUMNS, id="findings")
        table.border_title = "findings"
        yield table
        yield Static(id="finding-detail")

    analysis: Analysis | None = None

    def show_analysis(self, analysis: Analysis) -> None:
        self.analysis = analysis
        table = self.query_one(SyncTable)
        table.sync(analysis.findings)
        errors = sum(1 for r in analysis.findings if r.finding.severity.value == "error")
        table.border_title = ("findings: diagnosing…" if analysis.pending and not analysis.from_previous else
                              f"findings {len(analysis.findings)} ({errors} errors)")
        table.border_subtitle = ("from the previous refresh: diagnosing…" if analysis.from_previous else
                                 f"could not diagnose: {analysis.diagnosis_error}" if analysis.diagnosis_error
                                 else "")
        self.show_detail()

    def show_detail(self) -> None:
        """The selected finding in full: subject, message, what it explains or is caused by."""
        row = self.selected()
        detail = self.query_one("#finding-detail", Static)
        if row is None:
            analysis = self.analysis
            # No finding yet (or a failed engine) is not "every check passed".
            detail.update("diagnosing…: the findings appear when the diagnosis finishes"
                          if analysis is not None and analysis.pending else
                          f"could not diagnose: {analysis.diagnosis_error}"
                          if analysis is not None and analysis.diagnosis_error else
                          "no findings: every check passed or was skipped")
            return
        f = row.finding
        text = Text(f"#{row.rank} {f.code} {f.subject}\n" if row.rank else f"{f.code} {f.subject}\n",
                    style="bold")
        text.append(f.message)
        if f.caused_by:
            text.append("\ncaused by: " + "; ".join(f.caused_by), style="italic")
        text.append("\nenter: evidence and doc", style="dim")
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def selected(self) -> FindingRow | None:
        row = self.query_one(SyncTable).selected()
        return row if isinstance(row, FindingRow) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from .finding import FindingScreen

        row = self.selected()
        if row is not None:
            self.app.push_screen(FindingScreen(row.finding, row.rank))

    def action_copy(self) -> None:
        row = self.selected()
        if row is None:
            self.notify("no finding to copy", severity="warning")
            return
        self.app.copy_to_clipboard(finding_markdown(row.finding))
        self.notify(f"copied {row.finding.code} {row.finding.subject} as markdown")
