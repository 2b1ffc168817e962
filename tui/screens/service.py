"""One service: RED over time, edges, proxies, diagnosis, critical path, configuration."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from meshobs.model import ServiceRef, thaw

from ..service_model import ServiceView, red_summary, service_view
from ..styles import adapt, is_no_color
from ..viewmodel import HEALTH_MARK, finding_markdown, fmt_ms, fmt_pct, fmt_rate
from ..widgets.status_line import StatusLine
from ..widgets.tables import style_of, styled

if TYPE_CHECKING:
    from ..data import Analysis

MARKS = {"pass": "✓", "warn": "!", "fail": "×", "skipped": "-", "error": "×"}


class ServiceScreen(Screen[None]):
    """Tabs: traffic (edges), proxies, diagnosis (``d``), traces, config."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("d", "tab('diagnosis')", "Diagnosis"),
        # At 80 columns the footer holds back, diagnosis and the app's quit, help and findings;
        # the tab bar names the other tabs and help (?) lists every key.
        Binding("t", "tab('traffic')", "Traffic", show=False),
        Binding("x", "tab('proxies')", "Proxies", show=False),
        Binding("c", "copy_finding", "Copy finding", show=False),
        Binding("g", "tab('config')", "Config", show=False),
        Binding("T", "tab('traces')", "Traces", show=False),
    ]

    DEFAULT_CSS = """
    ServiceScreen #red { height: 4; padding: 0 1; }
    ServiceScreen DataTable { height: auto; max-height: 12; }
    ServiceScreen #finding-detail { padding: 0 1; }
    ServiceScreen .note { color: $text-muted; padding: 0 1; }
    """

    class ViewReady(Message):
        """The worker built the view model of the service."""

        def __init__(self, view: ServiceView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, ref: ServiceRef) -> None:
        super().__init__()
        self.ref = ref
        self.view: ServiceView | None = None

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static(f"{self.ref}  loading…", id="red")
        with TabbedContent(initial="traffic", id="tabs"):
            with TabPane("Traffic", id="traffic"):
                yield DataTable(id="edges", cursor_type="row")
            with TabPane("Proxies", id="proxies"):
                yield DataTable(id="proxy-table", cursor_type="row")
            with TabPane("Diagnosis", id="diagnosis"), VerticalScroll():
                yield DataTable(id="findings", cursor_type="row")
                yield Static(id="finding-detail")
                yield Static(id="checklist")
            with TabPane("Traces", id="traces"), VerticalScroll():
                yield DataTable(id="hops", cursor_type="row")
                yield Static(id="slowest", classes="note")
            with TabPane("Config", id="config"), VerticalScroll():
                yield DataTable(id="config-table", cursor_type="row")
                yield Static(id="config-note", classes="note")
        yield Footer(show_command_palette=False)  # ^p still opens it; the room is for our keys

    def on_mount(self) -> None:
        analysis = getattr(self.app, "analysis", None)
        if analysis is not None:
            self.show_analysis(analysis)

    def show_analysis(self, analysis: Analysis) -> None:
        self.build_view(analysis)

    @work(thread=True, exclusive=True, exit_on_error=False, group="service-view")
    def build_view(self, analysis: Analysis) -> None:
        """The critical path and drift comparison read many spans and routes: not on the UI thread."""
        view = service_view(analysis.snapshot, analysis.report_of(self.ref), self.ref)
        self.post_message(self.ViewReady(view))

    def on_service_screen_view_ready(self, message: ViewReady) -> None:
        self.view = view = message.view
        header = Text(f"{view.ref}  ", style="bold")
        mark = HEALTH_MARK.get(view.status, view.status)
        header.append(mark, style=style_of(mark, is_no_color(self)))
        for line in red_summary(view):
            header.append("\n" + line)
        self.query_one("#red", Static).update(header)
        self._fill("#edges", ("dir", "peer", "req/s", "err%", "p99"),
                   [("← in" if n.direction == "in" else "→ out", n.peer, fmt_rate(n.red.rate),
                     fmt_pct(n.red.error_ratio), fmt_ms(n.red.p99_ms)) for n in view.neighbours])
        self._fill("#proxy-table", ("workload", "pod", "ready", "state", "xDS", "envoy", "cert"),
                   [p.cells() for p in view.proxies])
        self._fill("#findings", ("#", "sev", "code", "subject", "message"),
                   [(str(f.rank), f.severity.value, f.code, f.subject, f.message) for f in view.findings])
        self.query_one("#checklist", Static).update(self._checklist(view))
        self._show_finding(0)
        self._fill("#hops", ("service", "operation", "share", "p50", "traces"), [h.cells() for h in view.hops])
        slow = ", ".join(f"{tid[:8]} {ms:.0f}ms" for tid, ms in view.slowest)
        self.query_one("#slowest", Static).update(
            (f"critical path of the {len(view.slowest)} slowest traces: {slow}" if slow else "")
            + ("\n" + "\n".join(view.notes) if view.notes else ""))
        self._fill("#config-table", ("resource", "field", "live", "effective"), [c.cells() for c in view.config])
        drifted = sum(1 for c in view.config if c.drift)
        self.query_one("#config-note", Static).update(
            "no configuration routes to this service" if not view.config else
            f"{drifted} field(s) drifted between live and effective (≠)" if drifted else
            "live and effective (Envoy) configuration agree")

    def _fill(self, selector: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        table = self.query_one(selector, DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        table.add_columns(*columns)
        mono = is_no_color(self)
        table.add_rows([tuple(styled(c, mono) for c in r) for r in rows])
        if rows and 0 <= row < len(rows):
            table.move_cursor(row=row, animate=False)

    def _checklist(self, view: ServiceView) -> Text:
        text = Text("Checklist\n", style="bold")
        mono = is_no_color(self)
        # Checks written for the other mesh say nothing about this service: one line, not many.
        other_mesh = [c for c in view.checks if c.reason.startswith("not applicable")]
        for c in view.checks:
            if c in other_mesh:
                continue
            mark = MARKS.get(c.status, "?")
            text.append(f" {mark} ", style=style_of(c.status, mono))
            text.append(f"{c.category.value:<26} {c.id}")
            if c.reason:
                text.append(f"  ({c.reason})", style=adapt("dim", mono))
            text.append("\n")
        if other_mesh:
            text.append(f"   not applicable to this mesh: {len(other_mesh)} checks\n", style=adapt("dim", mono))
        return text

    def _show_finding(self, index: int) -> None:
        detail = self.query_one("#finding-detail", Static)
        mono = is_no_color(self)
        if self.view is None or not self.view.findings:
            detail.update(Text("no findings: every check passed or was skipped", style=adapt("green", mono)))
            return
        f = self.view.findings[min(index, len(self.view.findings) - 1)]
        text = Text(f"{f.code} {f.subject}\n", style="bold")
        text.append(f.message + "\n")
        if f.caused_by:
            text.append("caused by: " + "; ".join(f.caused_by) + "\n", style=adapt("yellow", mono))
        if f.hint:
            text.append("hint: " + f.hint + "\n", style=adapt("cyan", mono))
        text.append("evidence: " + json.dumps(thaw(f.evidence), default=str) + "\n", style=adapt("dim", mono))
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "findings":
            self._show_finding(event.cursor_row)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "diagnosis":
            self.query_one("#findings", DataTable).focus()

    def action_copy_finding(self) -> None:
        if self.view is None or not self.view.findings:
            self.notify("no finding to copy", severity="warning")
            return
        row = self.query_one("#findings", DataTable).cursor_row
        f = self.view.findings[max(0, min(row, len(self.view.findings) - 1))]
        self.app.copy_to_clipboard(finding_markdown(f))
        self.notify(f"copied {f.code} {f.subject} as markdown")
