"""Virtual node policies -> DestinationRules, PeerAuthentications, ServiceEntries, Sidecars.

* **DestinationRule** per destination host: subsets per virtual node (see :mod:`.destinations`);
  each node's listener ``outlierDetection`` (``maxServerErrors`` -> ``consecutive5xxErrors``,
  ``interval``, ``baseEjectionDuration`` -> ``baseEjectionTime``, ``maxEjectionPercent``) and
  ``connectionPool`` (http ``maxConnections``/``maxPendingRequests`` -> ``tcp.maxConnections``/
  ``http.http1MaxPendingRequests``; http2/grpc ``maxRequests`` -> ``http.http2MaxRequests``; tcp
  ``maxConnections``) on the node's subset (or the whole host), per port when a node has several
  listeners; TLS origination (``ISTIO_MUTUAL`` inside the mesh, ``SIMPLE`` with SNI to a host
  outside it) when a caller's client policy enforces TLS to the host.
* **PeerAuthentication** per node whose listeners set TLS: ``STRICT``/``PERMISSIVE``/``DISABLED``
  -> ``STRICT``/``PERMISSIVE``/``DISABLE``, per port when the listeners differ.
* **ServiceEntry** for hosts Istio cannot find in Kubernetes: a Cloud Map or custom DNS name
  (``MESH_INTERNAL``; its pods selected by the node's ``podSelector`` when it has one) and nodes
  outside the cluster (``MESH_EXTERNAL``, resolved by DNS).
* **Sidecar** per node with backends: its egress hosts are its backends (App Mesh configures a
  node only for the virtual services it lists); ``egressFilter: DROP_ALL`` becomes
  ``outboundTrafficPolicy: REGISTRY_ONLY``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from meshobs.collectors.appmesh_config import duration_ms

from .destinations import Destination, node_key, shared_hosts
from .durations import duration_text
from .inventory import Inventory, Node, dns_label, in_cluster, layout, raw
from .ledger import Ledger, describe
from .manifest import NETWORKING, SECURITY, Manifest, manifest

_PROTOCOLS = {"http": "HTTP", "http2": "HTTP2", "grpc": "GRPC", "tcp": "TCP"}
DEFAULT_PORT = {"number": 80, "name": "http-80", "protocol": "HTTP"}  # App Mesh listeners say nothing
_PEER_MODES = {"STRICT": "STRICT", "PERMISSIVE": "PERMISSIVE", "DISABLED": "DISABLE"}


def port_of(listener: Mapping[str, Any]) -> tuple[int | None, str]:
    pm = listener.get("portMapping") or {}
    port = pm.get("port")
    return (int(port) if port is not None else None), str(pm.get("protocol") or "http")


def service_ports(listeners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for lst in listeners:
        port, protocol = port_of(lst)
        if port is not None:
            out.append({"number": port, "name": f"{protocol}-{port}", "protocol": _PROTOCOLS.get(protocol, "TCP")})
    return out


def outlier_detection(od: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if od.get("maxServerErrors") is not None:
        out["consecutive5xxErrors"] = int(od["maxServerErrors"])
    for src, dst in (("interval", "interval"), ("baseEjectionDuration", "baseEjectionTime")):
        ms = duration_ms(od.get(src))
        if ms is not None:
            out[dst] = duration_text(ms)
    if od.get("maxEjectionPercent") is not None:
        out["maxEjectionPercent"] = int(od["maxEjectionPercent"])
    return out


def connection_pool(pool: Mapping[str, Any]) -> dict[str, Any]:
    tcp: dict[str, Any] = {}
    http: dict[str, Any] = {}
    for protocol, limits in pool.items():
        if not isinstance(limits, Mapping):
            continue
        if limits.get("maxConnections") is not None:
            tcp["maxConnections"] = int(limits["maxConnections"])
        if limits.get("maxPendingRequests") is not None:
            http["http1MaxPendingRequests"] = int(limits["maxPendingRequests"])
        if limits.get("maxRequests") is not None and protocol in ("http2", "grpc"):
            http["http2MaxRequests"] = int(limits["maxRequests"])
    return {k: v for k, v in (("tcp", tcp), ("http", http)) if v}


def _node_policy(node: Node, ledger: Ledger) -> dict[str, Any]:
    """The traffic policy a node's listeners ask of its callers (per port when several)."""
    per_port: list[dict[str, Any]] = []
    for i, lst in enumerate(node.listeners):
        port, _ = port_of(lst)
        policy: dict[str, Any] = {}
        if isinstance(lst.get("outlierDetection"), Mapping):
            policy["outlierDetection"] = outlier_detection(lst["outlierDetection"])
            ledger.used(node.resource, f"spec.listeners[{i}].outlierDetection")
        if isinstance(lst.get("connectionPool"), Mapping):
            policy["connectionPool"] = connection_pool(lst["connectionPool"])
            ledger.used(node.resource, f"spec.listeners[{i}].connectionPool")
            ledger.changed(node.resource, f"spec.listeners[{i}].connectionPool",
                           "App Mesh applies these limits in the node's own Envoy; Istio applies them in every "
                           "caller's Envoy, so the limits multiply by the number of calling proxies",
                           "divide the limits by the number of caller replicas if they protect the application")
        if policy and port is not None:
            per_port.append({"port": {"number": port}, **policy})
    if len(per_port) == 1:
        return {k: v for k, v in per_port[0].items() if k != "port"}
    return {"portLevelSettings": per_port} if per_port else {}


