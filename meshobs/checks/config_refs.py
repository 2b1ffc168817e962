"""Reference analyzers: a configuration resource names something that is not there.

A VirtualService destination host that no Service or ServiceEntry defines (or that a
ServiceEntry's ``exportTo`` hides from it), a gateway that does not exist, a workload selector
that matches no pod. Each reference is judged only where the input vouches for the namespace it
points into (see ``inventory``); an analyzer that could judge none says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import (
    GATEWAY,
    MESH_GATEWAY,
    VIRTUAL_SERVICE,
    gateway_key,
    pick_resources,
    vs_destinations,
    vs_gateway_refs,
)
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .inventory import (
    config_listed_everywhere,
    declared_service,
    has_service_entries,
    pod_labels,
    selects,
    service_entries_for,
    service_of_host,
    touched_by,
    visible_entries,
    vouches_for_config,
    vouches_for_services,
)
from .meshconfig import root_namespace


@analyzer("config.host_not_found", Category.CONFIG, ("VirtualService", "ServiceEntry", "Service"), ("MSH0223",),
          mesh=Mesh.ISTIO)
def host_not_found(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A VirtualService routes or mirrors to a host that no Service or ServiceEntry visible from
    its namespace defines (Istio drops the route: 503/404 NR)."""
    judged, unjudged = 0, set()
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        reported: set[str] = set()
        for d in vs_destinations(vs):
            if "*" in d.host or d.host in reported:
                continue
            entries = service_entries_for(snapshot, d.host)
            if visible_entries(entries, vs.namespace) or declared_service(snapshot, d.host) is not None:
                judged += 1
                continue
            named = service_of_host(d.host)
            namespace = named.namespace if named is not None else None
            # Judge only what the input vouches for: the Services of the host's namespace, or, for
            # a name outside the cluster, ServiceEntries at all, listed in every namespace (one
            # exported to all may live in any).
            if not entries and not (vouches_for_services(snapshot, namespace) if namespace is not None
                                    else has_service_entries(snapshot) and config_listed_everywhere(snapshot)):
                unjudged.add(namespace or "external hosts")
                continue
            judged += 1
            reported.add(d.host)
            hidden = sorted(f"{se.namespace}/{se.name}" for se in entries)
            yield finding("MSH0223", "config.host_not_found", resource=vs, at=f"{d.path}.host",
                          services=touched_by(snapshot, vs), virtual_service=f"{vs.namespace}/{vs.name}",
                          verb="mirrors to" if d.mirror else "routes to", host=d.host, namespace=vs.namespace,
                          evidence={"host": d.host, "mirror": d.mirror,
                                    **({"service_entries_not_exported_here": hidden} if hidden else {})},
                          hint=(f"ServiceEntry {', '.join(hidden)} defines {d.host} but its exportTo hides it from "
                                f"namespace {vs.namespace}: add the namespace to exportTo" if hidden else
                                f"fix the host (a typo? the namespace?) or create the Service or a ServiceEntry "
                                f"for {d.host}; istioctl analyze reports IST0101"))
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no Services of {', '.join(sorted(unjudged))}, so no destination "
                            "host could be looked up")


@analyzer("config.gateway_not_found", Category.CONFIG, ("VirtualService", "Gateway", "Service"), ("MSH0224",),
          mesh=Mesh.ISTIO)
def gateway_not_found(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A VirtualService binds to a Gateway that does not exist, so its routes apply nowhere."""
    gateways = {gw.key[1:] for gw in pick_resources(snapshot, GATEWAY)}
    judged, unjudged = 0, set()
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        for ref, path in vs_gateway_refs(vs):
            if ref == MESH_GATEWAY:
                continue
            key = gateway_key(ref, vs.namespace)
            if key in gateways:
                judged += 1
                continue
            if not vouches_for_config(snapshot, GATEWAY, key[0]):
                unjudged.add(key[0])
                continue
            judged += 1
            yield finding("MSH0224", "config.gateway_not_found", resource=vs, at=path,
                          services=touched_by(snapshot, vs), virtual_service=f"{vs.namespace}/{vs.name}",
                          gateway=ref, gateway_ref=f"{key[0]}/{key[1]}",
                          evidence={"gateway": ref, "looked_up": f"{key[0]}/{key[1]}",
                                    "gateways_there": sorted(n for ns, n in gateways if ns == key[0])},
                          hint="name the Gateway as namespace/name (a bare name means the VirtualService's own "
                               "namespace), or create it; istioctl analyze reports IST0101")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no Gateways in {', '.join(sorted(unjudged))}, so no gateway "
                            "reference could be looked up")


# kind -> where its workload selector lives
SELECTOR_PATHS: dict[str, tuple[str, str]] = {
    "AuthorizationPolicy": ("selector", "matchLabels"),
    "PeerAuthentication": ("selector", "matchLabels"),
    "RequestAuthentication": ("selector", "matchLabels"),
    "Telemetry": ("selector", "matchLabels"),
    "WasmPlugin": ("selector", "matchLabels"),
    "Sidecar": ("workloadSelector", "labels"),
    "EnvoyFilter": ("workloadSelector", "labels"),
    "DestinationRule": ("workloadSelector", "matchLabels"),
}


def _selector(resource: ConfigResource) -> dict[str, Any] | None:
    outer, inner = SELECTOR_PATHS[resource.kind]
    block = resource.spec.get(outer)
    labels = block.get(inner) if isinstance(block, Mapping) else None
    return dict(labels) if isinstance(labels, Mapping) and labels else None


@analyzer("config.selector_matches_nothing", Category.CONFIG, (*SELECTOR_PATHS, "Workload", "Pod", "Service",
                                                                            "MeshConfig"),
          ("MSH0225",), mesh=Mesh.ISTIO)
def selector_matches_nothing(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A policy, Sidecar or filter selects its workloads by labels that no pod of its namespace
    carries, so it applies to nothing (a typo in a label is silent in Istio)."""
    judged, unjudged = 0, set()
    root = root_namespace(snapshot)
    for kind in sorted(SELECTOR_PATHS):
        for resource in pick_resources(snapshot, kind):
            selector = _selector(resource)
            # In the root namespace a selector reaches every namespace: judged nowhere here.
            if selector is None or resource.namespace == root:
                continue
            labels = pod_labels(snapshot, resource.namespace)
            if labels is None:
                unjudged.add(resource.namespace)
                continue
            judged += 1
            if any(selects(selector, ls) for ls in labels):
                continue
            outer, inner = SELECTOR_PATHS[kind]
            text = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
            yield finding("MSH0225", "config.selector_matches_nothing", resource=resource, at=f"spec.{outer}.{inner}",
                          kind=kind, name=f"{resource.namespace}/{resource.name}", selector=text,
                          namespace=resource.namespace,
                          evidence={"selector": selector, "label_sets_considered": len(labels)},
                          hint=f"compare with kubectl get pods -n {resource.namespace} --show-labels; fix the "
                               "labels or remove the resource")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no pods or workloads in {', '.join(sorted(unjudged))}, so no "
                            "selector could be matched")
