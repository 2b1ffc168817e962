"""Merge what each collector normalised into one MeshSnapshot.

Kubernetes knows services, workloads and pods; Prometheus knows edges; Envoy knows proxies and
certificates; Jaeger knows traces. Where sources overlap, the richer fact wins: a service seen
only in metrics is still a node of the graph, and Jaeger's dependency links only add edges
Prometheus did not report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import msgspec

from .collectors.appmesh_names import AppMeshNames, kubernetes_names
from .model import (
    ControlPlane,
    Edge,
    IstiodReplica,
    Mesh,
    MeshSnapshot,
    Pod,
    Service,
    ServiceRef,
    SnapshotPart,
    Trace,
    Workload,
    WorkloadRef,
    istiod_labels,
)
from .node_edges import addressed_to_node, addresses_nodes, dropped


def _merge_service(a: Service, b: Service) -> Service:
    return replace(
        a,
        mesh=a.mesh if a.mesh is not Mesh.UNKNOWN else b.mesh,
        hosts=tuple(dict.fromkeys(a.hosts + b.hosts)),
        ports=tuple(dict.fromkeys(a.ports + b.ports)),
        selector=a.selector or b.selector,
        workloads=tuple(dict.fromkeys(a.workloads + b.workloads)),
        origin=a.origin or b.origin,
        port_specs=a.port_specs or b.port_specs,
        external_name=a.external_name or b.external_name,
        location=a.location or b.location,
    )


def _merge_workload(a: Workload, b: Workload) -> Workload:
    return replace(
        a,
        mesh=a.mesh if a.mesh is not Mesh.UNKNOWN else b.mesh,
        services=tuple(dict.fromkeys(a.services + b.services)),
        app=a.app or b.app, version=a.version or b.version,
        labels=a.labels or b.labels, service_account=a.service_account or b.service_account,
        meshed=a.meshed if a.meshed is not None else b.meshed,
        annotations=a.annotations or b.annotations,
        proxy_image=a.proxy_image or b.proxy_image,
        location=a.location or b.location,
    )


def _edge_mesh(edge: Edge, workloads: dict[WorkloadRef, Workload]) -> Mesh:
    if edge.mesh is not Mesh.UNKNOWN:
        return edge.mesh
    w = workloads.get(edge.source)
    return w.mesh if w else Mesh.UNKNOWN


def _to_node(edge: Edge) -> bool:
    """An App Mesh edge addressed to a virtual node itself (X-Ray's graph, raw Envoy cluster
    stats): :func:`meshobs.node_edges.addressed_to_node`."""
    dw = edge.destination_workload
    # The mesh first: an Istio edge (most of a big mesh's tens of thousands) is never one.
    return addresses_nodes(edge.mesh) and dw is not None and addressed_to_node(
        edge.mesh, edge.destination.namespace, edge.destination.name, dw.namespace, dw.name)


def _pair(edge: Edge) -> tuple[WorkloadRef, WorkloadRef | None]:
    return edge.source, edge.destination_workload


def dedupe_node_edges(edges: list[Edge]) -> list[Edge]:
    """Drop App Mesh edges addressed to a virtual node when another source (CloudWatch's
    TargetVirtualService) already has the same caller -> node traffic addressed to the virtual
    service (:func:`meshobs.node_edges.dropped`): X-Ray knows only nodes, so its edge would
    count the same requests twice and invent a service named after the node. An Istio edge is
    never dropped, whatever its Service is named."""
    drop = dropped(edges, _to_node, _pair)
    return [e for i, e in enumerate(edges) if i not in drop] if drop else list(edges)


def _span_services(traces: list[Trace], workloads: dict[WorkloadRef, Workload],
                   names: AppMeshNames | None = None) -> list[Trace]:
    """X-Ray names spans after the virtual node; name them after the node's one service
    (``name.namespace``, as Istio's Jaeger spans are) so trace checks find them by service,
    and the node by its Kubernetes workload (:mod:`meshobs.collectors.appmesh_names`)."""
    out: list[Trace] = []
    for t in traces:
        spans = []
        for s in t.spans:
            ref = names.workload(s.workload) if names is not None and s.workload is not None else s.workload
            w = workloads.get(ref) if ref is not None else None
            if w is not None and s.service in (w.ref.name, s.workload.name if s.workload else None) \
                    and len(w.services) == 1:
                s = msgspec.structs.replace(s, service=f"{w.services[0].name}.{w.services[0].namespace}",
                                            workload=ref)
            elif ref != s.workload:
                s = msgspec.structs.replace(s, workload=ref)
            spans.append(s)
        out.append(replace(t, spans=tuple(spans)) if spans != list(t.spans) else t)
    return out


def _services_named_by_config(part: SnapshotPart) -> list[ServiceRef]:
    """In-cluster services that Istio VirtualServices and DestinationRules name as hosts
    (``reviews``, ``reviews.bookinfo``, ``reviews.bookinfo.svc.cluster.local``); external
    hosts and wildcards are not services of the mesh."""
    from .istio_config import dr_host, vs_hosts

    out: list[ServiceRef] = []
    for c in part.config:
        if c.mesh is not Mesh.ISTIO or c.kind not in ("VirtualService", "DestinationRule"):
            continue
        hosts = vs_hosts(c) if c.kind == "VirtualService" else [dr_host(c)]
        for host in hosts:
            parts = host.split(".")
            if host.endswith(".svc.cluster.local") and len(parts) == 5 and "*" not in host:
                out.append(ServiceRef(parts[1], parts[0]))
    return out


def is_istiod_pod(pod: Pod) -> bool:
    """istiod's own pods (every revision): labelled ``app=istiod`` by Istio's charts."""
    return istiod_labels(pod.labels)


def control_plane(part: SnapshotPart) -> ControlPlane:
    """istiod's replicas as each source saw them, one per pod: its endpoints (``istiod``), its
    metrics (``prometheus``) and its pod's Ready condition (``kubernetes``)."""
    from .model.controlplane import merge_replica

    replicas: dict[tuple[str, str], IstiodReplica] = {}
    for r in part.istiod:
        replicas[r.key] = merge_replica(replicas[r.key], r) if r.key in replicas else r
    for pod in part.pods:
        if not is_istiod_pod(pod):
            continue
        seen = IstiodReplica(pod=pod.name, namespace=pod.namespace, pod_ready=pod.ready,
                             revision=str(pod.labels.get("istio.io/rev") or "default"), sources=("kubernetes",))
        key = seen.key
        replicas[key] = merge_replica(replicas[key], seen) if key in replicas else seen
    return ControlPlane(replicas=tuple(sorted(replicas.values(), key=lambda r: r.key)),
                        syncs=tuple(part.xds_sync), rejects=tuple(part.xds_rejects),
                        webhooks=tuple(part.injection_webhooks) if part.webhooks_listed else None)


def assemble(part: SnapshotPart, *, time: datetime, window_s: float, origin: str = "",
             mesh: Mesh = Mesh.UNKNOWN) -> MeshSnapshot:
    """Deduplicate and cross-link the parts into an immutable snapshot.

    ``mesh`` (from the config's ``mesh: istio|appmesh``) labels the services and workloads no
    source could place; with ``auto`` (UNKNOWN here) they stay unknown. App Mesh names are
    mapped onto the Kubernetes objects they stand for first, so every source speaks of one
    workload and one service by one name.
    """
    # X-Ray's edges to a virtual node are told from CloudWatch's to its virtual service by
    # their App Mesh names, which differ even where the Kubernetes names coincide: first.
    part, names = kubernetes_names(replace(part, edges=dedupe_node_edges(part.edges)))
    services: dict[ServiceRef, Service] = {}
    for s in part.services:
        services[s.ref] = _merge_service(services[s.ref], s) if s.ref in services else s
    workloads: dict[WorkloadRef, Workload] = {}
    for w in part.workloads:
        workloads[w.ref] = _merge_workload(workloads[w.ref], w) if w.ref in workloads else w

    # Edges: primary sources (metrics) first; secondary ones (Jaeger dependencies, marked by
    # protocol "dependency") only where no primary edge joins the same pair.
    primary = [e for e in part.edges if e.protocol != "dependency"]
    edges = primary
    if len(primary) < len(part.edges):  # the pairs only when there are dependencies to weigh
        pairs = {(e.source_service or e.source, e.destination) for e in primary}
        pairs |= {(e.source, e.destination) for e in primary}
        edges = primary + [e for e in part.edges if e.protocol == "dependency"
                           and (e.source_service or e.source, e.destination) not in pairs]
    # No second dedupe here: node edges were told by their App Mesh names above, and under
    # Kubernetes names an App Mesh edge to a VirtualService named like its Deployment
    # (``cart`` -> Deployment ``cart``) would look addressed to the node and be dropped.

    # Nodes implied by edges (a service seen only in metrics is still in the graph).
    # A workload merged once is in the merge's own form (services unique, no empty strings), so
    # merging it again with what another edge implies changes nothing unless that adds a service
    # or a mesh: those merges are skipped (thousands per big mesh, a dataclass copy each).
    # An edge both of whose ends (workload, service, the edge's mesh) an earlier edge had, as
    # the very same objects, implies nothing new: what they implied is in place, and the state
    # only ever grows (services added, meshes settled). Told apart by identity (ints hash in C;
    # a ref's hash is Python's): a normaliser makes one ref object per name, so most edges of a
    # big mesh are skipped whole. Equal refs that are distinct objects are merely not skipped.
    settled: set[WorkloadRef] = set()
    ends: set[tuple[int, int, int]] = set()
    for e in edges:
        mesh_id = id(e.mesh)
        src_end = (id(e.source), id(e.source_service), mesh_id)
        dst_end = (id(e.destination_workload), id(e.destination), mesh_id)
        if src_end in ends and dst_end in ends:
            continue
        ends.add(src_end)
        ends.add(dst_end)
        for sref in (e.destination, e.source_service):
            if sref is not None and not sref.is_unknown and sref not in services:
                services[sref] = Service(ref=sref, mesh=e.mesh)
        for wref, sref in ((e.source, e.source_service), (e.destination_workload, e.destination)):
            if wref is None or wref.is_unknown:
                continue
            known = workloads.get(wref)
            named = sref is not None and not sref.is_unknown
            if known is not None and wref in settled and (known.mesh is not Mesh.UNKNOWN or e.mesh is Mesh.UNKNOWN) \
                    and (not named or sref in known.services):
                continue
            implied = Workload(ref=wref, mesh=e.mesh, services=(sref,) if named and sref is not None else ())
            workloads[wref] = _merge_workload(known, implied) if known is not None else implied
            settled.add(wref)
    # A configuration-only run (manifests, no cluster) still has the services its Istio
    # resources route to, so `diagnose reviews` can run the configuration checks.
    for sref in _services_named_by_config(part):
        services.setdefault(sref, Service(ref=sref, mesh=Mesh.ISTIO))
    for s in list(services.values()):
        for wref in s.workloads:
            if wref in workloads and s.ref not in workloads[wref].services:
                workloads[wref] = replace(workloads[wref], services=(*workloads[wref].services, s.ref))
    if mesh is not Mesh.UNKNOWN:
        services = {k: replace(s, mesh=mesh) if s.mesh is Mesh.UNKNOWN else s for k, s in services.items()}
        workloads = {k: replace(w, mesh=mesh) if w.mesh is Mesh.UNKNOWN else w for k, w in workloads.items()}
    edges = [replace(e, mesh=_edge_mesh(e, workloads)) if e.mesh is Mesh.UNKNOWN else e for e in edges]

    return MeshSnapshot(
        time=time, window_s=window_s,
        # By the refs' fields as tuples: the refs' own order, compared in C (thousands of nodes).
        services=tuple(sorted(services.values(), key=lambda s: (s.ref.namespace, s.ref.name))),
        workloads=tuple(sorted(workloads.values(), key=lambda w: (w.ref.namespace, w.ref.name))),
        pods=tuple(part.pods), edges=tuple(edges), proxies=tuple(part.proxies),
        certs=tuple(part.certs), config=tuple(part.config),
        traces=tuple(_span_services(part.traces, workloads, names)),
        sources=tuple(part.sources), origin=origin, series=tuple(part.series), history=part.history,
        control_plane=control_plane(part),
    )
