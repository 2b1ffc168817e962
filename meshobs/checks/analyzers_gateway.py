"""Gateway analyzers: a Gateway whose selector finds no gateway pods (MSH0237), whose server
port the gateway's Service does not expose (MSH0238), whose TLS credential is missing, in the
wrong namespace, malformed or expired (MSH0239), Gateways serving one certificate on the same
pods (MSH0240); and Gateway API routes whose parentRefs attach nowhere (MSH0241).

An Istio Gateway's selector reaches gateway pods in every namespace, and its
``credentialName`` Secret must live in the namespace of those pods (not the Gateway's). Each
verdict is given only where the input holds what it needs: gateway workloads at all, the
Services of their namespace, the Secrets of their namespace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshobs.catalogue import Category
from meshobs.collectors.k8s_objects import KUBERNETES_GATEWAY
from meshobs.istio_config import GATEWAY, ROOT_NAMESPACE, host_matches, pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, Service
from meshobs.model.gateway import is_gateway

from .base import CouldNotCheck, Finding, Settings, analyzer, finding, memo, now_of
from .inventory import lives_in, pod_labels_everywhere, selects, vouches_for_config, vouches_for_services

SECRET = "Secret"
ROUTE_KINDS = {"HTTPRoute": ("HTTP", "HTTPS"), "GRPCRoute": ("HTTP", "HTTPS"), "TLSRoute": ("TLS",),
               "TCPRoute": ("TCP",), "UDPRoute": ("UDP",)}


def gateway_selector(gw: ConfigResource) -> dict[str, str]:
    sel = gw.spec.get("selector")
    return {str(k): str(v) for k, v in sel.items()} if isinstance(sel, Mapping) else {}


def selector_text(selector: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(every gateway)"


def holds_gateway_workloads(snapshot: MeshSnapshot) -> bool:
    """Does the input hold the gateway deployments (so "selects no pod" can be judged)?"""
    def build(s: MeshSnapshot) -> bool:
        labels = [ls for sets in pod_labels_everywhere(s).values() for ls in sets]
        selectors = [sel for gw in pick_resources(s, GATEWAY) if (sel := gateway_selector(gw))]
        return lives_in(s, ROOT_NAMESPACE) or any(
            is_gateway(ls, selected=any(selects(sel, ls) for sel in selectors)) for ls in labels)
    return memo(snapshot, "gateway.holds_workloads", build)


@dataclass(frozen=True)
class GatewayPods:
    """The gateway pods a selector picks: their namespaces and label sets."""

    namespaces: tuple[str, ...]
    label_sets: tuple[Mapping[str, Any], ...]


def gateway_pods(snapshot: MeshSnapshot, selector: Mapping[str, str]) -> GatewayPods:
    found = [(ns, ls) for ns, sets in sorted(pod_labels_everywhere(snapshot).items()) for ls in sets
             if selector and selects(selector, ls)]
    return GatewayPods(tuple(dict.fromkeys(ns for ns, _ in found)), tuple(ls for _, ls in found))


def _servers(gw: ConfigResource) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for i, server in enumerate(gw.spec.get("servers") or ()):
        if isinstance(server, Mapping):
            yield i, server


def server_port(server: Mapping[str, Any]) -> int | None:
    port = (server.get("port") or {}).get("number") if isinstance(server.get("port"), Mapping) else None
    return int(str(port)) if str(port or "").isdigit() else None


@analyzer("config.gateway_selector", Category.CONFIG, ("Gateway", "Workload", "Pod", "Service"), ("MSH0237",),
          mesh=Mesh.ISTIO)
def gateway_selector_matches_nothing(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A Gateway selects gateway pods by labels no pod carries, so its servers listen nowhere."""
    gateways = [gw for gw in pick_resources(snapshot, GATEWAY) if gateway_selector(gw)]
    if gateways and not holds_gateway_workloads(snapshot):
        raise CouldNotCheck("the input holds no gateway deployments or pods, so no Gateway selector could be matched")
    for gw in gateways:
        selector = gateway_selector(gw)
        if gateway_pods(snapshot, selector).label_sets:
            continue
        gateway_like = sorted({f"{k}={v}" for sets in pod_labels_everywhere(snapshot).values() for ls in sets
                               if is_gateway(ls) for k, v in ls.items() if k in ("istio", "app")})
        yield finding("MSH0237", "config.gateway_selector", resource=gw, at="spec.selector",
                      gateway=f"{gw.namespace}/{gw.name}", selector=selector_text(selector),
                      evidence={"selector": selector, "gateway_pod_labels_seen": gateway_like},
                      hint="fix the selector to the labels of the gateway deployment (kubectl get pods -A -l "
                           "istio --show-labels); istioctl analyze reports IST0101")