def _client_tls(inventory: Inventory, ledger: Ledger) -> dict[str, tuple[bool, list[int]]]:
    """Host -> (some caller enforces TLS to it, the ports it named) from the callers' policies."""
    from .destinations import plan

    dests = plan(inventory)
    out: dict[str, tuple[bool, list[int]]] = {}
    for vs in inventory.of_kind("VirtualService"):
        hosts = target_hosts(inventory, vs, dests)
        for _caller, tls in inventory.callers_of(vs):
            if not tls or not tls.get("enforce", True):
                continue
            for host in hosts:
                prior = out.get(host, (False, []))
                out[host] = (True, sorted(set(prior[1]) | set(tls.get("ports") or [])))
    for n in inventory.nodes:
        lay, spec = layout(n.resource), n.resource.spec
        if lay.get("backend_defaults_client_tls"):
            ledger.used(n.resource, "spec.backendDefaults.clientPolicy.tls.enforce",
                        "spec.backendDefaults.clientPolicy.tls.ports", "spec.backendDefaults.clientPolicy.tls.mode")
        for i, b in enumerate(spec.get("backends") or []):
            if isinstance(b, Mapping) and b.get("virtualService", {}).get("clientPolicy"):
                base = f"spec.backends[{i}].virtualService.clientPolicy.tls"
                ledger.used(n.resource, f"{base}.enforce", f"{base}.ports", f"{base}.mode")
    return out


def target_hosts(inventory: Inventory, vs: Any, dests: Mapping[tuple[str, str], Destination]) -> set[str]:
    hosts: set[str] = set()
    router = inventory.router(vs)
    if router is not None:
        for holder, route in inventory.routes(router):
            for t in route.get("targets") or []:
                node = inventory.node(str(t.get("virtual_node") or ""), t.get("namespace"), holder)
                if node is not None and node_key(node) in dests:
                    hosts.add(dests[node_key(node)].host)
    node = inventory.provider_node(vs)
    if node is not None and node_key(node) in dests:
        hosts.add(dests[node_key(node)].host)
    return hosts


def _outside(nodes: list[Node]) -> bool:
    """A host whose nodes select no pods and is no Kubernetes Service: it lives outside the mesh."""
    return all(n.labels is None for n in nodes) and not any(n.host and in_cluster(n.host) for n in nodes)


def destination_rules(inventory: Inventory, plan: Mapping[tuple[str, str], Destination],
                      ledger: Ledger) -> list[Manifest]:
    tls = _client_tls(inventory, ledger)
    out: list[Manifest] = []
    for host, nodes in sorted(shared_hosts(inventory).items()):
        spec: dict[str, Any] = {"host": host}
        top: dict[str, Any] = {}
        subsets = []
        for n in nodes:
            dest = plan.get(node_key(n))
            policy = _node_policy(n, ledger)
            if dest is not None and dest.subset:
                subset: dict[str, Any] = {"name": dest.subset, "labels": dict(n.labels or {})}
                if policy:
                    subset["trafficPolicy"] = policy
                subsets.append(subset)
            elif policy:
                top.update(policy)
        enforced, ports = tls.get(host, (False, []))
        if enforced:
            mode = {"mode": "SIMPLE", "sni": host} if _outside(nodes) else {"mode": "ISTIO_MUTUAL"}
            if ports:
                levels = top.setdefault("portLevelSettings", [])
                for p in ports:
                    entry = next((x for x in levels if x["port"]["number"] == p), None)
                    if entry is None:
                        entry = {"port": {"number": p}}
                        levels.append(entry)
                    entry["tls"] = dict(mode)
            else:
                top["tls"] = mode
        if top:
            spec["trafficPolicy"] = top
        if subsets:
            spec["subsets"] = subsets
        if len(spec) == 1:
            continue  # nothing to say about this host
        namespace = host.split(".")[1] if in_cluster(host) else nodes[0].namespace
        out.append(manifest(NETWORKING, "DestinationRule", dns_label(host.split(".")[0] if in_cluster(host) else host),
                            namespace, spec, [describe(n.resource) for n in nodes]))
    return out


def peer_authentications(inventory: Inventory, ledger: Ledger) -> list[Manifest]:
    out: list[Manifest] = []
    for n in inventory.nodes:
        modes: dict[int, str] = {}
        for i, lst in enumerate(n.listeners):
            mode = (lst.get("tls") or {}).get("mode")
            port, _ = port_of(lst)
            if not mode or port is None:
                continue
            if n.labels is None:
                ledger.untranslatable(n.resource, f"spec.listeners[{i}].tls.mode",
                                      "the node selects no pods (no podSelector), so no PeerAuthentication can "
                                      "select its workloads", "a namespace-wide PeerAuthentication")
                continue
            ledger.used(n.resource, f"spec.listeners[{i}].tls.mode")
            modes[port] = _PEER_MODES.get(str(mode).upper(), "PERMISSIVE")
        if not modes:
            continue
        spec: dict[str, Any] = {"selector": {"matchLabels": dict(n.labels or {})}}
        if len(set(modes.values())) == 1:
            spec["mtls"] = {"mode": next(iter(modes.values()))}
        else:
            spec["mtls"] = {"mode": "PERMISSIVE"}
            spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in sorted(modes.items())}
        out.append(manifest(SECURITY, "PeerAuthentication", dns_label(n.name), n.namespace, spec,
                            [describe(n.resource)]))
    return out


