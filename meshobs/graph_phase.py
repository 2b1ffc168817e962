"""What a scoped question (``diagnose SERVICE``) reads of the graph phase, without assembling
the mesh-wide graph.

The question looks the service's name up among every service of the mesh, then draws its
neighbourhood (:func:`meshobs.neighbourhood.neighbourhood`) from the callers and callees the
graph phase found. Both used to read one MeshSnapshot of the whole graph: every Prometheus edge
normalised and assembled (at 1,000 services more of the critical path than the engine took to
answer, benchmarks/results/prometheus-scoped-idle-s23.md), then thrown away.
:class:`GraphPhase` answers the same two things from Prometheus's edge keys
(:class:`meshobs.collectors.prometheus.graph.CallGraph`):

* :meth:`GraphPhase.names`: every service the mesh-wide snapshot would hold (the other
  sources' services, the ones the edges name, the ones the configuration routes to) and every
  source's status: what the name is looked up in, and whether anything answered;
* :meth:`GraphPhase.around`: a snapshot assembled (by :func:`meshobs.assemble.assemble`, as
  ever) from the other sources and only the edges the neighbourhood can read: those into or
  out of a service downstream of the target (walked over the keys, with the walk the
  neighbourhood itself takes), so that every lookup the neighbourhood makes (its callees, its
  callers, their workloads and those Services' selectors) answers what the whole snapshot
  answers.

Where the keys alone cannot tell what the whole snapshot would say -- another source gave
edges or proxies (their edges and Istio's are merged), App Mesh names are renamed, an edge
names no source service (its caller is then its workload's first service) -- or a payload is
malformed, :meth:`GraphPhase.whole` is the mesh-wide snapshot, built as before.
tests/test_graph_phase.py holds the neighbourhood of every service of our meshes equal both ways,
and takes every fallback on a recorded graph phase changed the way a source can change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .bundle import Bundle
from .model import Mesh, MeshSnapshot, Service, ServiceRef, SnapshotPart, WorkloadRef
from .raw import RawSource

if TYPE_CHECKING:
    from meshobs.collectors.base import NormalizeContext
    from meshobs.collectors.prometheus.graph import CallGraph


class GraphPhase:
    """The graph phase's sources, read as lazily as the question allows."""

    def __init__(self, time: datetime, window_s: float, config: dict[str, Any] | None = None,
                 sources: list[RawSource] | None = None) -> None:
        self.time = time
        self.window_s = window_s
        self.config = config or {}  # the configuration as a bundle records it (its mesh:)
        self.sources = sources or []
        self._graphs: dict[int, CallGraph | None] = {}  # id(raw) -> its CallGraph (None: cannot be read so)
        self._whole: MeshSnapshot | None = None
        self._names: MeshSnapshot | None = None
        self._graph: CallGraph | None = None
        self._read_done = False
        self._rest: list[SnapshotPart] = []

    def read(self, raw: RawSource) -> None:
        """Read one source of the phase as it arrives (on its fetch thread): Prometheus's
        answers as edge keys, any other source normalised."""
        from .collect import normalize_source

        if raw.kind != "prometheus":
            raw.part = normalize_source(raw, self.time, self.window_s)
            return
        from meshobs.collectors.prometheus.graph import call_graph

        try:
            self._graphs[id(raw)] = call_graph(raw)
        except ValueError:  # a malformed answer: normalize says so in the source's status
            self._graphs[id(raw)] = None

    def done(self, sources: list[RawSource]) -> GraphPhase:
        """The phase's sources, once fetched (one cut off by the deadline is read here)."""
        self.sources = sources
        for raw in sources:
            if raw.part is None and id(raw) not in self._graphs:
                self.read(raw)
        return self

    # -- the two questions ---------------------------------------------------------------
    def whole(self) -> MeshSnapshot:
        """The mesh-wide snapshot of the graph phase (every source normalised and assembled)."""
        if self._whole is None:
            from .collect import build_snapshot

            self._whole = build_snapshot(self._bundle(), origin="live")
        return self._whole

    def names(self) -> MeshSnapshot:
        """A snapshot holding every service the whole one holds (no edges) and every source's
        status: what a name is looked up in (:func:`meshobs.cli.diagnose.resolve`)."""
        if self._names is not None:
            return self._names
        graph = self._call_graph()
        if graph is None:
            self._names = self.whole()
            return self._names
        from .assemble import _services_named_by_config

        rest = SnapshotPart.merge(self._rest)
        known: dict[ServiceRef, Service] = {}
        for s in rest.services:
            known.setdefault(s.ref, s)
        for ref in graph.services():
            if ref not in known:
                known[ref] = Service(ref=ref, mesh=Mesh.ISTIO)
        for ref in _services_named_by_config(rest):
            if ref not in known:
                known[ref] = Service(ref=ref, mesh=Mesh.ISTIO)
        # The status said of the graph's answers: whether the source answered (an error, and
        # which inputs) is what it says of all of them; it counts no edges here.
        status = graph.part(set(), self._normalize_context()).sources
        self._names = MeshSnapshot(time=self.time, window_s=self.window_s,
                                   services=tuple(sorted(known.values(), key=lambda s: (s.ref.namespace, s.ref.name))),
                                   sources=(*rest.sources, *status), origin="live")
        return self._names

    def around(self, target: ServiceRef) -> MeshSnapshot:
        """A snapshot that answers every lookup :func:`meshobs.neighbourhood.neighbourhood`
        makes about ``target`` as the whole one does (see the module docstring)."""
        graph = self._call_graph()
        if graph is None:
            return self.whole()
        from .assemble import assemble
        from .callgraph import downstream

        # The walk the neighbourhood takes (every depth), over the keys: a superset of the
        # services it reaches over the snapshot's edges, where assembly may drop an edge.
        wanted = graph.touching(downstream(target, graph.callees, None))
        if not wanted and graph.keys:
            # The snapshot has edges even where none touches the target (then it is asked for
            # its own neighbourhood, not left mesh-wide): one edge of nobody's in it.
            wanted.add(next(iter(graph.keys)))
        part = graph.part(wanted, self._normalize_context())
        configured = str(self.config.get("mesh", "auto"))
        mesh = Mesh(configured) if configured in ("istio", "appmesh") else Mesh.UNKNOWN
        return assemble(SnapshotPart.merge([*self._rest, part]), time=self.time, window_s=self.window_s,
                        origin="live", mesh=mesh)

    # -- reading -------------------------------------------------------------------------
    def _bundle(self) -> Bundle:
        return Bundle(time=self.time, window_s=self.window_s, sources=self.sources, config=self.config)

    def _normalize_context(self) -> NormalizeContext:
        from meshobs.collectors.base import NormalizeContext

        return NormalizeContext(time=self.time, window_s=self.window_s)

    def _call_graph(self) -> CallGraph | None:
        """The Prometheus source's CallGraph, with the other sources normalised; None when
        the keys cannot stand in for the whole snapshot (then :meth:`whole` answers)."""
        if not self._read_done:
            self._graph, self._read_done = self._read(), True
        return self._graph

    def _read(self) -> CallGraph | None:
        from .collect import normalize_source

        prometheus = [r for r in self.sources if r.kind == "prometheus"]
        if len(prometheus) != 1:
            return None
        if id(prometheus[0]) not in self._graphs:
            self.read(prometheus[0])
        graph = self._graphs[id(prometheus[0])]
        if graph is None:
            return None
        rest: list[SnapshotPart] = []
        for raw in self.sources:
            if raw is prometheus[0]:
                continue
            if raw.part is None:
                raw.part = normalize_source(raw, self.time, self.window_s)
            rest.append(raw.part)
        if not _keys_stand_in(rest, graph.unnamed_callers()):
            return None
        self._rest = rest
        return graph


def _keys_stand_in(rest: list[SnapshotPart], unnamed: Iterable[WorkloadRef]) -> bool:
    """Can Prometheus's keys stand in for its edges beside these other sources' parts?"""
    workloads: set[WorkloadRef] = set()
    for part in rest:
        if part.edges or part.proxies:
            return False  # merged with Istio's edges, or renaming App Mesh nodes
        if any(c.mesh is Mesh.APPMESH for c in part.config) or any(w.mesh is Mesh.APPMESH for w in part.workloads):
            return False
        workloads.update(w.ref for w in part.workloads)
    listed = {w for part in rest for s in part.services for w in s.workloads}
    if not listed <= workloads:
        return False  # a Service's workload known from the edges only: its membership is theirs
    # An edge naming no source service is its workload's first service's call: the whole
    # snapshot's merge order decides it.
    return not any(not w.is_unknown or w in workloads for w in unnamed)
