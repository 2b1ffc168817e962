"""Subset analyzers: a VirtualService naming a subset no DestinationRule defines, a subset
selecting none of its service's pods; and the DestinationRule / label helpers other Istio
checks share.

The drift checks (VirtualService vs Envoy vs Git, configured vs observed split) live in
``config_routes``; the other VirtualService analyzers in ``config_vs`` and ``config_refs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import (
    DESTINATION_RULE,
    VIRTUAL_SERVICE,
    DestinationRef,
    dr_host,
    dr_subsets,
    host_matches,
    pick_resources,
    service_hosts,
    vs_destinations,
)
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, Service, ServiceRef, Workload

from .base import CouldNotCheck, Finding, Settings, analyzer, finding, memo
from .inventory import selects as selects  # re-exported: the label selector the Istio checks share
from .inventory import services_of_hosts, vouches_for_config
from .meshconfig import root_namespace
from .scope import Focus, mesh_of, services_in_focus


def target_service(snapshot: MeshSnapshot, service: ServiceRef) -> Service:
    """The Service object, or a bare one when only the name is known (manifest-only runs)."""
    return snapshot.service(service) or Service(ref=service)


def workload_labels(w: Workload) -> dict[str, Any]:
    """A workload's pod-template labels, with app/version filled in when only those are known."""
    labels: dict[str, Any] = dict(w.labels)
    if w.app and "app" not in labels:
        labels["app"] = w.app
    if w.version and "version" not in labels:
        labels["version"] = w.version
    return labels


def _drs_by_host(snapshot: MeshSnapshot) -> tuple[dict[str, list[ConfigResource]], list[ConfigResource]]:
    exact: dict[str, list[ConfigResource]] = {}
    wildcard: list[ConfigResource] = []
    for dr in pick_resources(snapshot, DESTINATION_RULE):
        host = dr_host(dr)
        if host.startswith("*"):
            wildcard.append(dr)
        else:
            exact.setdefault(host, []).append(dr)
    return exact, wildcard


def destination_rules_for(snapshot: MeshSnapshot, hosts: Iterable[str]) -> list[ConfigResource]:
    """DestinationRules whose host covers one of ``hosts`` (indexed once per snapshot)."""
    exact, wildcard = memo(snapshot, "istio.drs_by_host", _drs_by_host)
    hosts = list(hosts)
    found = {(dr.namespace, dr.name): dr for h in hosts for dr in exact.get(h, ())}
    found.update({(dr.namespace, dr.name): dr for dr in wildcard if any(host_matches(dr_host(dr), h) for h in hosts)})
    return [found[k] for k in sorted(found)]


def subsets_for_host(drs: Iterable[ConfigResource], host: str) -> dict[str, tuple[ConfigResource, dict[str, str]]]:
    """Subset name -> (DestinationRule, labels) over every DestinationRule covering ``host``."""
    out: dict[str, tuple[ConfigResource, dict[str, str]]] = {}
    for dr in drs:
        if host_matches(dr_host(dr), host):
            for name, labels in dr_subsets(dr).items():
                out.setdefault(name, (dr, labels))
    return out


def istio_services(snapshot: MeshSnapshot, focus: Focus | None = None) -> list[Service]:
    """The services an Istio analyzer judges one by one: every service not on App Mesh (its
    configuration is judged by the appmesh.* checks); with ``focus``, those of the focus only
    (:func:`~.scope.services_in_focus`), picked before each one's mesh is worked out: a
    question about one service asks a few of thousands."""
    return [s for s in services_in_focus(focus, snapshot.services)
            if not s.ref.is_unknown and mesh_of(snapshot, s.ref) is not Mesh.APPMESH]


@analyzer("config.unknown_subset", Category.CONFIG, ("VirtualService", "DestinationRule", "Service", "MeshConfig"),
          ("MSH0201",),
          mesh=Mesh.ISTIO)
