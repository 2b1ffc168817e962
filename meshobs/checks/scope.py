"""Which checks can say something about a service, given the mesh it runs on.

The engine's input check (``meshobs.engine.inputs``) is per snapshot: in a migration the
Kubernetes source answers, so Istio's configuration checks would run for an App Mesh service and
pass on nothing. Each check declares the mesh it judges (``mesh=``) and the meshes whose sources
lack its signal (``blind_on=``); :func:`not_applicable` turns that into the reason a check
cannot judge *this* service, so the engine reports it as skipped instead of passed.
"""

from __future__ import annotations

from meshobs.model import Mesh, MeshSnapshot, ServiceRef

from .base import AnyCheck

# Why a check written for one mesh says nothing about a service of another. An App Mesh check
# on an Istio service is simply not applicable; an Istio check on an App Mesh service "could
# not check" it, since the service's configuration is then judged by the appmesh.* checks only.
_OTHER_MESH = {
    Mesh.APPMESH: "not applicable: {service} runs on Istio (this check reads App Mesh configuration)",
    Mesh.ISTIO: "could not check: {service} runs on App Mesh, which has no Istio VirtualService, "
                "DestinationRule or PeerAuthentication; the appmesh.* checks cover its configuration",
}


def mesh_of(snapshot: MeshSnapshot, service: ServiceRef) -> Mesh:
    """The service's mesh: its own, else the one its workloads agree on."""
    svc = snapshot.service(service)
    if svc is not None and svc.mesh is not Mesh.UNKNOWN:
        return svc.mesh
    meshes = {w.mesh for w in snapshot.workloads_of(service)} - {Mesh.UNKNOWN}
    return next(iter(meshes)) if len(meshes) == 1 else Mesh.UNKNOWN


def not_applicable(check: AnyCheck | str, snapshot: MeshSnapshot, service: ServiceRef) -> str | None:
    """Why ``check`` cannot judge ``service`` on its mesh; None when it can (or the mesh is
    unknown: then the check runs and decides for itself)."""
    if isinstance(check, str):
        from .registry import load

        check = load()[check]
    mesh = mesh_of(snapshot, service)
    if mesh is Mesh.UNKNOWN:
        return None
    if check.mesh is not None and check.mesh is not mesh:
        return _OTHER_MESH[check.mesh].format(service=service)
    blind = check.blind_on.get(str(mesh))
    return f"could not check: {blind}" if blind else None
