"""``verify``'s configuration and Envoy comparisons: App Mesh routes before vs Istio after.

Both go through the engines drift and the round trip use: :func:`.roundtrip.compare_config`
for the resources, :func:`meshobs.drift.routes.route_differences` for what each caller's Envoy
holds (App Mesh's ``cds_egress_<mesh>_<node>_...`` clusters and Istio's
``outbound|PORT|SUBSET|HOST`` ones, both turned into the workloads they reach).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from meshobs import appmesh_spec as spec
from meshobs import istio_config as ic
from meshobs.collectors.appmesh_names import parse_cluster_name
from meshobs.collectors.envoy.names import istio_outbound
from meshobs.drift.compare import Drift, classify
from meshobs.drift.normalise import ResourceId
from meshobs.drift.routes import FieldNames, envoy_view, route_differences
from meshobs.model import ConfigResource, HttpRoute, Mesh, MeshSnapshot, Proxy, ServiceRef, WorkloadRef

from .identity import Identities
from .inventory import Inventory
from .roundtrip import Endpoints, Resolver, compare_config
from .source import from_snapshot_config

LAYERS = "before-after"


def resolver(snapshot: MeshSnapshot, ids: Identities) -> Resolver:
    """host, labels -> the workloads of the host's Service that carry the labels."""
    def resolve(host: str, labels: Mapping[str, str] | None) -> list[str] | None:
        parts = host.split(".")
        if len(parts) < 2:
            return None
        workloads = snapshot.workloads_of(ServiceRef(parts[1], parts[0]))
        hits = [w for w in workloads if all(str(w.labels.get(k)) == v for k, v in (labels or {}).items())]
        return sorted(ids.workload(w.ref) for w in hits) or None
    return resolve


def _istio(snapshot: MeshSnapshot) -> list[ConfigResource]:
    kinds = (ic.VIRTUAL_SERVICE, ic.DESTINATION_RULE, ic.PEER_AUTHENTICATION)
    return [r for kind in kinds for r in ic.pick_resources(snapshot, kind) if r.mesh is Mesh.ISTIO]


def _still_on_appmesh(after: MeshSnapshot) -> set[str]:
    return {f"{s.ref.name}.{s.ref.namespace}.svc.cluster.local" for s in after.services if s.mesh is Mesh.APPMESH}


def config_differences(before: MeshSnapshot, after: MeshSnapshot) -> tuple[list[Drift], list[str]]:
    """App Mesh routing and TLS before vs the Istio resources after (services still on App Mesh
    are left out: they have not moved yet)."""
    appmesh = from_snapshot_config(before.config, before.origin).resources
    istio = _istio(after)
    if not appmesh:
        return [], ["no App Mesh configuration before: routes and TLS not compared"]
    if not istio:
        return [], ["no Istio configuration after: routes and TLS not compared"]
    inventory = Inventory(appmesh)
    still = _still_on_appmesh(after)
    moved = [r for r in inventory.resources
             if not (r.kind == "VirtualService" and inventory.service_host(r) in still)
             and not (r.kind == "VirtualNode" and any(n.resource.key == r.key and n.host in still
                                                      for n in inventory.nodes))]
    from .identity import identities

    return compare_config(Inventory(moved), istio, resolver(after, identities(after))), []


def _host(route: HttpRoute) -> str | None:
    names = [d for d in route.domains if ":" not in d and d != "*"]
    return max(names, key=len) if names else None


def _routes_by_host(proxy: Proxy) -> dict[str, list[HttpRoute]]:
    out: dict[str, list[HttpRoute]] = defaultdict(list)
    for r in proxy.routes:
        host = _host(r)
        if host is not None:
            out[host].append(r)
    return out


def _first_proxy(snapshot: MeshSnapshot, ids: Identities) -> dict[str, Proxy]:
    out: dict[str, Proxy] = {}
    for p in sorted(snapshot.proxies, key=lambda p: p.id):
        if p.workload is not None and p.routes:
            out.setdefault(ids.workload(p.workload), p)
    return out


class ClusterKeys:
    """A snapshot's Envoy cluster names -> endpoint keys, for both meshes' naming
    (``cds_egress_<mesh>_<node>_...`` and ``outbound|PORT|SUBSET|HOST``), so a caller still on
    App Mesh after the cut-over is read like one before it."""

    def __init__(self, snapshot: MeshSnapshot, ids: Identities) -> None:
        self.inventory = Inventory(from_snapshot_config(snapshot.config, snapshot.origin).resources)
        self.points = Endpoints(self.inventory, _istio(snapshot), resolver(snapshot, ids))
        self.meshes = {self.inventory.mesh_of(r) for r in self.inventory.resources}

    def key(self, cluster: str, client_namespace: str) -> str:
        appmesh = parse_cluster_name(cluster, self.meshes)
        if appmesh is not None:
            node = next((n for n in self.inventory.nodes if n.aws_name == appmesh.virtual_node), None)
            return self.points.of_node(node) if node is not None else f"node {appmesh.virtual_node}"
        istio = istio_outbound(cluster)
        return (self.points.of_destination(f"{istio.service_host}|{istio.subset or ''}", client_namespace)
                if istio else cluster)


