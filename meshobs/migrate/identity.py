"""One name per workload and service on both sides of a cut-over.

App Mesh telemetry (CloudWatch, X-Ray, its Envoy node ids) names a workload
``WorkloadRef(mesh, virtualNode)`` and a service ``ServiceRef(mesh, virtualService)``;
Kubernetes and Istio name them ``(namespace, Deployment)`` and ``(namespace, Service)``. A
virtual node maps to the Kubernetes workload its ``podSelector`` selects (when exactly one
does), a virtual service to the Kubernetes Service its name is (``cart-service`` or
``cart-service.shop.svc.cluster.local``). Teams that named meshes after namespaces, as the
demo does, see no change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshobs import appmesh_spec as spec
from meshobs.model import MeshSnapshot, ServiceRef, WorkloadRef


@dataclass
class Identities:
    workloads: dict[WorkloadRef, WorkloadRef] = field(default_factory=dict)
    services: dict[ServiceRef, ServiceRef] = field(default_factory=dict)

    def workload(self, ref: WorkloadRef) -> str:
        w = self.workloads.get(ref, ref)
        return f"{w.namespace}/{w.name}"

    def service(self, ref: ServiceRef) -> str:
        s = self.services.get(ref, ref)
        return f"{s.namespace}/{s.name}"


def identities(snapshot: MeshSnapshot) -> Identities:
    """The one App Mesh -> Kubernetes mapping (:func:`meshobs.collectors.appmesh_names.names_from`),
    for the resources of a snapshot whose telemetry assembly already renamed with it."""
    from meshobs.collectors.appmesh_names import names_from

    names = names_from(snapshot.config, snapshot.workloads, snapshot.pods, snapshot.services)
    out = Identities(dict(names.workloads), dict(names.services))
    # A virtual service whose Kubernetes Service is not in the input still reads as the one its
    # name spells (``cart-service`` in its namespace or mesh), so both sides of a cut-over agree.
    for vs in spec.resources(snapshot, spec.VIRTUAL_SERVICE):
        lay = spec.layout(vs)
        aws = str(lay.get("aws_name") or vs.name)
        parts = aws.split(".")
        namespace = parts[1] if len(parts) > 2 and parts[2] == "svc" else (vs.namespace or str(lay.get("mesh")))
        out.services.setdefault(ServiceRef(str(lay.get("mesh") or vs.namespace), aws), ServiceRef(namespace, parts[0]))
    return out
