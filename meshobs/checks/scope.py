"""Which checks can say something about a service, given the mesh it runs on.

The engine's input check (``meshobs.engine.inputs``) is per snapshot: in a migration the
Kubernetes source answers, so Istio's configuration checks would run for an App Mesh service and
pass on nothing. :func:`not_applicable` gives the reason a check cannot judge *this* service, so
the engine can report it as skipped ("could not check") instead of passed.
"""

from __future__ import annotations

from meshobs.model import Mesh, MeshSnapshot, ServiceRef

# Istio checks that read Istio resources only (VirtualService, DestinationRule, PeerAuthentication).
ISTIO_CONFIG_CHECKS = ("config.duplicate_virtualservice", "config.empty_subset", "config.intended_drift",
                       "config.policy_drift", "config.split_mismatch", "config.unknown_subset",
                       "config.weight_drift", "certs.mtls_conflict")
# Checks that need a signal App Mesh's telemetry does not carry.
NO_APPMESH_SIGNAL = {
    "certs.plaintext_edge": "CloudWatch and X-Ray do not report how requests were secured "
                            "(Istio's connection_security_policy has no App Mesh counterpart)",
}


def mesh_of(snapshot: MeshSnapshot, service: ServiceRef) -> Mesh:
    """The service's mesh: its own, else the one its workloads agree on."""
    svc = snapshot.service(service)
    if svc is not None and svc.mesh is not Mesh.UNKNOWN:
        return svc.mesh
    meshes = {w.mesh for w in snapshot.workloads_of(service)} - {Mesh.UNKNOWN}
    return next(iter(meshes)) if len(meshes) == 1 else Mesh.UNKNOWN


def not_applicable(check_id: str, snapshot: MeshSnapshot, service: ServiceRef) -> str | None:
    """Why ``check_id`` cannot judge ``service`` on its mesh; None when it can (or the mesh is
    unknown: then the check runs and decides for itself)."""
    mesh = mesh_of(snapshot, service)
    if mesh is Mesh.ISTIO and check_id.startswith("appmesh."):
        return f"not applicable: {service} runs on Istio (this check reads App Mesh configuration)"
    if mesh is Mesh.APPMESH and check_id in ISTIO_CONFIG_CHECKS:
        return (f"could not check: {service} runs on App Mesh, which has no Istio VirtualService, "
                f"DestinationRule or PeerAuthentication; the appmesh.* checks cover its configuration")
    if mesh is Mesh.APPMESH and check_id in NO_APPMESH_SIGNAL:
        return f"could not check: {NO_APPMESH_SIGNAL[check_id]}"
    return None
