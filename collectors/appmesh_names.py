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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from meshobs.model import ConfigResource, Mesh, Pod, Service, ServiceRef, SnapshotPart, Workload, WorkloadRef

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


# -- App Mesh names -> Kubernetes names ------------------------------------------------------
#
# CloudWatch, X-Ray and App Mesh's Envoy name a workload ``WorkloadRef(<mesh>, <virtual node>)``
# and a service ``ServiceRef(<mesh>, <virtual service>)``, in App Mesh's own names. The App Mesh
# controller for Kubernetes names them after the Kubernetes objects, but not with their names:
# a virtual node is ``<name>_<namespace>`` (the VirtualNode resource's ``awsName`` default), a
# virtual service is often the Service's FQDN ``<svc>.<ns>.svc.cluster.local`` (or
# ``<svc>.<ns>``, the controller's default), and a mesh spans namespaces under its own name. So
# that ``diagnose <Kubernetes service>`` finds what those sources say, every App Mesh name is
# mapped once, here, onto the Kubernetes workload or Service it is, and the snapshot speaks
# Kubernetes names throughout. A team that named its mesh after its namespace and its virtual
# nodes after its Deployments (as the shipped demos do) sees no change.

K8S_SUFFIX = ".svc.cluster.local"


@dataclass(frozen=True)
class AppMeshNames:
    """App Mesh identities -> Kubernetes identities (only the ones that differ)."""

    workloads: dict[WorkloadRef, WorkloadRef]
    services: dict[ServiceRef, ServiceRef]

    def workload(self, ref: WorkloadRef) -> WorkloadRef:
        return self.workloads.get(ref, ref)

    def service(self, ref: ServiceRef) -> ServiceRef:
        """A virtual service's Service; a virtual node addressed as a service (X-Ray's graph,
        raw Envoy cluster stats) becomes its workload's name, as the workload does."""
        if ref in self.services:
            return self.services[ref]
        node = self.workloads.get(WorkloadRef(ref.namespace, ref.name))
        return ServiceRef(node.namespace, node.name) if node is not None else ref

    def __bool__(self) -> bool:
        return bool(self.workloads or self.services)


def controller_node_name(name: str) -> tuple[str, str] | None:
    """``catalog-v2_books`` -> (``books``, ``catalog-v2``): the controller's ``<name>_<namespace>``."""
    base, sep, namespace = name.rpartition("_")
    return (namespace, base) if sep and base and namespace else None


def service_host_name(name: str) -> tuple[str, str] | None:
    """``catalog.books.svc.cluster.local`` or ``catalog.books`` -> (``books``, ``catalog``)."""
    host = name[: -len(K8S_SUFFIX)] if name.endswith(K8S_SUFFIX) else name
    parts = host.split(".")
    return (parts[1], parts[0]) if len(parts) == 2 and all(parts) else None


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(str(labels.get(k)) == str(v) for k, v in selector.items())


