"""App Mesh's Envoy names -> virtual nodes (pure; shared by the Envoy and CloudWatch collectors).

The App Mesh control plane names what it sends to a sidecar:

* clusters ``cds_<ingress|egress>_<mesh>_<virtualNode>_<protocol>_<port>``: an ``egress``
  cluster leads to the *target* virtual node, the ``ingress`` one to the local application;
* listeners ``lds_<ingress|egress>_<ip>_<port>``: they carry no node name, the node comes from
  the proxy's identity;
* the Envoy node id / ``APPMESH_RESOURCE_ARN``: ``mesh/<mesh>/virtualNode/<node>`` (or
  ``virtualGateway/<gateway>``), possibly as a full ARN
  ``arn:aws:appmesh:<region>:<account>:mesh/<mesh>/virtualNode/<node>``.

Mesh and node names may both contain underscores (the Kubernetes controller names a node
``<name>_<namespace>``), so a cluster name is split from the right (port, protocol) and the
remaining ``<mesh>_<node>`` is split after the mesh name when it is known, else at the first
underscore. WorkloadRef mapping: ``WorkloadRef(namespace=<mesh>, name=<virtualNode>)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from meshobs.model import WorkloadRef

PROTOCOLS = ("http", "http2", "grpc", "tcp")


@dataclass(frozen=True)
class AppMeshCluster:
    """A parsed ``cds_...`` cluster name."""

    direction: str  # ingress | egress
    mesh: str
    virtual_node: str
    protocol: str
    port: int

    @property
    def workload(self) -> WorkloadRef:
        """The virtual node this cluster leads to, as a workload."""
        return WorkloadRef(self.mesh, self.virtual_node)


@dataclass(frozen=True)
class AppMeshListener:
    """A parsed ``lds_...`` listener name."""

    direction: str  # ingress | egress
    address: str
    port: int


@dataclass(frozen=True)
class AppMeshNode:
    """The identity of an App Mesh sidecar: a virtual node or a virtual gateway."""

    mesh: str
    kind: str  # virtualNode | virtualGateway
    name: str

    @property
    def workload(self) -> WorkloadRef:
        return WorkloadRef(self.mesh, self.name)


def _split_mesh_node(rest: str, meshes: Iterable[str]) -> tuple[str, str] | None:
    for mesh in sorted(meshes, key=len, reverse=True):  # longest known mesh name first
        if mesh and rest.startswith(mesh + "_") and len(rest) > len(mesh) + 1:
            return mesh, rest[len(mesh) + 1:]
    mesh, sep, node = rest.partition("_")
    return (mesh, node) if sep and mesh and node else None


def parse_cluster_name(name: str, meshes: Iterable[str] = ()) -> AppMeshCluster | None:
    """``cds_egress_shop_cart-v1_http_8080`` -> AppMeshCluster; None for any other name.

    ``meshes``: mesh names known to the caller (from config or the node id); they settle
    where the mesh name ends when it contains an underscore.
    """
    if not name.startswith("cds_"):
        return None
    direction, sep, rest = name[4:].partition("_")
    if not sep or direction not in ("ingress", "egress"):
        return None
    head, _, port = rest.rpartition("_")
    head, _, protocol = head.rpartition("_")
    if not port.isdigit() or protocol not in PROTOCOLS or not head:
        return None
    split = _split_mesh_node(head, meshes)
    if split is None:
        return None
    return AppMeshCluster(direction, split[0], split[1], protocol, int(port))


def parse_listener_name(name: str) -> AppMeshListener | None:
    """``lds_ingress_0.0.0.0_15000`` -> AppMeshListener; None for any other name."""
    if not name.startswith("lds_"):
        return None
    direction, sep, rest = name[4:].partition("_")
    address, _, port = rest.rpartition("_")
    if not sep or direction not in ("ingress", "egress") or not port.isdigit() or not address:
        return None
    return AppMeshListener(direction, address, int(port))


def parse_node_id(node_id: str) -> AppMeshNode | None:
    """The virtual node / gateway of an Envoy node id or an App Mesh resource ARN.

    Accepts ``mesh/<mesh>/virtualNode/<node>``, the same after ``arn:aws:appmesh:...:`` and the
    ``<mesh>/<node>`` X-Ray segment form is NOT accepted here (it is ambiguous with other ids).
    """
    text = node_id.strip()
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) < 6 or parts[2] != "appmesh":
            return None
        text = parts[5]
    segs = text.split("/")
    if len(segs) == 4 and segs[0] == "mesh" and segs[2] in ("virtualNode", "virtualGateway") \
            and segs[1] and segs[3]:
        return AppMeshNode(segs[1], segs[2], segs[3])
    return None


def is_appmesh_cluster(name: str) -> bool:
    return parse_cluster_name(name) is not None


def is_appmesh_listener(name: str) -> bool:
    return parse_listener_name(name) is not None


def target_of_cluster(name: str, meshes: Iterable[str] = ()) -> WorkloadRef | None:
    """The virtual node an egress cluster leads to (None for ingress and non-App Mesh names)."""
    parsed = parse_cluster_name(name, meshes)
    return parsed.workload if parsed is not None and parsed.direction == "egress" else None


def listener_workload(listener_name: str, node_id: str) -> WorkloadRef | None:
    """The virtual node an ``lds_...`` listener belongs to: the node of the proxy that holds it."""
    if parse_listener_name(listener_name) is None:
        return None
    node = parse_node_id(node_id)
    return node.workload if node is not None else None
