"""App Mesh VirtualRouters (live or intended) vs the routes their callers' Envoys hold.

A VirtualRouter's routes reach a sidecar through the virtual services it provides: every
VirtualService whose provider is the router names a host (its ``awsName``, e.g.
``cart-service.shop.svc.cluster.local``), and App Mesh gives each caller's egress route
configuration a virtual host whose domains name it. Its routes send to
``cds_egress_<mesh>_<virtualNode>_<protocol>_<port>`` clusters, one per weighted target
(:func:`meshobs.collectors.appmesh_names.target_of_cluster`).

Per router route (from the collector's common layout ``spec.meshobs.routes``), paired with the
Envoy route of the same name (App Mesh names them after the route), else by position when the
counts agree, both sides are put in the common route model (:mod:`.routes`) and compared there:
target weights as percentages of their sum, ``maxRetries``, ``perRetryTimeout``, the retry
events (as Envoy ``retry_on`` conditions) and ``timeout.perRequest`` (App Mesh's default, like
Envoy's, is 15 s). A route without a retry policy is not compared for retries: App Mesh may
apply its default retry policy to it. Paths are the canonical CRD paths
(``spec.routes[NAME].httpRoute.action.weightedTargets[NODE].weight``), so one field drifting
in two layer pairs reads the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from meshobs.collectors.appmesh_names import parse_cluster_name, parse_node_id
from meshobs.model import ConfigResource, HttpRoute, Proxy, thaw

from .normalise import ResourceId
from .routes import FieldNames, appmesh_view, envoy_view, route_differences

See = Callable[[ResourceId, str, Any, str, Any], None]
ROUTE_KEYS = {"http": "httpRoute", "http2": "http2Route", "grpc": "grpcRoute", "tcp": "tcpRoute"}


def _layout(r: ConfigResource) -> dict[str, Any]:
    value = thaw(r.spec.get("meshobs")) if r.spec else None
    return value if isinstance(value, dict) else {}


def _hosts(vs: ConfigResource) -> set[str]:
    m = _layout(vs)
    names = {vs.name, f"{vs.name}.{vs.namespace}.svc.cluster.local", str(m.get("aws_name") or "")}
    return {n for n in names if n}


def _target_key(t: Mapping[str, Any]) -> str:
    # The canonical CRD form keys weighted targets as normalise._node_ref does: name[.namespace].
    return str(t.get("virtual_node", "")) + (f".{t['namespace']}" if t.get("namespace") else "")


def _routes_for(proxy: Proxy, hosts: set[str]) -> list[list[HttpRoute]]:
    groups: dict[tuple[str, str], list[HttpRoute]] = defaultdict(list)
    for route in proxy.routes:
        domains = {d.rsplit(":", 1)[0] if d.rsplit(":", 1)[-1].isdigit() else d for d in route.domains}
        if domains & hosts:
            groups[(route.route_config, route.virtual_host)].append(route)
    return [groups[k] for k in sorted(groups)]


def _pair(expected: list[dict[str, Any]], actual: list[HttpRoute]) -> list[tuple[dict[str, Any], HttpRoute]] | None:
    by_name = {a.name: a for a in actual if a.name}
    named = [(e, by_name[e["name"]]) for e in expected if e.get("name") in by_name]
    if len(named) == len(expected) == len(actual):
        return named
    if len(expected) == len(actual):
        ordered = sorted(expected, key=lambda e: (e.get("priority") is None, e.get("priority") or 0))
        return list(zip(ordered, actual))
    return None


def route_names(route: Mapping[str, Any]) -> FieldNames:
    """The canonical CRD paths of one App Mesh route's fields (shared with ``migrate``)."""
    base = f"spec.routes[{route.get('name', '')}].{ROUTE_KEYS.get(str(route.get('protocol')), 'httpRoute')}"
    return FieldNames(weight=lambda k: f"{base}.action.weightedTargets[{k}].weight",
                      target=lambda k: f"{base}.action.weightedTargets[{k}]",
                      attempts=f"{base}.retryPolicy.maxRetries", retry_on=f"{base}.retryPolicy.retryEvents",
                      per_try=f"{base}.retryPolicy.perRetryTimeout", timeout=f"{base}.timeout.perRequest")


def _appmesh_proxy(proxy: Proxy) -> bool:
    """An App Mesh Envoy: its node id names a virtual node or gateway, or (node id unknown) its
    clusters are App Mesh's ``cds_...`` ones."""
    if proxy.node_id:
        return parse_node_id(proxy.node_id) is not None
    return any(parse_cluster_name(c.name) is not None for c in proxy.clusters)


def _node_of_cluster(cluster: str) -> str:
    parsed = parse_cluster_name(cluster)
    return parsed.virtual_node if parsed else cluster


def _route_fields(route: dict[str, Any], act: HttpRoute, node_names: Mapping[str, str]
                  ) -> Iterable[tuple[str, Any, Any]]:
    targets = [t for t in route.get("targets") or [] if isinstance(t, Mapping)]
    aws = {_target_key(t): node_names.get(_target_key(t), str(t.get("virtual_node", ""))) for t in targets}
    return route_differences(appmesh_view(route, _target_key), envoy_view(act, _node_of_cluster),
                             route_names(route), lambda key, node: aws.get(key, key) == node)


def compare_appmesh(resources: Sequence[ConfigResource], proxies: Sequence[Proxy], see: See) -> None:
    """Feed ``see`` one observation per (router field, proxy routing to the router's services)."""
    appmesh = [r for r in resources if str(r.mesh) == "appmesh"]
    routers = [r for r in appmesh if r.kind == "VirtualRouter"]
    if not routers:
        return
    node_names: dict[tuple[str, str], str] = {}
    for vn in (r for r in appmesh if r.kind == "VirtualNode"):
        aws = str(_layout(vn).get("aws_name") or vn.name)
        node_names[(vn.namespace, vn.name)] = aws
    # Only App Mesh's Envoys hold what a router says: in a migration an Istio sidecar reaches the
    # same virtual service through its own (Istio) routes, which no App Mesh router shaped.
    with_routes = [p for p in proxies if p.routes and _appmesh_proxy(p)]
    for router in routers:
        layout = _layout(router)
        expected = [r for r in layout.get("routes") or [] if isinstance(r, dict)]
        if not expected:
            continue
        hosts: set[str] = set()
        for vs in (r for r in appmesh if r.kind == "VirtualService" and r.namespace == router.namespace):
            provider = _layout(vs).get("provider") or {}
            if isinstance(provider, Mapping) and provider.get("virtual_router") == router.name:
                hosts |= _hosts(vs)
        if not hosts:
            continue
        names = {f"{k[1]}" + ("" if k[0] == router.namespace else f".{k[0]}"): v for k, v in node_names.items()}
        names.update({f"{k[1]}.{k[0]}": v for k, v in node_names.items()})
        names.update({k[1]: v for k, v in node_names.items() if k[0] == router.namespace})
        rid = ResourceId.of(router)
        for proxy in with_routes:
            for actual in _routes_for(proxy, hosts):
                pairs = _pair(expected, actual)
                see(rid, "spec.routes", len(expected), proxy.id, len(expected) if pairs else len(actual))
                for exp, act in pairs or []:
                    for path, want, got in _route_fields(exp, act, names):
                        see(rid, path, want, proxy.id, got)
