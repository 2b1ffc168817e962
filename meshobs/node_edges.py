"""Edges addressed to an App Mesh virtual node, and which of them assembly drops.

X-Ray knows only virtual nodes, and raw Envoy cluster stats (CloudWatch without a
``TargetVirtualService``) address an edge to the node too. When CloudWatch has the same
caller -> node traffic addressed to the virtual service, the node edge would count the same
requests twice and invent a service named after the node: assembly drops it.

Only an App Mesh edge can be addressed to a virtual node. An Istio edge whose Service is named
like its workload (a Deployment ``ledger`` behind the Services ``ledger`` and ``ledger-admin``)
is a real edge to a real Service: its rate, errors and latency are kept whatever else the
caller calls.

One rule for every shape of edge: :func:`meshobs.assemble.dedupe_node_edges` applies it to
Edges, :class:`meshobs.collectors.prometheus.graph.CallGraph` to Prometheus's edge keys (the
graph phase of ``diagnose SERVICE``), each telling the functions here how to read its edges.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from .model import Mesh

E = TypeVar("E")
# Whether an edge is addressed to a virtual node itself.
ToNode = Callable[[E], bool]
# (caller, destination workload) of an edge: its caller's node edge and richer edges share it.
Pair = Callable[[E], Hashable]


def addresses_nodes(mesh: Mesh) -> bool:
    """Whether an edge of ``mesh`` can be addressed to a virtual node: App Mesh's only. (A
    source whose edges are all of one mesh asks once, not per edge.)"""
    return mesh is Mesh.APPMESH


def addressed_to_node(mesh: Mesh, service_namespace: str, service_name: str,
                      workload_namespace: str, workload_name: str) -> bool:
    """An edge of ``mesh`` to the service ``service_namespace/service_name`` reached at the
    workload ``workload_namespace/workload_name`` is addressed to that virtual node itself:
    App Mesh names the node as the destination."""
    return addresses_nodes(mesh) and service_name == workload_name and service_namespace == workload_namespace


def dropped(edges: Sequence[E], to_node: ToNode[E], pair: Pair[E]) -> set[int]:
    """The positions of the edges assembly drops: those addressed to a virtual node whose
    caller has another edge to the node's workload (addressed to its virtual service)."""
    nodes = [i for i, e in enumerate(edges) if to_node(e)]
    if not nodes:  # an Istio mesh's edges: nothing to drop, no pairs to build
        return set()
    node_pairs = {pair(edges[i]) for i in nodes}
    richer = {p for e in edges if (p := pair(e)) in node_pairs and not to_node(e)}
    return {i for i in nodes if pair(edges[i]) in richer}


def deciding(edges: Iterable[E], among: Iterable[E], to_node: ToNode[E], pair: Pair[E]) -> list[E]:
    """The edges of ``edges`` that decide whether assembly keeps the node edges of ``among``
    (the same caller's edges to the same workload): a part holding ``among`` and these decides
    as the whole would."""
    pairs = {pair(e) for e in among if to_node(e)}
    return [e for e in edges if pair(e) in pairs] if pairs else []