def service_entries(inventory: Inventory, ledger: Ledger) -> list[Manifest]:
    out: list[Manifest] = []
    node_hosts = shared_hosts(inventory)
    for host, nodes in sorted(node_hosts.items()):
        if in_cluster(host):
            continue
        ports = [p for n in nodes for p in service_ports(n.listeners)]
        ports = list({p["number"]: p for p in ports}.values()) or [DEFAULT_PORT]
        spec: dict[str, Any] = {"hosts": [host], "ports": ports}
        if _outside(nodes):
            spec.update(location="MESH_EXTERNAL", resolution="DNS")
        else:
            labels = {k: v for n in nodes for k, v in (n.labels or {}).items()
                      if all((m.labels or {}).get(k) == v for m in nodes)}
            spec.update(location="MESH_INTERNAL", resolution="STATIC", workloadSelector={"labels": labels})
        for n in nodes:
            if n.cloud_map and n.cloud_map.get("attributes"):
                ledger.untranslatable(n.resource, "spec.serviceDiscovery.awsCloudMap.attributes",
                                      "Istio does not read Cloud Map instance attributes",
                                      "DestinationRule subsets over pod labels")
        out.append(manifest(NETWORKING, "ServiceEntry", dns_label(host), nodes[0].namespace, spec,
                            [describe(n.resource) for n in nodes]))
    for vs in inventory.of_kind("VirtualService"):
        host = inventory.service_host(vs)
        router = inventory.router(vs)
        if in_cluster(host) or host in node_hosts or router is None:
            continue
        ports = service_ports([x for x in raw(router).get("listeners") or [] if isinstance(x, dict)])
        spec = {"hosts": [host], "ports": ports or [DEFAULT_PORT],
                "location": "MESH_INTERNAL", "resolution": "DNS"}
        out.append(manifest(NETWORKING, "ServiceEntry", dns_label(host), inventory.namespace_of(vs), spec,
                            [describe(vs), describe(router)]))
        ledger.changed(vs, "spec.awsName", "a virtual service name that is not a Kubernetes Service: callers must "
                       "still resolve it (App Mesh required the same)", "Istio DNS proxying "
                       "(ISTIO_META_DNS_CAPTURE / ISTIO_META_DNS_AUTO_ALLOCATE) or a Kubernetes Service of that name")
    return out


def sidecars(inventory: Inventory, ledger: Ledger) -> list[Manifest]:
    """A Sidecar per node that lists backends (and the mesh's egress filter)."""
    mesh_drop = any((m.spec.get("egressFilter") or {}).get("type") == "DROP_ALL" for m in inventory.of_kind("Mesh"))
    for m in inventory.of_kind("Mesh"):
        if m.spec.get("egressFilter"):
            ledger.used(m, "spec.egressFilter")
    out: list[Manifest] = []
    by_namespace: dict[str, list[str]] = defaultdict(list)
    for n in inventory.nodes:
        hosts = []
        for i, b in enumerate(layout(n.resource).get("backends") or []):
            vs = inventory.virtual_service(str(b.get("virtual_service") or ""), b.get("namespace"), n.resource)
            host = inventory.service_host(vs) if vs is not None else str(b.get("virtual_service") or "")
            if host:
                hosts.append(f"*/{host}")
            if n.labels is not None:
                for key in ("virtualServiceRef", "virtualServiceName", "virtualServiceARN"):
                    ledger.used(n.resource, f"spec.backends[{i}].virtualService.{key}")
        if not hosts:
            continue
        if n.labels is None:
            ledger.untranslatable(n.resource, "spec.backends", "the node selects no pods (no podSelector), so no "
                                  "Sidecar can narrow its egress", "a namespace-wide Sidecar")
            continue
        spec: dict[str, Any] = {"workloadSelector": {"labels": dict(n.labels)},
                                "egress": [{"hosts": [*sorted(set(hosts)), "istio-system/*"]}]}
        if mesh_drop:
            spec["outboundTrafficPolicy"] = {"mode": "REGISTRY_ONLY"}
        by_namespace[n.namespace].append(n.name)
        out.append(manifest(NETWORKING, "Sidecar", dns_label(n.name), n.namespace, spec, [describe(n.resource)]))
    if mesh_drop:
        for ns in sorted({n.namespace for n in inventory.nodes}):
            out.append(manifest(NETWORKING, "Sidecar", "default", ns,
                                {"egress": [{"hosts": ["*/*"]}], "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                                [describe(m) for m in inventory.of_kind("Mesh")]))
    return out
