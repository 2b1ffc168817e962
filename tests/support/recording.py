"""A snapshot that records what a check reads (Istio's CheckMetadataInputs, for meshobs).

``RecordingSnapshot(snapshot)`` answers like the snapshot it wraps and notes, per attribute or
lookup, the input it belongs to ("edges", "proxies", ...), the configuration kind it asked
``config_of`` for ("config:VirtualService"; "config:*" for every kind), or the topology kind
("Service", "Workload", "Pod"). Indexes a check builds with ``memo`` are rebuilt on every call,
so what they read is recorded too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from meshobs.model import Layer, MeshSnapshot

T = TypeVar("T")

READS = {
    **dict.fromkeys(("edges", "edges_into", "edges_from", "edges_from_workload", "callers", "callees"), "edges"),
    **dict.fromkeys(("proxies", "proxies_of"), "proxies"),
    **dict.fromkeys(("pods", "pods_of"), "Pod"),
    **dict.fromkeys(("certs", "certs_of"), "certs"),
    **dict.fromkeys(("traces", "traces_through"), "traces"),
    **dict.fromkeys(("series", "series_of"), "series"),
    **dict.fromkeys(("services", "service", "find_services", "meshes"), "Service"),
    **dict.fromkeys(("workloads", "workload", "workloads_of", "services_of"), "Workload"),
    "config": "config:*",
}
# What every check may read: the evaluation time, the window, and which sources answered.
META = {"time", "window_s", "origin", "sources", "source", "sources_of_kind"}


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
        return getattr(self._snapshot, name)
