"""A snapshot that records what a check reads (Istio's CheckMetadataInputs, for meshobs).

``RecordingSnapshot(snapshot)`` answers like the snapshot it wraps and notes, per attribute or
lookup, the input it belongs to ("graph", "proxies", ...; for an edge, per field: "requests",
"latency", "security"), the configuration kind it asked
``config_of`` for ("config:VirtualService"; "config:*" for every kind), or the topology kind
("Service", "Workload", "Pod"). Indexes a check builds with ``memo`` are rebuilt on every call,
so what they read is recorded too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from meshobs.model import Layer, MeshSnapshot

T = TypeVar("T")

EDGE_LOOKUPS = ("edges", "edges_into", "served_edges", "edges_from", "edges_from_workload")
READS = {
    **dict.fromkeys((*EDGE_LOOKUPS, "callers", "callees"), "graph"),
    **dict.fromkeys(("proxies", "proxies_of"), "proxies"),
    **dict.fromkeys(("pods", "pods_of"), "Pod"),
    **dict.fromkeys(("certs", "certs_of"), "certs"),
    **dict.fromkeys(("traces", "traces_through"), "traces"),
    **dict.fromkeys(("series", "series_of"), "series"),
    "history": "history",
    **dict.fromkeys(("services", "service", "find_services", "meshes"), "Service"),
    **dict.fromkeys(("workloads", "workload", "workloads_of", "services_of", "caller_of"), "Workload"),
    "config": "config:*",
    "control_plane": "ControlPlane",
}
# What every check may read: the evaluation time, the window, and which sources answered.
META = {"time", "window_s", "origin", "sources", "source", "sources_of_kind"}
# An edge's fields by the input that carries them: who calls whom is the graph (Jaeger's
# dependency links give that much); request rates and response codes, latency and mTLS come
# from metrics sources only (Jaeger's call counts are of sampled traces, not request rates).
EDGE_FIELDS = {
    **dict.fromkeys(("request_rate", "responses", "error_rate", "error_ratio", "rate_by_code_class",
                     "rate_by_code", "rate_by_flag", "with_responses", "destination_responses",
                     "destination_request_rate", "destination_error_rate"), "requests"),
    **dict.fromkeys(("latency", "destination_latency"), "latency"),
    **dict.fromkeys(("security", "source_principal", "destination_principal"), "security"),
}


class RecordingEdge:
    """An Edge that notes which kind of data a check read from it (everything not listed in
    EDGE_FIELDS -- the endpoints, protocol, reporter -- is the graph)."""

    def __init__(self, edge: Any, reads: set[str]) -> None:
        self._edge, self._reads = edge, reads

    def __getattr__(self, name: str) -> Any:
        self._reads.add(EDGE_FIELDS.get(name, "graph"))
        return getattr(self._edge, name)

    def __eq__(self, other: object) -> bool:
        return bool(self._edge == (other._edge if isinstance(other, RecordingEdge) else other))

    def __hash__(self) -> int:
        return hash(self._edge)


class RecordingSnapshot:
    def __init__(self, snapshot: MeshSnapshot) -> None:
        self._snapshot = snapshot
        self.reads: set[str] = set()

    def derived(self, key: str, build: Callable[[Any], T]) -> T:
        return build(self)

    def config_of(self, kind: str | None = None, layer: Layer | None = None) -> list[Any]:
        self.reads.add(f"config:{kind or '*'}")
        return self._snapshot.config_of(kind, layer)

    def __getattr__(self, name: str) -> Any:
        if name in READS:
            self.reads.add(READS[name])
        elif name not in META:
            self.reads.add(f"unknown:{name}")
        value = getattr(self._snapshot, name)
        if name == "edges":
            return tuple(RecordingEdge(e, self.reads) for e in value)
        if name in EDGE_LOOKUPS:
            return lambda *a, **kw: [RecordingEdge(e, self.reads) for e in value(*a, **kw)]
        return value
