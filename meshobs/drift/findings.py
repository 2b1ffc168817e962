"""Drift as findings: what ``drift`` reports, in the codes and words ``diagnose`` uses.

``diagnose`` runs the very comparison ``meshobs drift`` runs (:func:`meshobs.drift.run.check`,
without ignore rules: those are the drift job's) on the snapshot's layers, once per snapshot, and
files each difference under the services its resource shapes traffic for: a VirtualService
under the services its hosts name, a DestinationRule under its host's, an App Mesh router under
the services whose virtual service it provides. One difference is one finding, with the code
:func:`meshobs.drift.compare.code_of` gives it and that code's severity, so the two commands
agree by construction (``tests/test_drift_agreement.py`` holds them to it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from meshobs import appmesh_spec
from meshobs.checks.base import Finding, finding, memo
from meshobs.istio_config import dr_host, vs_hosts
from meshobs.model import ConfigResource, Layer, Mesh, MeshSnapshot, ServiceRef, WorkloadRef

from .compare import INTENDED_LIVE, Drift
from .normalise import ResourceId
from .run import EFFECTIVE, DriftRun, check

_HINTS = {
    "MSH0203": "the proxies do not route as the configuration says: istioctl proxy-status shows whether they are "
               "STALE (a rejected or missing push), istioctl proxy-config routes <pod> -o json what they hold; an "
               "EnvoyFilter patching routes explains it too",
    "MSH0204": "compare istioctl proxy-config routes <pod> -o json with the resource; a stale proxy "
               "(istioctl proxy-status) or an EnvoyFilter patching routes explains it",
    "MSH0280": "a subset the proxies lack was never pushed to them (istioctl proxy-status: STALE CDS); a subset "
               "they still hold was removed from the rule after their last push",
    "MSH0281": "the proxies' clusters were built from another TLS setting: check istioctl proxy-status for a "
               "stale CDS and istioctl proxy-config cluster <pod> -o json for the transport socket",
    "MSH0207": "someone edited the cluster by hand: re-apply the manifests from Git (or commit the change there) "
               "so the two agree",
    "MSH0283": "someone edited the cluster by hand and traffic now goes elsewhere (or is secured differently) "
               "than Git says: re-apply the manifests from Git, or commit the change there",
    "MSH0284": "apply the manifest (kubectl apply -f), or find why the GitOps sync did not (its controller's "
               "status, an admission webhook that rejected it)",
    "MSH0285": "commit the resource to Git if it is meant to stay (a hot fix), else delete it",
}


def snapshot_drift(snapshot: MeshSnapshot, pair: str) -> DriftRun:
    """``meshobs drift`` on the snapshot's own layers, for one pair: ``intended-live``, or the
    Envoy pair (``effective``: live-effective, or intended-effective without a live layer).
    Built once per snapshot."""
    return memo(snapshot, f"drift.{pair}",
                lambda s: check(None, None, s, rules=[], now=s.time, pairs=(pair,)))


def resource_of(snapshot: MeshSnapshot, rid: ResourceId) -> ConfigResource | None:
    """The resource a difference is about: the cluster's copy first, else Git's."""
    found = [r for r in snapshot.config_of(rid.kind) if (r.namespace, r.name) == (rid.namespace, rid.name)
             and str(r.mesh.value if isinstance(r.mesh, Mesh) else r.mesh) == rid.mesh]
    return next((r for r in found if r.layer is Layer.LIVE), found[0] if found else None)


def touched(snapshot: MeshSnapshot, resource: ConfigResource) -> list[ServiceRef]:
    """The services whose traffic a resource shapes (none for the kinds no service is named by)."""
    from meshobs.checks.inventory import services_of_hosts

    if resource.mesh is Mesh.ISTIO:
        if resource.kind == "VirtualService":
            return services_of_hosts(snapshot, vs_hosts(resource))
        if resource.kind == "DestinationRule":
            return services_of_hosts(snapshot, [dr_host(resource)])
        return []
    if resource.mesh is not Mesh.APPMESH:
        return []
    services = [s.ref for s in snapshot.services if not s.ref.is_unknown]
    if resource.kind == "VirtualService":
        return [s for s in services if appmesh_spec.service_matches(resource, s)]
    if resource.kind == "VirtualRouter":
        names = appmesh_spec.names_of(resource)
        out = []
        for vs in appmesh_spec.resources(snapshot, appmesh_spec.VIRTUAL_SERVICE):
            provider = appmesh_spec.layout(vs).get("provider") or {}
            if isinstance(provider, dict) and str(provider.get("virtual_router") or "") in names:
                out += [s for s in services if appmesh_spec.service_matches(vs, s)]
        return sorted(set(out))
    if resource.kind == "VirtualNode":
        return sorted({svc for w in snapshot.workloads if appmesh_spec.node_matches(resource, w.ref)
                       for svc in w.services})
    return []


def show(value: Any) -> str:
    """A value of one layer as people read it (``(absent)`` when the layer lacks it)."""
    if value is None:
        return "(absent)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def _proxies(snapshot: MeshSnapshot, ids: tuple[str, ...]) -> str:
    """The workloads of the proxies that differ (their ids when the workload is not known)."""
    by_id = {p.id: p for p in snapshot.proxies}
    names = sorted({str(by_id[i].workload) if i in by_id and by_id[i].workload else i for i in ids})
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"{shown} ({len(ids)} prox{'y' if len(ids) == 1 else 'ies'})"


def _workloads(snapshot: MeshSnapshot, ids: tuple[str, ...]) -> list[WorkloadRef]:
    """The workloads whose proxies differ: configuration delivery links a rejected or
    unacknowledged push on those proxies to the difference (meshobs.engine.delivery)."""
    by_id = {p.id: p for p in snapshot.proxies}
    return sorted({w for i in ids if i in by_id and isinstance(w := by_id[i].workload, WorkloadRef)})


def _origin(snapshot: MeshSnapshot, rid: ResourceId) -> str:
    git = [r for r in snapshot.config_of(rid.kind, Layer.INTENDED)
           if (r.namespace, r.name) == (rid.namespace, rid.name)]
    return (git[0].origin if git and git[0].origin else "") or "the intended manifests"


def _magnitude(d: Drift) -> float:
    if isinstance(d.left, (int, float)) and isinstance(d.right, (int, float)):
        return abs(float(d.left) - float(d.right))
    return 1.0


def finding_of(d: Drift, snapshot: MeshSnapshot, check_id: str, service: ServiceRef | None = None,
               services: tuple[ServiceRef, ...] = ()) -> Finding:
    """One difference as the finding ``diagnose`` reports (its code: ``d.code``)."""
    code = d.code
    assert code is not None, f"{d.layers} is not a drift layer pair"
    resource = resource_of(snapshot, d.resource)
    first, second = d.layers.split("-", 1)
    evidence: dict[str, Any] = {"layers": d.layers, "path": d.path, first: d.left, second: d.right,
                                "category": d.category, "drift_id": d.id}
    fields: dict[str, Any] = {"object": str(d.resource)}
    if d.layers == INTENDED_LIVE:
        fields["origin"] = _origin(snapshot, d.resource)
        if d.presence is None:
            fields.update(field=d.path, live=show(d.right), intended=show(d.left))
    else:
        evidence.update(proxies=list(d.proxies), per_proxy={p: v for p, v in d.per_proxy},
                        **{k: v for k, v in d.extra})
        fields.update(field=d.path, reference=first, expected=show(d.left), effective=show(d.right),
                      proxies=_proxies(snapshot, d.proxies))
    return finding(code, check_id, str(d.resource) if resource is None else "", resource=resource,
                   at=d.path, service=service, services=services, evidence=evidence,
                   workloads=_workloads(snapshot, d.proxies),
                   magnitude=_magnitude(d), hint=_HINTS[code], **fields)


def drift_findings(snapshot: MeshSnapshot, service: ServiceRef, pair: str, codes: tuple[str, ...],
                   check_id: str) -> Iterator[Finding]:
    """The differences of ``pair`` with one of ``codes`` whose resource shapes ``service``."""
    for d in memo(snapshot, f"drift.{pair}.by_service", lambda s: _by_service(s, pair)).get(service, ()):
        if d.code in codes:
            yield finding_of(d, snapshot, check_id, service=service)


def _by_service(snapshot: MeshSnapshot, pair: str) -> dict[ServiceRef, list[Drift]]:
    """The active differences of ``pair`` filed under every service their resource shapes, in
    the run's order: each resource looked up and its services found once, not once per service
    the checks ask about."""
    out: dict[ServiceRef, list[Drift]] = {}
    for d in snapshot_drift(snapshot, pair).active:
        resource = resource_of(snapshot, d.resource)
        if resource is not None:
            for service in dict.fromkeys(touched(snapshot, resource)):
                out.setdefault(service, []).append(d)
    return out


__all__ = ["EFFECTIVE", "INTENDED_LIVE", "drift_findings", "finding_of", "snapshot_drift", "touched"]