def _catch_all(route: HttpRoute) -> bool:
    match = dict(route.match)
    return match.get("prefix") == "/" and not any(k for k in match if k not in ("prefix", "case_sensitive"))


def _pair(route: HttpRoute, index: int, was: list[HttpRoute], now: list[HttpRoute]) -> HttpRoute | None:
    """Same name; else, for a catch-all, the other side's catch-all; else the same position
    when both sides hold as many routes."""
    named = next((r for r in now if route.name and r.name == route.name), None)
    if named is not None:
        return named
    if _catch_all(route):
        catch = [r for r in now if _catch_all(r)]
        if catch:
            return catch[-1]
    return now[index] if len(was) == len(now) else None


def envoy_differences(before: MeshSnapshot, after: MeshSnapshot, ids_b: Identities, ids_a: Identities
                      ) -> tuple[list[Drift], list[str]]:
    """Each caller's Envoy routes before vs after, in the common route model."""
    old, new = _first_proxy(before, ids_b), _first_proxy(after, ids_a)
    if not old or not new:
        return [], ["no Envoy routes on " + ("either side" if not old and not new else
                                              "the before side" if not old else "the after side")
                    + ": what Envoy holds was not compared"]
    keys_b, keys_a = ClusterKeys(before, ids_b), ClusterKeys(after, ids_a)
    out: list[Drift] = []
    for workload in sorted(set(old) & set(new)):
        ns = workload.split("/")[0]
        was, now = _routes_by_host(old[workload]), _routes_by_host(new[workload])
        rid = ResourceId("envoy", "Proxy", ns, workload.split("/", 1)[1])
        for host in sorted(set(was) & set(now)):
            for i, route in enumerate(was[host]):
                match = _pair(route, i, was[host], now[host])
                base = f"routes[{host}|{route.name or i}]"
                if match is None:
                    out.append(_drift(rid, base, "present", None))
                    continue
                names = _names(base)
                was_view = envoy_view(route, functools.partial(_key, keys_b, ns))
                if route.retry_on is None and route.retry_attempts is None:
                    # No retry policy before: App Mesh may apply its default one, so (as drift
                    # does) retries are not compared; the translation lists the default change.
                    was_view = replace(was_view, retries=None)
                now_view = envoy_view(match, functools.partial(_key, keys_a, ns))
                for path, left, right in route_differences(was_view, now_view, names):
                    if left != right:
                        out.append(_drift(rid, path, left, right))
    return out, []


def _key(keys: ClusterKeys, namespace: str, cluster: str) -> str:
    return keys.key(cluster, namespace)


def _names(base: str) -> FieldNames:
    return FieldNames(weight=lambda k: f"{base}.route[{k}].weight", target=lambda k: f"{base}.route[{k}]",
                      attempts=f"{base}.retries.attempts", retry_on=f"{base}.retries.retryOn",
                      per_try=f"{base}.retries.perTryTimeout", timeout=f"{base}.timeout")


def _drift(rid: ResourceId, path: str, left: object, right: object) -> Drift:
    category, severity = classify(path)
    return Drift(rid, LAYERS, path, left, right, category, severity)


def configured_weights(snapshot: MeshSnapshot, service: str) -> dict[str, float] | None:
    """Destination workload -> configured weight of the service's splitting route (Istio
    VirtualService subsets, or App Mesh weighted targets for a service still on App Mesh)."""
    from .identity import identities

    ns, _, name = service.partition("/")
    ref = ServiceRef(ns, name)
    found = snapshot.service(ref)
    if found is None:
        return None
    ids = identities(snapshot)
    resolve = resolver(snapshot, ids)
    for vs in ic.virtual_services_for(snapshot, found):
        for route in ic.http_routes(vs):
            if len(route.destinations) < 2:
                continue
            rules = ic.pick_resources(snapshot, ic.DESTINATION_RULE)
            out: dict[str, float] = {}
            for d in route.destinations:
                rule = ic.destination_rule_for(rules, d.host, vs.namespace, ns)
                labels = ic.dr_subsets(rule).get(d.subset or "") if rule is not None and d.subset else {}
                for w in resolve(d.host, labels) or []:
                    out[w] = out.get(w, 0.0) + d.weight / max(1, len(resolve(d.host, labels) or [1]))
            return out or None
    _router, routes = spec.routes(snapshot, ref)
    for am_route in routes:
        targets = am_route.get("targets") or []
        if len(targets) > 1:
            nodes = spec.resources(snapshot, spec.VIRTUAL_NODE)
            out = {}
            for t in targets:
                node = next((n for n in nodes if str(t.get("virtual_node")) in spec.names_of(n)), None)
                if node is not None:
                    key = ids.workload(_node_ref(node))
                    out[key] = float(t.get("weight") or 0)
            return out or None
    return None


def _node_ref(node: ConfigResource) -> WorkloadRef:
    lay = spec.layout(node)
    return WorkloadRef(str(lay.get("mesh") or node.namespace), str(lay.get("aws_name") or node.name))
