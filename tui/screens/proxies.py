"""``:proxies``: every pod's Envoy in the mesh, xDS problems first; enter opens its proxy-config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Input

from ..keys import PROXIES, bindings
from ..proxy_model import PROXY_LIST_COLUMNS, PodRef
from ..rows import TableRow
from ..widgets.prompt import Prompt
from ..widgets.tables import SyncTable
from .base import MeshScreen

if TYPE_CHECKING:
    from ..data import Analysis


def open_pod(screen: MeshScreen, row: object) -> None:
    """enter on a proxies row: the pod's Envoy (fetched on demand when not in the snapshot)."""
    from .proxy import ProxyScreen

    item = row.item if isinstance(row, TableRow) else None
    if not isinstance(item, PodRef):
        screen.notify("this workload has no pod with a sidecar", severity="warning")
        return
    screen.app.push_screen(ProxyScreen(item.namespace, item.pod))


class ProxiesScreen(MeshScreen):
    BINDINGS = bindings(PROXIES)
    AUTO_FOCUS = "#proxy-list"
    DEFAULT_CSS = """
    ProxiesScreen #proxy-search { display: none; height: 3; }
    ProxiesScreen #proxy-search.visible { display: block; }
    ProxiesScreen #proxy-list { height: 1fr; }
    """

    class RowsReady(Message):
        def __init__(self, rows: list[TableRow]) -> None:
            super().__init__()
            self.rows = rows

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[TableRow] = []
        self.text = ""

    def body(self) -> ComposeResult:
        yield Prompt(placeholder="pod or workload (enter applies, esc clears)", id="proxy-search")
        table = SyncTable(PROXY_LIST_COLUMNS, id="proxy-list", classes="data")
        table.border_title = "proxies"
        yield table

    def show_analysis(self, analysis: Analysis) -> None:
        self.build(analysis)

    @work(thread=True, exclusive=True, exit_on_error=False, group="proxies", description="proxies")
    def build(self, analysis: Analysis) -> None:
        self.post_message(self.RowsReady(analysis.views(self.app.loader).proxy_rows()))  # type: ignore[attr-defined]

    def on_proxies_screen_rows_ready(self, message: RowsReady) -> None:
        if not self.is_attached:  # closed while its worker ran
            return
        self.rows = message.rows
        self.apply()

    def apply(self) -> None:
        shown = [r for r in self.rows if self.text in f"{r.values[0]} {getattr(r.item, 'workload', '')}".lower()]
        table = self.query_one("#proxy-list", SyncTable)
        table.sync(shown)
        problems = sum(1 for r in self.rows if r.values[2] != "-" and not r.values[2].startswith("latest"))
        table.border_title = (f"proxies {len(shown)}/{len(self.rows)}" + (f"  filter: {self.text}" if self.text else "")
                              + (f"  {problems} with xDS problems or not collected" if problems else ""))

    def action_search(self) -> None:
        if isinstance(self.focused, Input):
            raise SkipAction()
        box = self.query_one("#proxy-search", Input)
        box.add_class("visible")
        self.set_focus(box)

    def prompt_done(self, prompt: Input, key: str) -> None:
        if prompt.id != "proxy-search":
            return
        if key == "escape":
            prompt.value = ""
        self.text = prompt.value.strip().lower()
        prompt.remove_class("visible")
        self.apply()
        self.set_focus(self.query_one("#proxy-list", SyncTable))

    def action_back(self) -> None:
        box = self.query_one("#proxy-search", Input)
        if box.has_class("visible") or self.text:
            box.value, self.text = "", ""
            box.remove_class("visible")
            self.apply()
            self.set_focus(self.query_one("#proxy-list", SyncTable))
            return
        super().action_back()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        open_pod(self, self.query_one("#proxy-list", SyncTable).selected())
