"""The graph phase's answers as who calls whom, for a scoped question (``diagnose SERVICE``).

A question about one service reads the mesh-wide graph only to look its name up and to draw the
service's neighbourhood (:mod:`meshobs.graph_phase`). Normalising every answer into Edges and
assembling them (4,000 edges at 1,000 services) took longer than the engine took to answer
(benchmarks/results/prometheus-scoped-idle-s23.md). :class:`CallGraph` reads the edge queries'
series once, as the keys :class:`~.reading.Reading` makes its edges of (label values, no
objects), and :meth:`CallGraph.part` normalises only the series of the edges asked for, through
the very same :class:`~.reading.Reading` and :func:`~.normalize._part`: an edge read from part of
the answers is the edge read from all of them, since every series of an edge carries its key.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from meshobs.model import ServiceRef, SnapshotPart, WorkloadRef
from meshobs.node_edges import addressed_to_node, addresses_nodes, deciding, dropped
from meshobs.raw import RawSource

from ..base import NormalizeContext
from ..promql import GRAPH_EDGE_QUERIES
from .labels import UNKNOWN
from .normalize import _graph_names, _names, _part, _samples
from .reading import MESH, Reading, _raw_key

# An edge as its label values (reading._raw_key): source workload namespace and name, destination
# service namespace and name, destination workload namespace and name, protocol.
RawKey = tuple[str, str, str, str, str, str, str]
_Name = tuple[str, str]  # (namespace, name)


def _to_node(k: RawKey) -> bool:
    """Whether the key's edge is addressed to a virtual node (:mod:`meshobs.node_edges`): never,
    Prometheus's edges being Istio's (:data:`.reading.MESH`), but said by the one rule."""
    return k[5] != UNKNOWN and addressed_to_node(MESH, k[2], k[3], k[4], k[5])


def _pair(k: RawKey) -> tuple[str, str, str, str]:
    """The key's (caller workload, destination workload), as :mod:`meshobs.node_edges` pairs them."""
    return k[0], k[1], k[4], k[5]


class CallGraph:
    """The graph phase's edges of one Prometheus source, as keys, and their series."""

    def __init__(self, raw: RawSource) -> None:
        self.raw = raw
        self.names = _names(raw)  # what normalize reads, in its order (the graph's first)
        # Every edge, with the source service its first series names (None: none).
        self.keys: dict[RawKey, str | None] = {}
        # Per query read, its series with their edge's key.
        self._series: dict[str, list[tuple[RawKey, tuple[dict[str, str], float]]]] = {}
        self._index: tuple[dict[_Name, list[RawKey]], dict[_Name, list[RawKey]], dict[_Name, set[_Name]]] | None = None
        keys = self.keys
        for name in _graph_names(raw):
            payload = raw.get(f"query:{name}")
            if payload is None or payload.failure() is not None:
                continue
            found = _samples(payload)  # checked as normalize checks them: a ValueError alike
            tcp = name in ("tcp_edges", "tcp_failing")
            edges = name in GRAPH_EDGE_QUERIES
            keyed = self._series[name] = []
            for sample in found:
                m, value = sample
                raw_key = _raw_key(m, "tcp" if tcp else m.get("request_protocol") or "http")
                keyed.append((raw_key, sample))
                # A series of an edge query with a number makes the edge (Reading.read); the
                # first one names its source service.
                if edges and raw_key not in keys and not math.isnan(value):
                    source = m.get("source_canonical_service") or UNKNOWN
                    keys[raw_key] = None if source == UNKNOWN else source

    # -- the walk ------------------------------------------------------------------------
    def _indexed(self) -> tuple[dict[_Name, list[RawKey]], dict[_Name, list[RawKey]], dict[_Name, set[_Name]]]:
        if self._index is None:
            into: dict[_Name, list[RawKey]] = defaultdict(list)
            out_of: dict[_Name, list[RawKey]] = defaultdict(list)
            callees: dict[_Name, set[_Name]] = defaultdict(set)
            for k, source in self.keys.items():
                dst = (k[2], k[3])
                into[dst].append(k)
                if source is not None:
                    caller = (k[0], source)
                    out_of[caller].append(k)
                    if k[3] != UNKNOWN and dst != caller:
                        callees[caller].add(dst)
            self._index = into, out_of, callees
        return self._index

    def callees(self, service: ServiceRef) -> list[ServiceRef]:
        """The services the edges naming ``service`` as their source call (itself and unknown
        destinations left out, as :func:`meshobs.callgraph.callees_of` does)."""
        return sorted(ServiceRef(*c) for c in self._indexed()[2].get((service.namespace, service.name), ()))

    def touching(self, services: Iterable[ServiceRef]) -> set[RawKey]:
        """The edges into or out of ``services``, and the edges that decide whether assembly
        keeps those of them addressed to a virtual node (:func:`meshobs.node_edges.deciding`)."""
        into, out_of, _callees = self._indexed()
        wanted: set[RawKey] = set()
        for s in services:
            name = (s.namespace, s.name)
            wanted.update(into.get(name, ()))
            wanted.update(out_of.get(name, ()))
        if addresses_nodes(MESH):  # Prometheus's keys are all Istio's: asked once, not per key
            wanted.update(deciding(self.keys, wanted, _to_node, _pair))
        return wanted

    # -- what the whole snapshot would hold ------------------------------------------------
    def services(self) -> list[ServiceRef]:
        """Every service the edges put in an assembled snapshot: their destinations (the nodes
        normalize makes), and the source services of the edges assembly keeps."""
        gone = self._dropped()
        out: dict[_Name, None] = {}
        for k, source in self.keys.items():
            if k[3] != UNKNOWN:
                out[(k[2], k[3])] = None
            if source is not None and k not in gone:
                out[(k[0], source)] = None
        return [ServiceRef(*n) for n in out]

    def _dropped(self) -> set[RawKey]:
        """The keys whose edges :func:`meshobs.assemble.dedupe_node_edges` drops."""
        if not addresses_nodes(MESH):  # Prometheus's keys, all of one mesh: asked once
            return set()
        keys = list(self.keys)
        return {keys[i] for i in dropped(keys, _to_node, _pair)}

    def unnamed_callers(self) -> set[WorkloadRef]:
        """The source workloads of edges that name no source service (their caller is then
        the workload's first service, which only the whole snapshot knows)."""
        return {WorkloadRef(k[0], k[1]) for k, source in self.keys.items() if source is None}

    # -- normalising ---------------------------------------------------------------------
    def part(self, keys: set[RawKey], ctx: NormalizeContext) -> SnapshotPart:
        """What :func:`~.normalize.normalize` makes of the graph phase's answers, for the edges
        of ``keys`` only (their edges and the nodes they imply) and the source's status (which
        counts those edges)."""
        reading = Reading()
        for name in self.names:
            if name in self._series:
                reading.read(name, [s for k, s in self._series[name] if k in keys])
        return _part(self.raw, ctx, reading, self.names)


def call_graph(raw: RawSource) -> CallGraph | None:
    """The graph phase's answers of ``raw`` as a :class:`CallGraph`; None when ``raw`` holds
    more than the graph phase's queries (then it is normalised as a whole). Raises ValueError
    for a malformed answer, as normalize does."""
    if raw.error or not _graph_names(raw):
        return None
    return CallGraph(raw)
