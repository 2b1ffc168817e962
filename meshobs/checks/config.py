"""Configuration checks: subsets that do not exist or select nothing, competing VirtualServices.

The drift checks (VirtualService vs Envoy vs Git, configured vs observed split) live in
``config_routes`` and register when this module is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import (
    DESTINATION_RULE,
    VIRTUAL_SERVICE,
    dr_host,
    dr_subsets,
    host_matches,
    http_routes,
    pick_resources,
    service_hosts,
    virtual_services_for,
)
from meshobs.model import ConfigResource, MeshSnapshot, Service, ServiceRef, Workload

from .base import Finding, Settings, check, finding, memo


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


def selects(selector: Mapping[str, str], labels: Mapping[str, Any]) -> bool:
    return all(str(labels.get(k)) == str(v) for k, v in selector.items())


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


def _vs_by_destination(snapshot: MeshSnapshot) -> dict[str, list[ConfigResource]]:
    """Destination host -> VirtualServices routing to it (any gateway binding)."""
    out: dict[str, list[ConfigResource]] = {}
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        for host in {d.host for r in http_routes(vs) for d in r.destinations}:
            out.setdefault(host, []).append(vs)
    return out


@check("config.unknown_subset", Category.CONFIG, ("config",), ("MSH0201",))
def unknown_subset(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A VirtualService routes to a subset of this service that no DestinationRule defines."""
    svc = target_service(snapshot, service)
    hosts = service_hosts(svc)
    drs = destination_rules_for(snapshot, hosts)
    by_host = memo(snapshot, "istio.vs_by_destination", _vs_by_destination)
    candidates = {(vs.namespace, vs.name): vs for h in hosts for vs in by_host.get(h, ())}
    for _, vs in sorted(candidates.items()):
        missing: dict[str, str] = {}
        for route in http_routes(vs):
            for d in route.destinations:
                if d.subset and d.host in hosts and d.subset not in subsets_for_host(drs, d.host):
                    missing.setdefault(d.subset, d.host)
        for subset, host in sorted(missing.items()):
            defined = sorted(subsets_for_host(drs, host))
            yield finding("MSH0201", "config.unknown_subset", f"VirtualService {vs.namespace}/{vs.name}",
                          service=service, virtual_service=f"{vs.namespace}/{vs.name}", subset=subset, host=host,
                          evidence={"subset": subset, "host": host, "defined_subsets": defined},
                          hint=f"add subset {subset} to the DestinationRule for {host}, or route to one of "
                               f"{', '.join(defined) or 'no subsets (none defined)'}")


@check("config.empty_subset", Category.CONFIG, ("config",), ("MSH0202",))
def empty_subset(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A DestinationRule subset of this service selects none of its pods (503 UH when routed to)."""
    svc = target_service(snapshot, service)
    hosts = service_hosts(svc)
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
    for dr in destination_rules_for(snapshot, hosts):
        if dr_host(dr).startswith("*"):
            continue
        for subset, labels in sorted(dr_subsets(dr).items()):
            if labels and not any(selects(labels, ls) for ls in label_sets):
                versions = sorted({str(ls.get("version")) for ls in label_sets if ls.get("version")})
                yield finding("MSH0202", "config.empty_subset", f"DestinationRule {dr.namespace}/{dr.name}",
                              service=service, destination_rule=f"{dr.namespace}/{dr.name}", subset=subset,
                              labels=", ".join(f"{k}={v}" for k, v in sorted(labels.items())),
                              evidence={"subset_labels": labels, "pods_considered": len(label_sets),
                                        "workloads": sorted(str(w.ref) for w in workloads),
                                        "versions_running": versions},
                              hint=f"fix the subset's labels to match a running version ({', '.join(versions)}) "
                                   "or deploy pods carrying them; check with kubectl get pods -l ...")


@check("config.duplicate_virtualservice", Category.CONFIG, ("config",), ("MSH0206",))
def duplicate_virtualservice(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Two or more sidecar VirtualServices claim this service's host; Istio uses only one."""
    svc = target_service(snapshot, service)
    vss = [vs for vs in virtual_services_for(snapshot, svc) if vs.spec.get("http")]
    if len(vss) < 2:
        return
    names = [f"{vs.namespace}/{vs.name}" for vs in vss]
    yield finding("MSH0206", "config.duplicate_virtualservice", f"Service {service}", service=service,
                  count=len(vss), host=svc.fqdn, virtual_services=", ".join(names),
                  evidence={"virtual_services": names,
                            "hosts": {n: list(vs.spec.get("hosts") or ()) for n, vs in zip(names, vss)}},
                  hint="merge the routes into one VirtualService per host (only gateway-bound "
                       "VirtualServices are merged by Istio); istioctl analyze reports IST0109")


import meshobs.checks.config_routes  # noqa: E402,F401  (registers the drift checks)