def unknown_subset(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A VirtualService routes (or mirrors) to a subset that no DestinationRule for its host defines."""
    judged, unjudged = 0, set()
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        missing: dict[tuple[str, str], DestinationRef] = {}
        for d in vs_destinations(vs):
            if not d.subset:
                continue
            drs = destination_rules_for(snapshot, [d.host])
            # No DestinationRule for the host at all: judged only where the input holds the
            # DestinationRules Istio would look in (the client's, the host's and the root namespace).
            where = {vs.namespace, root_namespace(snapshot),
                     *([d.host.split(".")[1]] if d.host.count(".") >= 2 else [])}
            if not drs and not any(vouches_for_config(snapshot, DESTINATION_RULE, ns) for ns in where):
                unjudged.add(vs.namespace)
                continue
            judged += 1
            if d.subset not in subsets_for_host(drs, d.host):
                missing.setdefault((d.subset, d.host), d)
        for (subset, host), d in sorted(missing.items()):
            defined = sorted(subsets_for_host(destination_rules_for(snapshot, [host]), host))
            yield finding("MSH0201", "config.unknown_subset", resource=vs, at=f"{d.path}.subset",
                          services=services_of_hosts(snapshot, [host]),
                          virtual_service=f"{vs.namespace}/{vs.name}", subset=subset, host=host,
                          evidence={"subset": subset, "host": host, "defined_subsets": defined},
                          hint=f"add subset {subset} to the DestinationRule for {host}, or route to one of "
                               f"{', '.join(defined) or 'no subsets (none defined)'}")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no DestinationRules where {', '.join(sorted(unjudged))} would "
                            "look for the subsets its VirtualServices name")


@analyzer("config.empty_subset", Category.CONFIG, ("DestinationRule", "Service", "Workload", "Pod"), ("MSH0202",),
          mesh=Mesh.ISTIO)
def empty_subset(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
    """A DestinationRule subset selects none of its service's pods (503 UH when routed to)."""
    for svc in istio_services(snapshot, focus):  # its findings touch svc only
        yield from _empty_subsets(snapshot, svc)


def _empty_subsets(snapshot: MeshSnapshot, svc: Service) -> Iterable[Finding]:
    service = svc.ref
    workloads = snapshot.workloads_of(service)
    label_sets: list[dict[str, Any]] = []
    for w in workloads:
        pods = snapshot.pods_of(w.ref)
        if pods:
            label_sets.extend({**workload_labels(w), **p.labels} for p in pods)
        else:  # Deployments from manifests, no pods: judge by the pod template
            label_sets.append(workload_labels(w))
    if not label_sets:
        return  # nothing known about the service's pods: cannot judge
    for dr in destination_rules_for(snapshot, service_hosts(svc)):
        if dr_host(dr).startswith("*"):
            continue
        for index, (subset, labels) in enumerate(sorted(dr_subsets(dr).items())):
            if labels and not any(selects(labels, ls) for ls in label_sets):
                versions = sorted({str(ls.get("version")) for ls in label_sets if ls.get("version")})
                yield finding("MSH0202", "config.empty_subset", resource=dr, at=_subset_path(dr, subset, index),
                              services=[service], destination_rule=f"{dr.namespace}/{dr.name}", subset=subset,
                              labels=", ".join(f"{k}={v}" for k, v in sorted(labels.items())),
                              evidence={"subset_labels": labels, "pods_considered": len(label_sets),
                                        "workloads": sorted(str(w.ref) for w in workloads),
                                        "versions_running": versions},
                              hint=f"fix the subset's labels to match a running version ({', '.join(versions)}) "
                                   "or deploy pods carrying them; check with kubectl get pods -l ...")


def _subset_path(dr: ConfigResource, subset: str, fallback: int) -> str:
    for i, s in enumerate(dr.spec.get("subsets") or ()):
        if isinstance(s, Mapping) and s.get("name") == subset:
            return f"spec.subsets[{i}].labels"
    return f"spec.subsets[{fallback}]"
