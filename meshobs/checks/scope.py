"""Which checks can say something about a service, given the mesh it runs on; and what a
question about one service needs the analyzers to judge (:class:`Focus`).

The engine's input check (``meshobs.engine.inputs``) is per snapshot: in a migration the
Kubernetes source answers, so Istio's configuration checks would run for an App Mesh service and
pass on nothing. Each check declares the mesh it judges (``mesh=``) and the meshes whose sources
lack its signal (``blind_on=``); :func:`not_applicable` turns that into the reason a check
cannot judge *this* service, so the engine reports it as skipped instead of passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from meshobs.catalogue import Category
from meshobs.model import Mesh, MeshSnapshot, Service, ServiceRef
from meshobs.model.gateway import INGRESS, WAYPOINT

from .base import AnyCheck, Check
from .dataplane import gateway_kind_of

_ROLE_REASON = {
    INGRESS: "not applicable: {service} is an ingress gateway; its callers are outside the mesh, so no "
             "proxy reports what they see (its calls into the mesh are judged as its outbound traffic)",
    WAYPOINT: "not applicable: {service} is a waypoint; the requests it carries are reported as those of "
              "the services it serves",
}

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


def gateway_role(snapshot: MeshSnapshot, service: ServiceRef) -> str | None:
    """``ingress gateway`` or ``waypoint`` when the service's workloads are one
    (:func:`meshobs.model.gateway.gateway_kind`: their labels, their proxies' node ids, a
    Gateway selecting them); else None."""
    workloads = snapshot.workloads_of(service)
    if not workloads:
        return None
    roles: set[str | None] = set()
    for w in workloads:
        kind = gateway_kind_of(snapshot, w.labels, w.ref)
        roles.add(kind if kind in (INGRESS, WAYPOINT) else None)  # an egress gateway's callers are in the mesh
    return roles.pop() if len(roles) == 1 else None


def role_and_mesh(snapshot: MeshSnapshot, service: ServiceRef) -> tuple[str | None, Mesh]:
    """:func:`gateway_role` and :func:`mesh_of` of ``service``, found once per snapshot: every
    check of the checklist asks them for every service (70 x 5,000 times in a --all)."""
    known: dict[ServiceRef, tuple[str | None, Mesh]] = snapshot.derived("scope.role_and_mesh", lambda _s: {})
    found = known.get(service)
    if found is None:
        found = known[service] = (gateway_role(snapshot, service), mesh_of(snapshot, service))
    return found


def not_applicable(check: AnyCheck | str, snapshot: MeshSnapshot, service: ServiceRef) -> str | None:
    """Why ``check`` cannot judge ``service`` on its mesh; None when it can (or the mesh is
    unknown: then the check runs and decides for itself)."""
    if isinstance(check, str):
        from .registry import load

        check = load()[check]
    return not_applicable_in(check, *role_and_mesh(snapshot, service), service)


def not_applicable_in(check: AnyCheck, role: str | None, mesh: Mesh, service: ServiceRef) -> str | None:
    """:func:`not_applicable` for a service whose :func:`role_and_mesh` is already known."""
    # A waypoint's traffic is the services', every traffic check; an ingress gateway's inbound
    # side only.
    if isinstance(check, Check) and (
            (role == WAYPOINT and (check.callers or check.category in (Category.TRAFFIC, Category.TRACES)))
            or (role == INGRESS and check.callers)):
        return _ROLE_REASON[str(role)].format(service=service)
    if mesh is Mesh.UNKNOWN:
        return None
    if check.mesh is not None and check.mesh is not mesh:
        return _OTHER_MESH[check.mesh].format(service=service)
    blind = check.blind_on.get(str(mesh))
    return f"could not check: {blind}" if blind else None


@dataclass(frozen=True)
class Focus:
    """What a question about one service (``diagnose SERVICE``) can report of the analyzers'
    findings touching services: those about the services below it (the target and every
    service downstream, at any depth: the root-cause walk, and the deadlines surfaced from any
    depth, read no other service's). An analyzer that takes a focus judges only the subjects
    whose findings can touch one of them, and still reads the whole snapshot for its lookups
    (hosts, selectors, references). Which findings such a question reads otherwise -- the
    findings about a resource a symptom names (``related``), those of a service a delivery
    fault's workloads belong to -- the engine takes from a whole run (:mod:`meshobs.engine`).
    """

    services: frozenset[ServiceRef]

    def touches(self, services: Iterable[ServiceRef]) -> bool:
        """Can a finding touching ``services`` be reported?"""
        return not self.services.isdisjoint(services)


def services_in_focus(focus: Focus | None, services: Iterable[Service]) -> Iterable[Service]:
    """The ``services`` an analyzer whose findings about a Service touch that Service alone
    judges: all of them without a focus, else those of the focus, in order."""
    return services if focus is None else [s for s in services if s.ref in focus.services]

