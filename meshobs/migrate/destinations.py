"""Where a route target (a virtual node) lands in Istio: a host, and a subset when needed.

App Mesh sends a target's traffic to the endpoints its service discovery resolves (a DNS
hostname or a Cloud Map service); Istio sends it to a host, narrowed to pods by a
DestinationRule subset. So a node's Istio destination is its discovery host; a subset (the
node's ``podSelector`` labels, named after its ``version`` label when every node of the host
has a distinct one, else after the node) is added only when several nodes share that host,
as in a canary where v1 and v2 sit behind one Kubernetes Service.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .inventory import Inventory, Node, dns_label


@dataclass(frozen=True)
class Destination:
    host: str
    subset: str | None = None


def node_key(node: Node) -> tuple[str, str]:
    return (node.resource.namespace, node.resource.name)


def plan(inventory: Inventory) -> dict[tuple[str, str], Destination]:
    """Every addressable virtual node's destination (nodes without service discovery have none)."""
    by_host: dict[str, list[Node]] = defaultdict(list)
    for n in inventory.nodes:
        if n.host:
            by_host[n.host].append(n)
    out: dict[tuple[str, str], Destination] = {}
    for host, nodes in by_host.items():
        if len(nodes) == 1:
            out[node_key(nodes[0])] = Destination(host)
            continue
        versions = [(n.labels or {}).get("version") for n in nodes]
        by_version = all(versions) and len(set(versions)) == len(versions)
        for n, version in zip(nodes, versions):
            name = str(version) if by_version else dns_label(n.name)
            out[node_key(n)] = Destination(host, dns_label(name) if n.labels else None)
    return out


def shared_hosts(inventory: Inventory) -> dict[str, list[Node]]:
    """Hosts with the nodes behind them (subsets are per node when there are several)."""
    by_host: dict[str, list[Node]] = defaultdict(list)
    for n in inventory.nodes:
        if n.host:
            by_host[n.host].append(n)
    return dict(by_host)
