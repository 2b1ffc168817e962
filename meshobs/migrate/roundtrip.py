"""The round trip: the translated manifests, read back as Istio configuration, must describe the
routing and TLS the App Mesh resources described. A difference is a :class:`~meshobs.drift.Drift`
(layers ``appmesh-istio``) on the App Mesh resource whose field did not survive.

Reading back goes through the same code as any manifest (:mod:`meshobs.collectors.manifests`
parses the YAML text written to disk, :mod:`meshobs.istio_config` resolves subsets, TLS and
PeerAuthentication scope) and the comparison through drift's common route model
(:func:`meshobs.drift.routes.route_differences`, with the App Mesh CRD paths of
:func:`meshobs.drift.appmesh.route_names`). Destinations meet in one key space, the endpoints a
target selects: the discovery host, plus the pod labels when several nodes share the host
(App Mesh: the node's ``podSelector``; Istio: the DestinationRule subset's labels).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from meshobs import istio_config as ic
from meshobs.collectors.k8s_objects import objects_to_part
from meshobs.collectors.manifests import parse_manifest
from meshobs.drift.appmesh import route_names
from meshobs.drift.compare import Drift, classify
from meshobs.drift.normalise import ResourceId, canonical
from meshobs.drift.routes import RouteView, appmesh_view, istio_view, route_differences
from meshobs.model import ConfigResource, Layer

from .destinations import shared_hosts
from .inventory import Inventory, Node, layout
from .routes import locate, ordered
from .write import manifest_text

LAYERS = "appmesh-istio"
_PEER = {"STRICT": "STRICT", "PERMISSIVE": "PERMISSIVE", "DISABLED": "DISABLE"}


def read_back(translation: Any) -> list[ConfigResource]:
    """The manifests as meshobs reads any manifest file: text -> objects -> ConfigResources."""
    objects: list[tuple[Mapping[str, Any], str]] = []
    for m in translation.manifests:
        docs, _ = parse_manifest(manifest_text(m), m.filename)
        objects.extend((d, m.filename) for d in docs)
    return objects_to_part(objects, Layer.INTENDED).config


def _endpoints(host: str, labels: Mapping[str, str] | None) -> str:
    return host + "|" + ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


Resolver = Callable[[str, Mapping[str, str] | None], list[str] | None]


class Endpoints:
    """Both sides' destinations as endpoint keys: ``host|labels``, or ``host|workloads`` when a
    ``resolver`` knows which workloads the labels select (``verify``: the snapshot's workloads),
    so two spellings of one selection (``{app, version}`` or ``{version}``) meet."""

    def __init__(self, inventory: Inventory, istio: list[ConfigResource], resolver: Resolver | None = None) -> None:
        self.inventory = inventory
        self.shared = {h for h, nodes in shared_hosts(inventory).items() if len(nodes) > 1}
        self.rules = [r for r in istio if r.kind == ic.DESTINATION_RULE]
        self.resolver = resolver

    def key(self, host: str, labels: Mapping[str, str] | None) -> str:
        selected = self.resolver(host, labels) if self.resolver is not None else None
        return f"{host}|{','.join(selected)}" if selected else _endpoints(host, labels)

    def of_node(self, node: Node) -> str:
        if not node.host:
            return f"unaddressable:{node.name}"
        return self.key(node.host, node.labels if node.host in self.shared else None)

    def of_target(self, holder: ConfigResource, target: Mapping[str, Any]) -> str:
        node = self.inventory.node(str(target.get("virtual_node") or ""), target.get("namespace"), holder)
        return self.of_node(node) if node is not None else f"unaddressable:{target.get('virtual_node')}"

    def of_destination(self, key: str, client_namespace: str) -> str:
        host, subset, *_ = key.split("|")
        if not subset:
            return self.key(host, None)
        rule = ic.destination_rule_for(self.rules, host, client_namespace, host.split(".")[1] if "." in host else "")
        labels = ic.dr_subsets(rule).get(subset) if rule is not None else None
        return self.key(host, labels) if labels is not None else f"{host}|unknown subset {subset}"


def _istio_routes(vs: ConfigResource, endpoints: Endpoints) -> list[RouteView]:
    out = []
    for route in canonical(vs)["spec"].get("http") or []:
        view = istio_view(route)
        dests: dict[str, float] = {}
        for key, share in view.destinations.items():
            k = endpoints.of_destination(key, vs.namespace)
            dests[k] = dests.get(k, 0) + share
        out.append(RouteView(dests, view.retries, view.timeout_s, view.name))
    return out


def _catch_all(route: Mapping[str, Any]) -> bool:
    match = route.get("match") or {}
    return not any(v for k, v in match.items() if not (k == "prefix" and v == "/"))


def _pair(route: Mapping[str, Any], index: int, count: int, actual: list[RouteView],
          istio_http: list[Any]) -> RouteView | None:
    """The Istio route an App Mesh route became: the one of the same name; for a catch-all
    route, the Istio route without a match; else the one at the same position when both
    sides have as many routes."""
    for a in actual:
        if a.name and a.name == route.get("name"):
            return a
    if _catch_all(route):
        for a, raw_route in zip(actual, istio_http):
            if not raw_route.get("match"):
                return a
    return actual[index] if count == len(actual) and index < len(actual) else None


def _drift(resource: ConfigResource, path: str, left: Any, right: Any) -> Drift:
    category, severity = classify(path)
    return Drift(ResourceId.of(resource), LAYERS, path, left, right, category, severity)


def _routing(inventory: Inventory, istio: list[ConfigResource], endpoints: Endpoints) -> list[Drift]:
    out: list[Drift] = []
    services = [r for r in istio if r.kind == ic.VIRTUAL_SERVICE and ic.applies_to_sidecars(r)]
    for vs in inventory.of_kind("VirtualService"):
        router = inventory.router(vs)
        routes = [(h, r) for h, r in ordered(inventory.routes(router)) if r.get("protocol") != "tcp"] \
            if router is not None else []
        if not routes:
            continue
        host = inventory.service_host(vs)
        found = next((s for s in services if any(ic.host_matches(h, host) for h in ic.vs_hosts(s))), None)
        if found is None:
            out.append(_drift(vs, "", "present", None))
            continue
        actual = _istio_routes(found, endpoints)
        canonical_http = canonical(found)["spec"].get("http") or []
        for i, (holder, route) in enumerate(routes):
            names = route_names(route)
            got = _pair(route, i, len(routes), actual, canonical_http)
            if got is None:
                out.append(_drift(holder, locate(holder, route)[0], "present", None))
                continue
            want = appmesh_view(route, functools.partial(endpoints.of_target, holder))
            for path, left, right in route_differences(want, got, names):
                if left != right:
                    out.append(_drift(holder, path, left, right))
    return out


def _listener_tls(inventory: Inventory, istio: list[ConfigResource]) -> list[Drift]:
    out: list[Drift] = []
    pas = [r for r in istio if r.kind == ic.PEER_AUTHENTICATION]
    for n in inventory.nodes:
        for i, lst in enumerate(n.listeners):
            mode = (lst.get("tls") or {}).get("mode")
            port = (lst.get("portMapping") or {}).get("port")
            if not mode or n.labels is None:
                continue
            got, _ = ic.peer_auth_mode(pas, n.namespace, n.labels, int(port) if port else None)
            want = _PEER.get(str(mode).upper(), str(mode))
            if got != want:
                out.append(_drift(n.resource, f"spec.listeners[{i}].tls.mode", want, got))
    return out


def _client_tls(inventory: Inventory, istio: list[ConfigResource], hosts_of: Mapping[str, set[str]]) -> list[Drift]:
    out: list[Drift] = []
    rules = [r for r in istio if r.kind == ic.DESTINATION_RULE]
    for vs in inventory.of_kind("VirtualService"):
        for caller, tls in inventory.callers_of(vs):
            if not tls or not tls.get("enforce", True):
                continue
            path = _client_path(caller, vs, inventory)
            for host in sorted(hosts_of.get(str(vs.key), set())):
                rule = ic.destination_rule_for(rules, host, caller.namespace, host.split(".")[1] if "." in host else "",
                                               caller.labels or {})
                ports = tls.get("ports") or [None]
                for port in ports:
                    mode = ic.dr_tls_mode(rule, port) if rule is not None else None
                    if mode not in ("ISTIO_MUTUAL", "MUTUAL", "SIMPLE"):
                        out.append(_drift(caller.resource, path, f"TLS to {host}", mode or "no TLS setting"))
    return out


def _client_path(caller: Node, vs: ConfigResource, inventory: Inventory) -> str:
    for i, b in enumerate(layout(caller.resource).get("backends") or []):
        found = inventory.virtual_service(str(b.get("virtual_service") or ""), b.get("namespace"), caller.resource)
        if found is not None and found.key == vs.key and b.get("client_tls"):
            return f"spec.backends[{i}].virtualService.clientPolicy.tls.enforce"
    return "spec.backendDefaults.clientPolicy.tls.enforce"


def round_trip(translation: Any) -> list[Drift]:
    """Every routing or TLS difference between the App Mesh input and the translated output."""
    return compare_config(translation.inventory, read_back(translation))


def compare_config(inventory: Inventory, istio: list[ConfigResource], resolver: Resolver | None = None
                   ) -> list[Drift]:
    """Routing and TLS of App Mesh resources vs Istio resources (``migrate verify`` compares the
    configuration before and after a cut-over with it)."""
    from .destinations import plan
    from .policies import target_hosts

    endpoints = Endpoints(inventory, istio, resolver)
    dests = plan(inventory)
    hosts_of = {str(vs.key): target_hosts(inventory, vs, dests) for vs in inventory.of_kind("VirtualService")}
    drifts = _routing(inventory, istio, endpoints) + _listener_tls(inventory, istio) + \
        _client_tls(inventory, istio, hosts_of)
    return sorted(drifts, key=lambda d: (d.resource, d.path))