def names_from(config: Iterable[ConfigResource], workloads: Iterable[Workload], pods: Iterable[Pod],
               services: Iterable[Service], observed: Iterable[WorkloadRef | ServiceRef] = ()) -> AppMeshNames:
    """The mapping for one snapshot's parts.

    A VirtualNode (or VirtualGateway) resource maps to the one Kubernetes workload whose pods
    (else pod templates) its ``podSelector`` selects in its namespace (else the workload of its
    own name there); a VirtualService to the
    Service of its name in its namespace, else to the Service its ``awsName`` spells. App Mesh
    names seen in telemetry without a resource (``observed``) are read by the controller's
    conventions, when the Kubernetes object they spell exists.
    """
    known_workloads = {w.ref for w in workloads if w.mesh is not Mesh.APPMESH or w.labels} | {
        p.workload for p in pods if p.workload is not None}
    known_services = {s.ref for s in services}
    labelled = [w for w in workloads if w.labels]
    pods_by_ns: dict[str, list[Pod]] = {}
    for p in pods:
        pods_by_ns.setdefault(p.namespace, []).append(p)
    out_w: dict[WorkloadRef, WorkloadRef] = {}
    out_s: dict[ServiceRef, ServiceRef] = {}
    for r in config:
        if r.mesh is not Mesh.APPMESH or r.kind not in ("VirtualNode", "VirtualService", "VirtualGateway"):
            continue
        spec = r.spec
        layout = spec.get("meshobs") or {}
        mesh, aws_name = str(layout.get("mesh") or ""), str(layout.get("aws_name") or "")
        if not mesh or not aws_name:
            continue
        if r.kind == "VirtualService":
            target = ServiceRef(r.namespace, r.name)
            if target not in known_services:
                spelled = service_host_name(aws_name)
                target = ServiceRef(*spelled) if spelled else target
            if target in known_services and target != ServiceRef(mesh, aws_name):
                out_s[ServiceRef(mesh, aws_name)] = target
            continue
        selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
        chosen = {p.workload for p in pods_by_ns.get(r.namespace, ())
                  if p.workload is not None and _selects(selector, p.labels)}
        if not chosen:  # manifests: Deployments (their pod templates' labels), no pods
            chosen = {w.ref for w in labelled if w.ref.namespace == r.namespace and _selects(selector, w.labels)}
        own = WorkloadRef(r.namespace, r.name)
        node = next(iter(chosen)) if len(chosen) == 1 else (own if own in known_workloads else None)
        if node is not None and node != WorkloadRef(mesh, aws_name):
            out_w[WorkloadRef(mesh, aws_name)] = node
    for ref in observed:
        if isinstance(ref, WorkloadRef):
            spelled_node = controller_node_name(ref.name)
            if ref not in out_w and spelled_node and WorkloadRef(*spelled_node) in known_workloads \
                    and ref not in known_workloads:
                out_w[ref] = WorkloadRef(*spelled_node)
        else:
            spelled = service_host_name(ref.name)
            if ref not in out_s and spelled and ServiceRef(*spelled) in known_services and ref not in known_services:
                out_s[ref] = ServiceRef(*spelled)
    return AppMeshNames(out_w, out_s)


def kubernetes_names(part: SnapshotPart) -> tuple[SnapshotPart, AppMeshNames]:
    """``part`` with every App Mesh name its sources used (edges, workloads, services, proxies,
    certificates, history) replaced by the Kubernetes name it maps to, and the mapping (the
    spans of traces are renamed at assembly, with the workloads they belong to)."""
    observed: list[WorkloadRef | ServiceRef] = []
    for e in part.edges:
        if e.mesh is Mesh.APPMESH:
            observed += [e.source, e.destination, *([e.destination_workload] if e.destination_workload else [])]
    observed += [w.ref for w in part.workloads if w.mesh is Mesh.APPMESH]
    observed += [p.workload for p in part.proxies if p.workload is not None]
    names = names_from(part.config, part.workloads, part.pods, part.services, observed)
    if not names:
        return part, names
    wl, svc = names.workload, names.service
    renamed = replace(
        part,
        services=[replace(s, ref=svc(s.ref), workloads=tuple(wl(w) for w in s.workloads)) for s in part.services],
        workloads=[replace(w, ref=wl(w.ref), services=tuple(svc(s) for s in w.services)) for w in part.workloads],
        edges=[replace(e, source=wl(e.source), destination=svc(e.destination),
                       source_service=svc(e.source_service) if e.source_service else None,
                       destination_workload=wl(e.destination_workload) if e.destination_workload else None)
               for e in part.edges],
        proxies=[replace(p, workload=wl(p.workload)) if p.workload else p for p in part.proxies],
        certs=[replace(c, workload=wl(c.workload)) if c.workload else c for c in part.certs],
        series=[replace(s, service=svc(s.service)) for s in part.series])
    return renamed, names
