"""The graph view's model (pure): callers -> service -> callees, each edge with its numbers,
its colour (meshobs.render.graph.edge_severity, as in DOT and Mermaid) and mTLS state."""

from __future__ import annotations

from dataclasses import dataclass

from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.render.graph import edge_severity

from .viewmodel import HEALTH_MARK, PREVIOUS, NeighbourRow, Red, fmt_ms, fmt_pct, fmt_rate, neighbourhood, red_of

LIMIT = 40  # peers per direction; a hub's long tail is counted, not drawn


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """A caller (``in``) or callee (``out``) of the centre, aggregated per peer service."""

    direction: str
    peer: str
    ref: ServiceRef | None  # None: a workload without a known service (not navigable)
    red: Red
    mtls: str
    health: str
    previous: bool = False  # the health is the previous refresh's (this one's diagnosis runs)

    @property
    def mark(self) -> str:
        """:data:`~.viewmodel.PREVIOUS` after a health from the previous refresh, as in the overview."""
        return PREVIOUS if self.previous else ""

    @property
    def severity(self) -> str:
        return edge_severity(self.red.error_ratio)

    def numbers(self) -> str:
        """``12.0/s  45.0%  p99 92ms  mTLS yes``."""
        return (f"{fmt_rate(self.red.rate):>6}/s {fmt_pct(self.red.error_ratio):>6}  p99 {fmt_ms(self.red.p99_ms):>6}"
                f"  mTLS {self.mtls:<3}")

    def line(self, width: int) -> str:
        """One line of the graph at ``width`` columns: arrow, peer, numbers, peer health."""
        numbers = self.numbers()
        health = HEALTH_MARK.get(self.health, self.health) + self.mark
        room = max(12, width - len(numbers) - len(health) - 9)
        peer = self.peer if len(self.peer) <= room else self.peer[: room - 1] + "…"
        arrow = "──▶ ●" if self.direction == "in" else "● ──▶"
        return f" {arrow} {peer:<{room}} {numbers} {health}" if self.direction == "out" else \
               f" {peer:<{room}} {arrow} {numbers} {health}"


@dataclass(frozen=True)
class GraphView:
    centre: ServiceRef
    health: str
    red: Red
    callers: list[GraphEdge]
    callees: list[GraphEdge]
    hidden: int
    previous: bool = False  # the centre's health is the previous refresh's


def _ref(peer: str) -> ServiceRef | None:
    if "(workload)" in peer or "/" not in peer:
        return None
    try:
        return ServiceRef.parse(peer)
    except ValueError:
        return None


def graph_view(snapshot: MeshSnapshot, ref: ServiceRef, health: dict[ServiceRef, str],
               previous: frozenset[ServiceRef] = frozenset()) -> GraphView:
    """The neighbourhood of ``ref``: erroring and busiest peers first (as the overview panel).
    ``previous``: the services whose health is the previous refresh's (marked, as in the overview)."""
    rows, hidden = neighbourhood(snapshot, ref, limit=LIMIT)

    def edge(n: NeighbourRow) -> GraphEdge:
        peer_ref = _ref(n.peer)
        return GraphEdge(n.direction, n.peer, peer_ref, n.red, n.mtls,
                         health.get(peer_ref, "unknown") if peer_ref else "unknown", peer_ref in previous)

    return GraphView(ref, health.get(ref, "unknown"), red_of(snapshot.edges_into(ref)),
                     [edge(n) for n in rows if n.direction == "in"],
                     [edge(n) for n in rows if n.direction == "out"], hidden, ref in previous)


def centre_line(view: GraphView) -> str:
    r = view.red
    mark = PREVIOUS if view.previous else ""
    return (f"{view.centre}  {HEALTH_MARK.get(view.health, view.health)}{mark}  in: {fmt_rate(r.rate)}/s "
            f"{fmt_pct(r.error_ratio)} err, p99 {fmt_ms(r.p99_ms)}")
