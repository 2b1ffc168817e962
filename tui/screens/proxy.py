"""One pod's Envoy, as ``istioctl proxy-config`` shows it: listeners, routes, clusters,
endpoints, secrets and xDS state, one tab each (Tab/Shift-Tab, 1-6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from ..keys import PROXY, bindings
from ..proxy_model import COLUMNS, ProxyView, row_text, xds_notes
from ..rows import TableRow
from ..styles import adapt, is_no_color
from ..widgets.tables import SyncTable
from .base import TabbedScreen

if TYPE_CHECKING:
    from ..data import Analysis

TITLES = (("listeners", "Listeners"), ("routes", "Routes"), ("clusters", "Clusters"),
          ("endpoints", "Endpoints"), ("secrets", "Secrets"), ("xds", "xDS"))


class ProxyScreen(TabbedScreen):
    """Opened from a proxies list (enter). Without data for the pod in the snapshot (a scoped
    snapshot, a pod not collected) the pod's admin API is asked now, in a worker."""

    BINDINGS = [*TabbedScreen.BINDINGS, *bindings(PROXY, back=False)]
    DEFAULT_CSS = """
    ProxyScreen #proxy-summary { height: auto; padding: 0 1; }
    ProxyScreen SyncTable { height: 1fr; }
    ProxyScreen .detail { height: auto; max-height: 6; border-top: solid $primary; padding: 0 1; }
    ProxyScreen TabPane { padding: 0; }
    """

    class ViewReady(Message):
        def __init__(self, view: ProxyView | None, problem: str = "", note: str = "") -> None:
            super().__init__()
            self.view, self.problem, self.note = view, problem, note

    def __init__(self, namespace: str, pod: str) -> None:
        super().__init__()
        self.namespace, self.pod = namespace, pod
        self.view: ProxyView | None = None
        self.fetched = False

    def body(self) -> ComposeResult:
        yield Static(f"{self.pod}.{self.namespace}  loading…", id="proxy-summary", classes="data")
        with TabbedContent(initial="listeners", id="tabs"):
            for tab, title in TITLES:
                with TabPane(title, id=tab):
                    yield SyncTable(COLUMNS[tab], id=f"{tab}-table")
                    yield Static(id=f"{tab}-detail", classes="detail")

    def on_mount(self) -> None:
        # Textual runs MeshScreen.on_mount too (every class's handler in the MRO): not super().
        self.focus_tab("listeners")

    def show_analysis(self, analysis: Analysis) -> None:
        if not self.fetched:  # a pod fetched on demand stays as fetched until `u`
            self.build(analysis, fetch=False)

    def _can_fetch(self) -> bool:
        analysis = self.analysis_now()
        return analysis is not None and analysis.can_fetch

    def action_fetch(self) -> None:
        analysis = self.analysis_now()
        if analysis is not None:
            self.query_one("#proxy-summary", Static).update(f"{self.pod}.{self.namespace}  fetching…")
            self.build(analysis, fetch=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="proxy-view", description="proxy-view")
    def build(self, analysis: Analysis, fetch: bool) -> None:
        """From the snapshot when it has the pod; else (or on `u`) from the pod's admin API."""
        views = analysis.views(self.app.loader)  # type: ignore[attr-defined]
        if not fetch:
            found, pending = views.proxy(self.namespace, self.pod)
            if found is not None:
                self.post_message(self.ViewReady(found, note=pending))
                return
        view, problem = views.fetch_proxy(self.namespace, self.pod, self.app.clock())  # type: ignore[attr-defined]
        if view is not None:
            self.fetched = True
        self.post_message(self.ViewReady(view, problem))

    def on_proxy_screen_view_ready(self, message: ViewReady) -> None:
        if not self.is_attached:  # closed while its worker ran
            return
        mono = is_no_color(self)
        summary = self.query_one("#proxy-summary", Static)
        view = self.view = message.view
        if view is None:
            summary.update(Text(f"{self.pod}.{self.namespace}: {message.problem}", style=adapt("bold red", mono)))
            return
        text = Text(view.summary, style="bold")
        text.append(f"\nfrom {view.origin}" + (" (u: fetch from the pod now)" if self._can_fetch() else ""),
                    style=adapt("dim", mono))
        if message.problem:
            text.append(f"\npartial: {message.problem}", style=adapt("yellow", mono))
        if message.note:
            text.append(f"\n{message.note}", style=adapt("italic", mono))
        summary.update(text)
        for tab, _title in TITLES:
            table = self.query_one(f"#{tab}-table", SyncTable)
            rows = view.tabs[tab]
            table.sync(rows)
            table.border_title = f"{tab} {len(rows)}"
            self._detail(tab)

    def _detail(self, tab: str) -> None:
        detail = self.query_one(f"#{tab}-detail", Static)
        if self.view is None:
            return
        if tab == "xds":
            detail.update("\n".join(xds_notes(self.view.proxy, self.view.findings)))
            return
        row = self.query_one(f"#{tab}-table", SyncTable).selected()
        lines = row_text(tab, row) if isinstance(row, TableRow) else [f"no {tab} in this proxy's configuration"]
        detail.update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table_id = event.data_table.id or ""
        if table_id.endswith("-table"):
            self._detail(table_id.removesuffix("-table"))
