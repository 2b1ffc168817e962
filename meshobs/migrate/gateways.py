"""Virtual gateways and their gateway routes -> an Istio Gateway and one VirtualService bound to it.

The Gateway selects the gateway's pods by the VirtualGateway's ``podSelector`` (redeploy the
gateway as an Istio gateway with the same labels) and opens one server per listener. Its routes
become one VirtualService per gateway, ordered like App Mesh orders them (``priority``, then
the most specific match), because Istio merges several VirtualServices of one gateway host in
no guaranteed order.

App Mesh rewrites by default, Istio does not, so the defaults are written out: the matched
prefix is replaced by ``/`` (``rewrite.prefix.defaultPrefix: ENABLED``) and the Host header by
the target virtual service's name (``rewrite.hostname.defaultTargetHostname: ENABLED``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshobs.model import ConfigResource

from .inventory import Inventory, dns_label, layout, raw
from .ledger import Ledger, describe
from .manifest import NETWORKING, Manifest, manifest
from .policies import port_of
from .routes import http_match

_SERVER_PROTOCOLS = {"http": "HTTP", "http2": "HTTP2", "grpc": "GRPC"}
_BODIES = ("httpRoute", "http2Route", "grpcRoute")


def _listener_extras(gw: ConfigResource, i: int, lst: Mapping[str, Any], ledger: Ledger) -> None:
    if lst.get("healthCheck"):
        ledger.untranslatable(gw, f"spec.listeners[{i}].healthCheck", "Istio gateways have no health check per "
                              "listener", "a readinessProbe on the gateway Deployment")
    if lst.get("connectionPool"):
        ledger.untranslatable(gw, f"spec.listeners[{i}].connectionPool", "an Istio Gateway server has no "
                              "connection limits", "DestinationRule connectionPool on the hosts the gateway calls")
    if (lst.get("tls") or {}).get("certificate"):
        ledger.untranslatable(gw, f"spec.listeners[{i}].tls.certificate", "App Mesh certificate sources (ACM, "
                              "file, SDS) do not carry over", "a kubernetes.io/tls Secret named in the server's "
                              "tls.credentialName, in the gateway's namespace")
    if (lst.get("tls") or {}).get("validation"):
        ledger.untranslatable(gw, f"spec.listeners[{i}].tls.validation", "client certificate validation has no "
                              "direct counterpart", "server tls.mode MUTUAL with a credentialName holding ca.crt")


def _gateway(gw: ConfigResource, inventory: Inventory, ledger: Ledger) -> Manifest:
    spec = raw(gw)
    selector = (spec.get("podSelector") or {}).get("matchLabels")
    ledger.used(gw, "spec.awsName", "spec.meshRef", "spec.podSelector", "spec.namespaceSelector",
                "spec.gatewayRouteSelector")
    if spec.get("logging"):
        ledger.untranslatable(gw, "spec.logging", "per-gateway access log files are not an Istio resource field",
                              "a Telemetry resource with accessLogging for the gateway's pods")
    if not selector:
        selector = {"istio": "ingressgateway"}
        ledger.changed(gw, "spec.podSelector", "no podSelector: the Gateway selects Istio's default ingress "
                       "gateway", "set the Gateway's selector to your gateway Deployment's labels")
    client = ((spec.get("backendDefaults") or {}).get("clientPolicy") or {}).get("tls") or {}
    if client:
        # Istio's gateway calls in-mesh hosts with mTLS on its own (auto mTLS): nothing to write.
        ledger.used(gw, "spec.backendDefaults.clientPolicy.tls.enforce", "spec.backendDefaults.clientPolicy.tls.ports",
                    "spec.backendDefaults.clientPolicy.tls.mode")
        for key in ("certificate", "validation"):
            if client.get(key):
                ledger.untranslatable(gw, f"spec.backendDefaults.clientPolicy.tls.{key}", "the gateway uses "
                                      "Istio's workload certificate to call mesh services",
                                      "DestinationRule tls (ISTIO_MUTUAL) on the hosts it calls")
    servers = []
    for i, lst in enumerate(x for x in spec.get("listeners") or [] if isinstance(x, Mapping)):
        port, protocol = port_of(lst)
        if port is None:
            continue
        ledger.used(gw, f"spec.listeners[{i}].portMapping")
        server: dict[str, Any] = {"port": {"number": port, "name": f"{protocol}-{port}",
                                           "protocol": _SERVER_PROTOCOLS.get(protocol, "HTTP")}, "hosts": ["*"]}
        if (lst.get("tls") or {}).get("mode") in ("STRICT", "PERMISSIVE"):
            server["port"]["protocol"] = "HTTPS"
            server["tls"] = {"mode": "SIMPLE", "credentialName": f"{dns_label(gw.name)}-tls"}
            ledger.used(gw, f"spec.listeners[{i}].tls.mode")
        _listener_extras(gw, i, lst, ledger)
        servers.append(server)
    return manifest(NETWORKING, "Gateway", dns_label(gw.name), inventory.namespace_of(gw),
                    {"selector": {str(k): str(v) for k, v in selector.items()}, "servers": servers}, [describe(gw)])


def _rewrite(body: Mapping[str, Any], prefix: str | None, target_host: str, route: ConfigResource, base: str,
             ledger: Ledger) -> dict[str, Any]:
    rewrite = (body.get("action") or {}).get("rewrite") or {}
    out: dict[str, Any] = {}
    if rewrite:
        ledger.used(route, f"{base}.action.rewrite")
    pre = rewrite.get("prefix") or {}
    if pre.get("value"):
        out["uri"] = str(pre["value"])
    elif (rewrite.get("path") or {}).get("exact"):
        out["uri"] = str(rewrite["path"]["exact"])
    elif prefix not in (None, "/") and pre.get("defaultPrefix", "ENABLED") == "ENABLED":
        out["uri"] = "/"
    if (rewrite.get("hostname") or {}).get("defaultTargetHostname", "ENABLED") == "ENABLED":
        out["authority"] = target_host
    return out


def _authority(hostname: Mapping[str, Any]) -> dict[str, Any] | None:
    if hostname.get("exact"):
        return {"exact": str(hostname["exact"])}
    if hostname.get("suffix"):
        return {"regex": f".*{re.escape(str(hostname['suffix']))}(:[0-9]+)?"}
    return None


def _route(route: ConfigResource, inventory: Inventory,
           ledger: Ledger) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    spec = raw(route)
    ledger.used(route, "spec.awsName", "spec.meshRef", "spec.virtualGatewayRef", "spec.priority")
    for key in _BODIES:
        body = spec.get(key)
        if not isinstance(body, Mapping):
            continue
        base = f"spec.{key}"
        protocol = {"httpRoute": "http", "http2Route": "http2", "grpcRoute": "grpc"}[key]
        target = (body.get("action") or {}).get("target") or {}
        tl = layout(route).get("gateway_target") or {}
        vs = inventory.virtual_service(str(tl.get("virtual_service") or ""), tl.get("namespace"), route)
        if vs is None:
            ledger.untranslatable(route, base, "the target virtual service is not in the input",
                                  "add its configuration and re-run")
            return None
        host = inventory.service_host(vs)
        ledger.used(route, f"{base}.action.target")
        if inventory.router(vs) is not None:
            ledger.changed(route, f"{base}.action.target", "the target's router (weights, retries, timeouts) "
                           "applies to sidecar callers only: the Istio gateway sends straight to the target's host",
                           "VirtualService delegation, or bind the service's VirtualService to the gateway too")
        match_body = dict(body)
        match = dict(body.get("match") or {})
        hostname = match.pop("hostname", None)
        match_body["match"] = match
        conditions = http_match(match_body, protocol, route, base, ledger)
        authority = _authority(hostname) if isinstance(hostname, Mapping) else None
        if hostname is not None:
            ledger.used(route, f"{base}.match.hostname")
        if authority:
            conditions = [{**(conditions[0] if conditions else {}), "authority": authority}]
        dest: dict[str, Any] = {"host": host}
        if target.get("port"):
            dest["port"] = {"number": int(target["port"])}
        http: dict[str, Any] = {"name": dns_label(route.name.rsplit("/", 1)[-1])}
        if conditions:
            http["match"] = conditions
        rewrite = _rewrite(body, match.get("prefix"), host, route, base, ledger)
        if rewrite:
            http["rewrite"] = rewrite
        http["route"] = [{"destination": dest}]
        text = str(match.get("prefix") or (match.get("path") or {}).get("exact") or "")
        order = (spec.get("priority") is None, spec.get("priority") or 0, -len(text), route.name)
        return order, http
    return None


def _selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    wanted = (selector or {}).get("matchLabels") if isinstance(selector, Mapping) else None
    return all(labels.get(k) == v for k, v in (wanted or {}).items())


def _gateway_of(route: ConfigResource, inventory: Inventory) -> tuple[str, str, str] | None:
    """The virtual gateway a gateway route belongs to: the one it names (API exports:
    ``virtualGatewayName``; CRDs: ``virtualGatewayRef``), else the only one whose
    ``gatewayRouteSelector`` accepts it (the one in its namespace when several do)."""
    gateways = inventory.of_kind("VirtualGateway")
    named = layout(route).get("virtual_gateway") or (raw(route).get("virtualGatewayRef") or {}).get("name")
    if named:
        hit = [g for g in gateways if named in (g.name, layout(g).get("aws_name"))]
        return hit[0].key if hit else None
    fits = [g for g in gateways if _selects(raw(g).get("gatewayRouteSelector"), dict(route.labels))]
    if len(fits) > 1:
        fits = [g for g in fits if g.namespace == route.namespace] or fits
    return fits[0].key if len(fits) == 1 else None


def gateways(inventory: Inventory, ledger: Ledger) -> list[Manifest]:
    out: list[Manifest] = []
    routes = inventory.of_kind("GatewayRoute")
    for gw in inventory.of_kind("VirtualGateway"):
        gateway = _gateway(gw, inventory, ledger)
        out.append(gateway)
        mine = [r for r in routes if _gateway_of(r, inventory) == gw.key]
        translated = sorted((x for x in (_route(r, inventory, ledger) for r in mine) if x), key=lambda x: x[0])
        if not translated:
            continue
        spec = {"hosts": ["*"], "gateways": [f"{gateway.namespace}/{gateway.name}"],
                "http": [http for _order, http in translated]}
        out.append(manifest(NETWORKING, "VirtualService", f"{gateway.name}-routes", gateway.namespace, spec,
                            [describe(gw), *(describe(r) for r in mine)]))
    return out