def _service_ports(snapshot: MeshSnapshot, pods: GatewayPods) -> tuple[list[Service], set[int] | None]:
    """The Services selecting the gateway pods, and the ports they send to (None: a named target
    port that only the pods' container ports could resolve)."""
    services = [s for s in snapshot.services if s.origin and s.namespace in pods.namespaces and s.selector
                and any(selects(s.selector, ls) for ls in pods.label_sets)]
    ports: set[int] = set()
    for s in services:
        for p in s.port_specs:
            if p.protocol != "TCP":
                continue
            if p.listens_on is None:
                return services, None
            ports.add(p.listens_on)
        if not s.port_specs:
            ports.update(s.ports)
    return services, ports


@analyzer("config.gateway_port", Category.CONFIG, ("Gateway", "Workload", "Pod", "Service"), ("MSH0238",),
          mesh=Mesh.ISTIO)
def gateway_port_not_exposed(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A Gateway server listens on a port that no Service port of the gateway pods targets, so
    clients cannot reach it (istioctl analyze's IST0162)."""
    judged = 0
    for gw in pick_resources(snapshot, GATEWAY):
        pods = gateway_pods(snapshot, gateway_selector(gw))
        if not pods.label_sets or not all(vouches_for_services(snapshot, ns) for ns in pods.namespaces):
            continue
        services, ports = _service_ports(snapshot, pods)
        if not services or ports is None:
            continue
        judged += 1
        for i, server in _servers(gw):
            port = server_port(server)
            if port is None or port in ports:
                continue
            yield finding("MSH0238", "config.gateway_port", resource=gw, at=f"spec.servers[{i}].port.number",
                          gateway=f"{gw.namespace}/{gw.name}", port=port,
                          selector=selector_text(gateway_selector(gw)),
                          service_ports=", ".join(str(p) for p in sorted(ports)),
                          evidence={"port": port, "services": sorted(str(s.ref) for s in services),
                                    "target_ports": sorted(ports)},
                          hint=f"listen on one of the target ports ({', '.join(map(str, sorted(ports)))}) or add "
                               f"a port targeting {port} to the gateway's Service; istioctl analyze reports IST0162")
    if not judged and pick_resources(snapshot, GATEWAY):
        raise CouldNotCheck("the input holds no Service of the gateway pods, so no Gateway port could be checked")


# -- TLS credentials ---------------------------------------------------------------------------
CERT_KEYS = ("tls.crt", "cert")
KEY_KEYS = ("tls.key", "key")
CA_KEYS = ("ca.crt", "cacert")


def _secret(snapshot: MeshSnapshot, namespace: str, name: str) -> ConfigResource | None:
    index = memo(snapshot, "gateway.secrets", lambda s: {(r.namespace, r.name): r for r in pick_resources(s, SECRET)})
    return index.get((namespace, name))


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def credential_problem(snapshot: MeshSnapshot, namespace: str, name: str, mode: str) -> str | None:
    """What is wrong with credential ``name`` for gateway pods in ``namespace``; None if usable.
    Raises LookupError when the input does not hold that namespace's Secrets."""
    secret = _secret(snapshot, namespace, name)
    if secret is None:
        elsewhere = sorted(r.namespace for r in pick_resources(snapshot, SECRET) if r.name == name)
        if elsewhere:
            return (f"is in namespace {', '.join(elsewhere)}, not in {namespace} where the gateway pods run "
                    "(Istio reads it only there)")
        if not vouches_for_config(snapshot, SECRET, namespace):
            raise LookupError(namespace)
        return f"does not exist in namespace {namespace}"
    keys = set(secret.spec.get("keys") or ())
    certs: Mapping[str, Any] = secret.spec.get("certificates") or {}
    cert_key = next((k for k in CERT_KEYS if k in keys), None)
    if cert_key is None or not any(k in keys for k in KEY_KEYS):
        return f"holds no certificate and key (keys {', '.join(sorted(keys)) or 'none'}; Istio reads tls.crt/tls.key " \
               "or cert/key)"
    facts = certs.get(cert_key) or {}
    if facts.get("error"):
        return f"holds a {cert_key} that is not a usable certificate ({facts['error']})"
    now = now_of(snapshot)
    not_after, not_before = _parse_time(facts.get("not_after")), _parse_time(facts.get("not_before"))
    if not_after is not None and not_after <= now:
        return f"holds a certificate that expired on {not_after.date().isoformat()}"
    if not_before is not None and not_before > now:
        return f"holds a certificate not valid before {not_before.date().isoformat()}"
    if mode == "MUTUAL" and not any(k in keys for k in CA_KEYS):
        ca = _secret(snapshot, namespace, f"{name}-cacert")
        if ca is None or not any(k in set(ca.spec.get("keys") or ()) for k in CA_KEYS):
            return "holds no CA certificate to verify clients with (MUTUAL needs ca.crt in it or a Secret " \
                   f"{name}-cacert)"
    return None


def _tls_servers(gw: ConfigResource) -> Iterator[tuple[int, str, str]]:
    """(server index, credentialName, mode) of the servers terminating TLS with a Secret."""
    for i, server in _servers(gw):
        tls = server.get("tls")
        if not isinstance(tls, Mapping) or not tls.get("credentialName"):
            continue
        mode = str(tls.get("mode") or "SIMPLE").upper()
        if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
            yield i, str(tls["credentialName"]), mode


@analyzer("config.gateway_credential", Category.CONFIG, ("Gateway", "Secret", "Workload", "Pod"), ("MSH0239",),
          mesh=Mesh.ISTIO)
def gateway_credential(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A Gateway's credentialName Secret is missing, in another namespace than the gateway pods,
    lacks a certificate or key, or holds an expired certificate (istioctl analyze's IST0161)."""
    judged, unjudged = 0, set()
    for gw in pick_resources(snapshot, GATEWAY):
        servers = list(_tls_servers(gw))
        if not servers:
            continue
        pods = gateway_pods(snapshot, gateway_selector(gw))
        if not pods.namespaces:
            unjudged.add(f"Gateway {gw.namespace}/{gw.name} (its pods are not in the input)")
            continue
        for i, credential, mode in servers:
            for namespace in pods.namespaces:
                try:
                    problem = credential_problem(snapshot, namespace, credential, mode)
                except LookupError:
                    unjudged.add(f"Secrets of {namespace}")
                    continue
                judged += 1
                if problem is None:
                    continue
                yield finding("MSH0239", "config.gateway_credential", resource=gw,
                              at=f"spec.servers[{i}].tls.credentialName", gateway=f"{gw.namespace}/{gw.name}",
                              server=f"#{i}", credential=f"{namespace}/{credential}", problem=problem,
                              evidence={"credential": credential, "pods_namespace": namespace, "mode": mode},
                              hint=f"create or renew Secret {credential} in namespace {namespace} (kubectl create "
                                   "secret tls ... --cert --key); istioctl analyze reports IST0161")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input does not hold {', '.join(sorted(unjudged))}")


def _certificate(server: Mapping[str, Any]) -> str | None:
    tls = server.get("tls")
    if not isinstance(tls, Mapping):
        return None
    if tls.get("credentialName"):
        return f"credentialName {tls['credentialName']}"
    if tls.get("serverCertificate") and tls.get("privateKey"):
        return f"serverCertificate {tls['serverCertificate']}"
    return None


@analyzer("config.gateway_duplicate_certificate", Category.CONFIG, ("Gateway",), ("MSH0240",), mesh=Mesh.ISTIO)
def gateway_duplicate_certificate(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Two Gateways on the same gateway pods serve the same certificate: HTTP/2 clients reuse a
    connection across the hosts it covers and hit the other Gateway's routes (404)."""
    by_cert: dict[tuple[str, str], list[tuple[ConfigResource, int]]] = defaultdict(list)
    for gw in pick_resources(snapshot, GATEWAY):
        for i, server in _servers(gw):
            cert = _certificate(server)
            if cert is not None:
                by_cert[(selector_text(gateway_selector(gw)), cert)].append((gw, i))
    for (_selector, cert), uses in sorted(by_cert.items()):
        names = sorted({f"{gw.namespace}/{gw.name}" for gw, _ in uses})
        if len(names) < 2:
            continue
        reported: set[str] = set()
        for gw, i in uses:
            name = f"{gw.namespace}/{gw.name}"
            if name in reported:
                continue
            reported.add(name)
            yield finding("MSH0240", "config.gateway_duplicate_certificate", resource=gw, at=f"spec.servers[{i}].tls",
                          gateways=", ".join(names), credential=cert,
                          evidence={"certificate": cert, "gateways": names},
                          hint="serve the hosts from one Gateway, or give each Gateway its own certificate; "
                               "istioctl analyze reports IST0138")


# -- Gateway API ---------------------------------------------------------------------------------
def _listeners(gw: ConfigResource) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, lst) for i, lst in enumerate(gw.spec.get("listeners") or ()) if isinstance(lst, Mapping)]


def _hostnames_meet(route_hosts: list[str], listener_host: str | None) -> bool:
    if not listener_host or not route_hosts:
        return True
    return any(h == listener_host or host_matches(listener_host, h) or host_matches(h, listener_host)
               for h in route_hosts)


def _why_not(listener: Mapping[str, Any], kind: str, route: ConfigResource, gw: ConfigResource) -> str | None:
    protocol = str(listener.get("protocol") or "").upper()
    if protocol not in ROUTE_KINDS[kind]:
        return f"is a {protocol} listener ({kind} attaches to {'/'.join(ROUTE_KINDS[kind])} listeners)"
    allowed = listener.get("allowedRoutes")
    allowed = allowed if isinstance(allowed, Mapping) else {}
    kinds = [str(k.get("kind")) for k in allowed.get("kinds") or () if isinstance(k, Mapping)]
    if kinds and kind not in kinds:
        return f"allows only {', '.join(kinds)}"
    namespaces = allowed.get("namespaces")
    frm = str((namespaces.get("from") if isinstance(namespaces, Mapping) else None) or "Same")
    if frm == "Same" and route.namespace != gw.namespace:
        return f"admits routes from its own namespace ({gw.namespace}) only"
    hosts = [str(h) for h in route.spec.get("hostnames") or ()]
    if not _hostnames_meet(hosts, str(listener["hostname"]) if listener.get("hostname") else None):
        return f"serves hostname {listener.get('hostname')} only"
    return None


def _parent_problem(snapshot: MeshSnapshot, route: ConfigResource, kind: str, ref: Mapping[str, Any]
                    ) -> tuple[str, str] | None:
    """(parent as written, why it does not attach), or None; LookupError when not judgeable."""
    group = str(ref["group"]) if ref.get("group") is not None else "gateway.networking.k8s.io"
    pkind = str(ref.get("kind") or "Gateway")
    ns = str(ref.get("namespace") or route.namespace)
    name = str(ref.get("name") or "")
    parent = f"{pkind} {ns}/{name}"
    if group == "" and pkind == "Service":  # GAMMA: a route for the mesh, attached to a Service
        if not vouches_for_services(snapshot, ns):
            raise LookupError(ns)
        found = any(s.origin and s.namespace == ns and s.name == name for s in snapshot.services)
        return None if found else (parent, "does not exist")
    if group != "gateway.networking.k8s.io" or pkind != "Gateway":
        raise LookupError(ns)
    gws = {(g.namespace, g.name): g for g in pick_resources(snapshot, KUBERNETES_GATEWAY)}
    gw = gws.get((ns, name))
    if gw is None:
        if not vouches_for_config(snapshot, KUBERNETES_GATEWAY, ns):
            raise LookupError(ns)
        return parent, "does not exist"
    listeners = _listeners(gw)
    if ref.get("sectionName"):
        section = str(ref["sectionName"])
        listeners = [(i, lst) for i, lst in listeners if str(lst.get("name")) == section]
        parent += f" listener {section}"
        if not listeners:
            return parent, "has no listener of that name"
    if ref.get("port") is not None:
        listeners = [(i, lst) for i, lst in listeners if str(lst.get("port")) == str(ref["port"])]
        if not listeners:
            return parent, f"has no listener on port {ref['port']}"
    reasons = [why for _i, lst in listeners if (why := _why_not(lst, kind, route, gw)) is not None]
    if listeners and len(reasons) == len(listeners):
        return parent, "admits it on no listener: " + "; ".join(sorted(set(reasons)))
    return None


@analyzer("config.route_parent", Category.CONFIG, ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute",
                                                   "KubernetesGateway", "Service"), ("MSH0241",), mesh=Mesh.ISTIO)
def route_parent_not_found(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A Gateway API route names a parent Gateway (or Service) that does not exist, has no such
    listener, or whose listeners do not admit it (protocol, kind, namespace, hostname)."""
    judged, unjudged = 0, set()
    for kind in ROUTE_KINDS:
        for route in pick_resources(snapshot, kind):
            for j, ref in enumerate(route.spec.get("parentRefs") or ()):
                if not isinstance(ref, Mapping):
                    continue
                try:
                    problem = _parent_problem(snapshot, route, kind, ref)
                except LookupError as exc:
                    unjudged.add(str(exc))
                    continue
                judged += 1
                if problem is None:
                    continue
                parent, reason = problem
                yield finding("MSH0241", "config.route_parent", resource=route, at=f"spec.parentRefs[{j}]",
                              kind=kind, route=f"{route.namespace}/{route.name}", parent=parent, reason=reason,
                              evidence={"parent_ref": dict(ref)},
                              hint="fix the parentRef (name, namespace, sectionName, port) or the listener's "
                                   "allowedRoutes; kubectl get " + kind.lower() + " -o yaml shows the route's "
                                   "status conditions (Accepted=False)")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no Gateways or Services in {', '.join(sorted(unjudged))}")
