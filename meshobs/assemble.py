"""Merge what each collector normalised into one MeshSnapshot.

Kubernetes knows services, workloads and pods; Prometheus knows edges; Envoy knows proxies and
certificates; Jaeger knows traces. Where sources overlap, the richer fact wins: a service seen
only in metrics is still a node of the graph, and Jaeger's dependency links only add edges
Prometheus did not report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from .model import (
    Edge,
    Mesh,
    MeshSnapshot,
    Service,
    ServiceRef,
    SnapshotPart,
    Workload,
    WorkloadRef,
)


def _merge_service(a: Service, b: Service) -> Service:
    return replace(
        a,
        mesh=a.mesh if a.mesh is not Mesh.UNKNOWN else b.mesh,
        hosts=tuple(dict.fromkeys(a.hosts + b.hosts)),
        ports=tuple(dict.fromkeys(a.ports + b.ports)),
        selector=a.selector or b.selector,
        workloads=tuple(dict.fromkeys(a.workloads + b.workloads)),
    )


def _merge_workload(a: Workload, b: Workload) -> Workload:
    return replace(
        a,
        mesh=a.mesh if a.mesh is not Mesh.UNKNOWN else b.mesh,
        services=tuple(dict.fromkeys(a.services + b.services)),
        app=a.app or b.app, version=a.version or b.version,
        labels=a.labels or b.labels, service_account=a.service_account or b.service_account,
        meshed=a.meshed if a.meshed is not None else b.meshed,
    )


def _edge_mesh(edge: Edge, workloads: dict[WorkloadRef, Workload]) -> Mesh:
    if edge.mesh is not Mesh.UNKNOWN:
        return edge.mesh
    w = workloads.get(edge.source)
    return w.mesh if w else Mesh.UNKNOWN


def assemble(part: SnapshotPart, *, time: datetime, window_s: float, origin: str = "") -> MeshSnapshot:
    """Deduplicate and cross-link the parts into an immutable snapshot."""
    services: dict[ServiceRef, Service] = {}
    for s in part.services:
        services[s.ref] = _merge_service(services[s.ref], s) if s.ref in services else s
    workloads: dict[WorkloadRef, Workload] = {}
    for w in part.workloads:
        workloads[w.ref] = _merge_workload(workloads[w.ref], w) if w.ref in workloads else w

    # Edges: primary sources (metrics) first; secondary ones (Jaeger dependencies, marked by
    # protocol "dependency") only where no primary edge joins the same pair.
    primary = [e for e in part.edges if e.protocol != "dependency"]
    pairs = {(e.source_service or e.source, e.destination) for e in primary}
    pairs |= {(e.source, e.destination) for e in primary}
    edges = primary + [e for e in part.edges if e.protocol == "dependency"
                       and (e.source_service or e.source, e.destination) not in pairs]

    # Nodes implied by edges (a service seen only in metrics is still in the graph).
    for e in edges:
        for sref in (e.destination, e.source_service):
            if sref is not None and not sref.is_unknown and sref not in services:
                services[sref] = Service(ref=sref, mesh=e.mesh)
        for wref, sref in ((e.source, e.source_service), (e.destination_workload, e.destination)):
            if wref is None or wref.is_unknown:
                continue
            implied = Workload(ref=wref, mesh=e.mesh,
                               services=(sref,) if sref is not None and not sref.is_unknown else ())
            workloads[wref] = _merge_workload(workloads[wref], implied) if wref in workloads else implied
    for s in list(services.values()):
        for wref in s.workloads:
            if wref in workloads and s.ref not in workloads[wref].services:
                workloads[wref] = replace(workloads[wref], services=(*workloads[wref].services, s.ref))
    edges = [replace(e, mesh=_edge_mesh(e, workloads)) if e.mesh is Mesh.UNKNOWN else e for e in edges]

    return MeshSnapshot(
        time=time, window_s=window_s,
        services=tuple(sorted(services.values(), key=lambda s: s.ref)),
        workloads=tuple(sorted(workloads.values(), key=lambda w: w.ref)),
        pods=tuple(part.pods), edges=tuple(edges), proxies=tuple(part.proxies),
        certs=tuple(part.certs), config=tuple(part.config), traces=tuple(part.traces),
        sources=tuple(part.sources), origin=origin, series=tuple(part.series),
    )
