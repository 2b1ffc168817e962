"""``:graph`` / G: the neighbourhood of a service drawn in the terminal, callers above, callees
below, each edge coloured by its error rate and labelled rate / errors / p99 / mTLS.

Navigable: ↑↓ (j/k) pick a peer, enter centres the graph on it, esc goes back to the previous
centre (and out of the graph after the first), v opens the centred service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from meshobs.model import ServiceRef

from ..graph_model import GraphEdge, GraphView, centre_line
from ..keys import GRAPH, MOVE, bindings
from ..styles import adapt, is_no_color
from ..viewmodel import PREVIOUS
from .base import MeshScreen

if TYPE_CHECKING:
    from ..data import Analysis

EDGE_STYLE = {"error": "bold red", "warning": "yellow", "ok": "green"}


class GraphList(OptionList):
    BINDINGS = bindings(MOVE, back=False)


class GraphScreen(MeshScreen):
    BINDINGS = bindings(GRAPH)
    AUTO_FOCUS = "#graph"
    DEFAULT_CSS = """
    GraphScreen #graph { height: 1fr; border: none; padding: 0 1; }
    """

    def __init__(self, ref: ServiceRef) -> None:
        super().__init__()
        self.centre = ref
        self.trail: list[ServiceRef] = []  # earlier centres, for esc
        self.view: GraphView | None = None

    def body(self) -> ComposeResult:
        yield GraphList(id="graph", classes="data")

    def show_analysis(self, analysis: Analysis) -> None:
        # Cheap (one service's edges, already indexed): built here so a recentre is instant.
        health = {r.ref: r.health for r in analysis.rows}
        previous = frozenset(r.ref for r in analysis.rows if r.previous)
        if analysis.remote is not None:
            self.ask_view(analysis, self.centre, health, previous)  # the load process has the edges
            return
        self.view = analysis.views(self.app.loader).graph(self.centre, health, previous)  # type: ignore[attr-defined]
        self.draw()

    class ViewReady(Message):
        def __init__(self, view: GraphView) -> None:
            super().__init__()
            self.view = view

    @work(thread=True, exclusive=True, exit_on_error=False, group="graph", description="graph")
    def ask_view(self, analysis: Analysis, centre: ServiceRef, health: dict[ServiceRef, str],
                 previous: frozenset[ServiceRef]) -> None:
        views = analysis.views(self.app.loader)  # type: ignore[attr-defined]
        self.post_message(self.ViewReady(views.graph(centre, health, previous)))

    def on_graph_screen_view_ready(self, message: ViewReady) -> None:
        if self.is_attached and message.view.centre == self.centre:
            self.view = message.view
            self.draw()

    def on_resize(self, event: events.Resize) -> None:
        self.draw()

    def selected_service(self) -> ServiceRef | None:
        return self.centre

    def draw(self) -> None:
        view = self.view
        if view is None:
            return
        graph = self.query_one(GraphList)
        width = max(40, graph.size.width - 4 if graph.size.width else self.size.width - 4)
        mono = is_no_color(self)
        options: list[Option] = []
        previous = graph.highlighted_option.id if graph.highlighted_option is not None else None

        def edge_option(e: GraphEdge) -> Option:
            style = adapt(EDGE_STYLE[e.severity], mono)
            text = Text(e.line(width), style=style)
            if e.mtls == "NO":
                text.stylize(adapt("bold reverse", mono), len(text) - len(e.health) - len(e.mark) - 10)
            return Option(text, id=f"{e.direction}:{e.peer}", disabled=e.ref is None)

        callers = f"callers ({len(view.callers)})" + ("" if view.callers else ": none in the window")
        options.append(Option(Text(callers, style="bold"), disabled=True))
        options += [edge_option(e) for e in view.callers]
        bar = "━" * min(width, len(centre_line(view)) + 4)
        centre = Text(f"┏{bar}┓\n┃  {centre_line(view):<{len(bar) - 2}}┃\n┗{bar}┛",
                      style=adapt({"failing": "bold red", "degraded": "yellow"}.get(view.health, "bold"), mono))
        options.append(Option(centre, id="centre", disabled=True))
        callees = f"callees ({len(view.callees)})" + ("" if view.callees else ": none in the window")
        options.append(Option(Text(callees, style="bold"), disabled=True))
        options += [edge_option(e) for e in view.callees]
        if view.hidden:
            options.append(Option(Text(f"+{view.hidden} more peers (quietest)", style=adapt("dim", mono)),
                                  disabled=True))
        graph.clear_options()
        graph.add_options(options)
        graph.border_title = f"graph of {view.centre}" + (f"  (back: {self.trail[-1]})" if self.trail else "")
        marked = view.previous or any(e.previous for e in (*view.callers, *view.callees))
        graph.border_subtitle = f"diagnosing…  {PREVIOUS} health from the previous refresh" if marked else ""
        ids = [o.id for o in options if not o.disabled]
        if previous in ids:
            graph.highlighted = next(i for i, o in enumerate(options) if o.id == previous)
        elif ids:
            graph.highlighted = next(i for i, o in enumerate(options) if not o.disabled)

    def _edge(self, option_id: str | None) -> GraphEdge | None:
        if self.view is None or option_id is None:
            return None
        for e in (*self.view.callers, *self.view.callees):
            if f"{e.direction}:{e.peer}" == option_id:
                return e
        return None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_recentre()

    def action_recentre(self) -> None:
        graph = self.query_one(GraphList)
        edge = self._edge(graph.highlighted_option.id if graph.highlighted_option is not None else None)
        if edge is None or edge.ref is None:
            return
        self.trail.append(self.centre)
        self.centre = edge.ref
        graph.highlighted = None
        analysis = self.analysis_now()
        if analysis is not None:
            self.show_analysis(analysis)

    def action_back(self) -> None:
        if not self.trail:
            super().action_back()
            return
        self.centre = self.trail.pop()
        analysis = self.analysis_now()
        if analysis is not None:
            self.show_analysis(analysis)

    def action_open_service(self) -> None:
        self.app.open_service(self.centre)  # type: ignore[attr-defined]
