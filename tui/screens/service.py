"""One service: RED over time, then tabs: traffic, proxies, diagnosis, traces, config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from meshobs.model import ServiceRef

from ..keys import SERVICE, bindings
from ..proxy_model import PROXY_LIST_COLUMNS
from ..rows import TableRow
from ..service_model import ConfigEntry, ServiceView, SlowTrace, red_summary
from ..styles import adapt, is_no_color
from ..viewmodel import HEALTH_MARK, PREVIOUS, finding_markdown, fmt_ms, fmt_pct, fmt_rate
from ..widgets.tables import SyncTable, style_of
from .base import TabbedScreen
from .proxies import open_pod

if TYPE_CHECKING:
    from ..data import Analysis

MARKS = {"pass": "✓", "warn": "!", "fail": "×", "skipped": "-", "error": "×"}
# Columns that matter first; the flexible (0) one takes the rest of the width, so at 120
# columns the finding's message gets ~95 characters and at 80 ~55.
EDGE_COLUMNS = (("dir", "dir", 6), ("peer", "peer", 0), ("rate", "req/s", 8), ("err", "err%", 7),
                ("p99", "p99", 7), ("mtls", "mTLS", 5))
FINDING_COLUMNS = (("rank", "#", 3), ("sev", "sev", 8), ("code", "code", 8), ("message", "message", 0))
HOP_COLUMNS = (("service", "service", 0), ("operation", "operation", 0), ("share", "share", 6),
               ("p50", "p50", 7), ("traces", "traces", 7))
TRACE_COLUMNS = (("id", "trace id", 34), ("ms", "duration", 9), ("link", "link", 0))
CONFIG_COLUMNS = (("resource", "resource", 0), ("state", "drift", 14))
TABS = ("traffic", "proxies", "diagnosis", "traces", "config")


class ServiceScreen(TabbedScreen):
    """Tabs 1-5 (Tab/Shift-Tab, or t x d T g): traffic, proxies, diagnosis, traces, config."""

    BINDINGS = [*TabbedScreen.BINDINGS, *bindings(SERVICE, back=False)]

    DEFAULT_CSS = """
    ServiceScreen #red { height: auto; padding: 0 1; }
    ServiceScreen TabPane { padding: 0; }
    ServiceScreen SyncTable { height: auto; max-height: 14; }
    ServiceScreen .detail { height: auto; padding: 0 1; }
    ServiceScreen .note { color: $text-muted; padding: 0 1; }
    """

    class ViewReady(Message):
        """The worker built the view model of the service."""

        def __init__(self, view: ServiceView, verdict: str = "") -> None:
            super().__init__()
            self.view, self.verdict = view, verdict

    def __init__(self, ref: ServiceRef) -> None:
        super().__init__()
        self.ref = ref
        self.view: ServiceView | None = None
        # Where the diagnosis shown stands: "" (this load's), "pending" (none yet), "previous"
        # (the previous refresh's, while this one's runs), or why the engine failed.
        self.verdict = ""

    def body(self) -> ComposeResult:
        yield Static(f"{self.ref}  loading…", id="red", classes="data")
        with TabbedContent(initial="traffic", id="tabs"):
            with TabPane("1 Traffic", id="traffic"):
                yield SyncTable(EDGE_COLUMNS, id="edges")
            with TabPane("2 Proxies", id="proxies"), VerticalScroll():
                yield SyncTable(PROXY_LIST_COLUMNS, id="proxy-table")
                yield Static("enter: the pod's Envoy (listeners, routes, clusters, endpoints, secrets, xDS)",
                             classes="note")
            with TabPane("3 Diagnosis", id="diagnosis"), VerticalScroll():
                yield SyncTable(FINDING_COLUMNS, id="findings")
                yield Static(id="finding-detail", classes="detail")
                yield Static(id="checklist", classes="detail")
            with TabPane("4 Traces", id="traces"), VerticalScroll():
                yield SyncTable(HOP_COLUMNS, id="hops")
                yield SyncTable(TRACE_COLUMNS, id="slowest")
                yield Static(id="trace-note", classes="note")
            with TabPane("5 Config", id="config"), VerticalScroll():
                yield SyncTable(CONFIG_COLUMNS, id="config-table")
                yield Static(id="config-detail", classes="detail")

    def on_mount(self) -> None:
        # Textual runs MeshScreen.on_mount too (every class's handler in the MRO): not super().
        self.focus_tab("traffic")

    def show_analysis(self, analysis: Analysis) -> None:
        self.build_view(analysis)

    @work(thread=True, exclusive=True, exit_on_error=False, group="service-view", description="service-view")
    def build_view(self, analysis: Analysis) -> None:
        """The critical path and drift comparison read many spans and routes: not on the UI thread."""
        view, verdict = analysis.views(self.app.loader).service(self.ref)  # type: ignore[attr-defined]
        self.post_message(self.ViewReady(view, verdict))

    def selected_service(self) -> ServiceRef | None:
        return self.ref

    def on_service_screen_view_ready(self, message: ViewReady) -> None:
        if not self.is_attached:  # closed while its worker ran
            return
        self.view = view = message.view
        self.verdict = message.verdict
        mono = is_no_color(self)
        header = Text(f"{view.ref}  ", style="bold")
        mark = HEALTH_MARK.get("pending" if self.verdict == "pending" else view.status, view.status)
        header.append(mark, style=style_of(mark, mono))
        if self.verdict:
            header.append("  " + self._verdict_note(), style=adapt("italic", mono))
        for line in red_summary(view):
            header.append("\n" + line)
        self.query_one("#red", Static).update(header)
        self.query_one("#edges", SyncTable).sync(
            [TableRow(f"{n.direction}|{n.peer}", ("← in" if n.direction == "in" else "→ out", n.peer,
                                                  fmt_rate(n.red.rate), fmt_pct(n.red.error_ratio),
                                                  fmt_ms(n.red.p99_ms), n.mtls))
             for n in view.neighbours])
        self.query_one("#proxy-table", SyncTable).sync(view.proxies)
        self.query_one("#findings", SyncTable).sync(
            [TableRow(f"{f.code}|{f.subject}|{i}", (str(f.rank), f.severity.value, f.code, f.message), f)
             for i, f in enumerate(view.findings)])
        self.query_one("#checklist", Static).update(self._checklist(view))
        self._show_finding()
        self.query_one("#hops", SyncTable).sync(view.hops)
        self.query_one("#slowest", SyncTable).sync(view.slowest)
        self.query_one("#trace-note", Static).update("\n".join(view.notes))
        self.query_one("#config-table", SyncTable).sync(view.config)
        self._show_config()

    def _verdict_note(self) -> str:
        if self.verdict == "pending":
            return "diagnosing…: findings and the checklist follow"
        if self.verdict == "previous":
            return f"{PREVIOUS} from the previous refresh: diagnosing…"
        return f"could not diagnose: {self.verdict}" if self.verdict else ""

    def _checklist(self, view: ServiceView) -> Text:
        text = Text("Checklist\n", style="bold")
        mono = is_no_color(self)
        if self.verdict == "pending":
            text.append(self._verdict_note(), style=adapt("italic", mono))
            return text
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

    def _selected_finding(self) -> TableRow | None:
        row = self.query_one("#findings", SyncTable).selected()
        return row if isinstance(row, TableRow) else None

    def _show_finding(self) -> None:
        detail = self.query_one("#finding-detail", Static)
        mono = is_no_color(self)
        row = self._selected_finding()
        if self.view is None or row is None:
            if self.verdict and self.verdict != "previous":  # no finding yet is not a pass
                detail.update(Text(self._verdict_note(), style=adapt("italic", mono)))
                return
            detail.update(Text("no findings: every check passed or was skipped", style=adapt("green", mono)))
            return
        f = row.item
        text = Text(f"{f.code} {f.subject}\n", style="bold")  # type: ignore[attr-defined]
        text.append(f.message + "\n")  # type: ignore[attr-defined]
        if f.caused_by:  # type: ignore[attr-defined]
            text.append("caused by: " + "; ".join(f.caused_by) + "\n", style=adapt("yellow", mono))  # type: ignore[attr-defined]
        if f.hint:  # type: ignore[attr-defined]
            text.append("hint: " + f.hint + "\n", style=adapt("cyan", mono))  # type: ignore[attr-defined]
        text.append("enter: evidence and doc", style=adapt("dim", mono))
        detail.update(text)

    def _show_config(self) -> None:
        row = self.query_one("#config-table", SyncTable).selected()
        detail = self.query_one("#config-detail", Static)
        if not isinstance(row, ConfigEntry):
            detail.update("no VirtualService or DestinationRule names this service" if self.view is not None else "")
            return
        mono = is_no_color(self)
        text = Text()
        for line in row.lines():
            text.append(line + "\n", style=adapt("bold magenta", mono) if line.startswith("≠") else "")
        text.append("y: YAML, live and intended side by side", style=adapt("dim", mono))
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "findings":
            self._show_finding()
        elif event.data_table.id == "config-table":
            self._show_config()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        if table.id == "findings":
            row = self._selected_finding()
            if row is not None:
                from .finding import FindingScreen

                self.app.push_screen(FindingScreen(row.item, row.item.rank))  # type: ignore[arg-type, attr-defined]
        elif table.id == "proxy-table":
            open_pod(self, self.query_one("#proxy-table", SyncTable).selected())
        elif table.id == "edges":
            edge = self.query_one("#edges", SyncTable).selected()
            peer = edge.values[1] if isinstance(edge, TableRow) else ""
            found = self.app.find_service(peer.split(" ")[0]) if "/" in peer else None  # type: ignore[attr-defined]
            if found is not None:
                self.app.open_service(found)  # type: ignore[attr-defined]
        elif table.id == "config-table":
            self.action_yaml()

    def action_graph(self) -> None:
        self.app.open_graph(self.ref)  # type: ignore[attr-defined]

    def action_yaml(self) -> None:
        from .yaml import YamlScreen

        tabs = self.query_one(TabbedContent)
        row = self.query_one("#config-table", SyncTable).selected()
        if tabs.active != "config" or not isinstance(row, ConfigEntry):
            self.switch_to("config")
            if not isinstance(row, ConfigEntry):
                self.notify("no resource to show: no VirtualService or DestinationRule names this service",
                            severity="warning")
                return
        self.app.push_screen(YamlScreen(row.resource))

    def action_copy(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active == "traces":
            row = self.query_one("#slowest", SyncTable).selected()
            if isinstance(row, SlowTrace):
                self.app.copy_to_clipboard(row.link or row.trace_id)
                self.notify(f"copied {'the link to ' if row.link else ''}trace {row.trace_id}")
                return
        row = self._selected_finding()
        if row is None:
            self.notify("no finding to copy", severity="warning")
            return
        f = row.item
        self.app.copy_to_clipboard(finding_markdown(f))  # type: ignore[arg-type]
        self.notify(f"copied {f.code} {f.subject} as markdown")  # type: ignore[attr-defined]
