"""App Mesh configuration -> Istio manifests, and the ledger of every App Mesh field.

:func:`translate` is pure: ConfigResources in (any shape the App Mesh collectors read: CRDs,
describe-* exports, create-* inputs), :class:`Translation` out. The mapping, construct by
construct (docs/migrate-appmesh.md has the table):

=====================  ========================================================================
App Mesh               Istio
=====================  ========================================================================
VirtualService         VirtualService (hosts: its name) routing like its router (:mod:`.routes`)
VirtualRouter, Route   the VirtualService's ``http`` / ``tcp`` routes
VirtualNode            a destination (host, subset: :mod:`.destinations`), its DestinationRule
                       policies, PeerAuthentication, Sidecar (:mod:`.policies`)
listener TLS           PeerAuthentication; caller client TLS -> DestinationRule ``tls``
VirtualGateway         Gateway; GatewayRoute -> VirtualService bound to it (:mod:`.gateways`)
Mesh                   namespace injection labels; ``egressFilter`` -> Sidecar ``REGISTRY_ONLY``
=====================  ========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshobs.model import ConfigResource

from .destinations import Destination, node_key, plan
from .gateways import gateways
from .inventory import Inventory, Node, dns_label, raw
from .ledger import Ledger, describe
from .manifest import NETWORKING, Manifest, manifest
from .policies import destination_rules, peer_authentications, service_entries, sidecars
from .routes import istio_route, ordered

INJECTION_LABEL = "istio-injection"
APPMESH_LABELS = ("appmesh.k8s.aws/sidecarInjectorWebhook",)


@dataclass
class Translation:
    manifests: list[Manifest]
    ledger: Ledger
    inventory: Inventory
    notes: list[str] = field(default_factory=list)  # namespace label changes and the like

    @property
    def resources(self) -> list[ConfigResource]:
        return self.inventory.resources


def _virtual_service(vs: ConfigResource, inventory: Inventory, dests: Mapping[tuple[str, str], Destination],
                     ledger: Ledger) -> Manifest | None:
    ledger.used(vs, "spec.awsName", "spec.meshRef", "spec.provider")
    host = inventory.service_host(vs)
    namespace = inventory.namespace_of(vs)
    router = inventory.router(vs)
    if router is not None:
        ledger.used(router, "spec.awsName", "spec.meshRef", "spec.listeners")
        http: list[dict[str, Any]] = []
        tcp: list[dict[str, Any]] = []
        sources = [describe(vs), describe(router)]
        for holder, route in ordered(inventory.routes(router)):
            if holder.kind == "Route":
                sources.append(describe(holder))
            translated = istio_route(holder, route, inventory, dests, ledger)
            if translated is not None:
                (http if translated[0] == "http" else tcp).append(translated[1])
        spec: dict[str, Any] = {"hosts": [host]}
        if http:
            spec["http"] = http
        if tcp:
            spec["tcp"] = tcp
        return manifest(NETWORKING, "VirtualService", dns_label(vs.name.rsplit("/", 1)[-1]), namespace, spec,
                        sources) if http or tcp else None
    node = inventory.provider_node(vs)
    dest = dests.get(node_key(node)) if node is not None else None
    if node is None or dest is None:
        ledger.untranslatable(vs, "spec.provider", "no provider in the input (or it has no service discovery)",
                              "add the provider's configuration and re-run")
        return None
    if dest.host == host and not dest.subset:
        return None  # callers reach the node's own host: Istio needs no VirtualService
    d: dict[str, Any] = {"host": dest.host, **({"subset": dest.subset} if dest.subset else {})}
    return manifest(NETWORKING, "VirtualService", dns_label(vs.name.rsplit("/", 1)[-1]), namespace,
                    {"hosts": [host], "http": [{"name": "provider", "route": [{"destination": d}],
                                                "timeout": "15s"}]}, [describe(vs), describe(node.resource)])


# Resources no rule reached, by kind: why, and what to add.
_ORPHAN = {
    "Route": ("its virtual router, or a virtual service the router provides, is not in the input: there is no host "
              "to route", "add the VirtualRouter and the VirtualService, then re-run"),
    "VirtualRouter": ("no virtual service in the input is provided by this router: nobody calls it",
                      "add the VirtualService it provides, then re-run"),
    "GatewayRoute": ("its virtual gateway is not in the input (or cannot be told apart)",
                     "add the VirtualGateway (or a virtualGatewayRef), then re-run"),
}
_PROBE = ("an Istio sidecar does not health-check its own application", "a Kubernetes readinessProbe on "
          "the workload's container")


def _node_fields(n: Node, ledger: Ledger) -> None:
    """The virtual node fields that are identity (used), or have no Istio field (listed)."""
    r = n.resource
    ledger.used(r, "spec.awsName", "spec.meshRef", "spec.podSelector", "spec.serviceDiscovery.dns.hostname",
                "spec.serviceDiscovery.awsCloudMap.namespaceName", "spec.serviceDiscovery.awsCloudMap.serviceName")
    spec = raw(r)
    for key in ("responseType", "ipPreference"):
        if (spec.get("serviceDiscovery") or {}).get("dns", {}).get(key):
            ledger.untranslatable(r, f"spec.serviceDiscovery.dns.{key}", "Istio resolves Kubernetes Services "
                                  "through their endpoints", "none needed; for a ServiceEntry, its resolution")
    if (spec.get("serviceDiscovery") or {}).get("awsCloudMap", {}).get("ipPreference"):
        ledger.untranslatable(r, "spec.serviceDiscovery.awsCloudMap.ipPreference", "Istio does not read Cloud Map",
                              "the ServiceEntry's endpoints")
    for i, lst in enumerate(n.listeners):
        ledger.used(r, f"spec.listeners[{i}].portMapping")
        hc = lst.get("healthCheck")
        if isinstance(hc, Mapping):
            probe = _probe(hc, lst)
            ledger.untranslatable(r, f"spec.listeners[{i}].healthCheck", _PROBE[0], f"{_PROBE[1]}: {probe}")
        if lst.get("timeout"):
            ledger.untranslatable(r, f"spec.listeners[{i}].timeout", "a server-side (inbound) timeout has no Istio "
                                  "resource field", "the callers' VirtualService timeout (written from the routes)")
        tls = lst.get("tls") or {}
        if tls.get("certificate"):
            ledger.untranslatable(r, f"spec.listeners[{i}].tls.certificate", "Istio issues workload certificates "
                                  "from its own CA; App Mesh certificate sources (ACM, file, SDS) do not carry over",
                                  "plug your CA into istiod (cacerts Secret, cert-manager istio-csr) or use Istio's "
                                  "SPIRE integration")
        if tls.get("validation"):
            ledger.untranslatable(r, f"spec.listeners[{i}].tls.validation", "Istio validates peers against its "
                                  "own trust domain", "AuthorizationPolicy rules on source principals")
    client = [("spec.backendDefaults.clientPolicy.tls", (spec.get("backendDefaults") or {}).get("clientPolicy"))]
    client += [(f"spec.backends[{i}].virtualService.clientPolicy.tls",
                (b.get("virtualService") or {}).get("clientPolicy")) for i, b in enumerate(spec.get("backends") or [])
               if isinstance(b, Mapping)]
    for path, policy in client:
        tls = (policy or {}).get("tls") or {}
        if tls.get("certificate"):
            ledger.untranslatable(r, f"{path}.certificate", "a client certificate from App Mesh's sources does not "
                                  "carry over", "Istio's workload certificate (ISTIO_MUTUAL)")
        if tls.get("validation"):
            ledger.untranslatable(r, f"{path}.validation", "Istio validates servers against its own trust domain "
                                  "(ISTIO_MUTUAL) or the DestinationRule's caCertificates (SIMPLE)",
                                  "DestinationRule tls.subjectAltNames / caCertificates")
    if spec.get("logging"):
        ledger.untranslatable(r, "spec.logging", "per-workload access log files are not an Istio resource field",
                              "a Telemetry resource with accessLogging (Envoy logs to stdout)")
    if spec.get("backendGroups"):
        ledger.untranslatable(r, "spec.backendGroups", "Istio needs no backend groups", "a Sidecar egress list")


def _probe(hc: Mapping[str, Any], listener: Mapping[str, Any]) -> str:
    port = hc.get("port") or (listener.get("portMapping") or {}).get("port")
    kind = f"httpGet path {hc.get('path') or '/'} port {port}" if str(hc.get("protocol")) in ("http", "http2") \
        else (f"grpc port {port}" if hc.get("protocol") == "grpc" else f"tcpSocket port {port}")
    parts = [kind]
    if hc.get("intervalMillis"):
        parts.append(f"periodSeconds {max(1, round(int(hc['intervalMillis']) / 1000))}")
    if hc.get("timeoutMillis"):
        parts.append(f"timeoutSeconds {max(1, round(int(hc['timeoutMillis']) / 1000))}")
    if hc.get("healthyThreshold"):
        parts.append(f"successThreshold {hc['healthyThreshold']}")
    if hc.get("unhealthyThreshold"):
        parts.append(f"failureThreshold {hc['unhealthyThreshold']}")
    return ", ".join(parts)


def _namespaces(inventory: Inventory, ledger: Ledger) -> tuple[list[Manifest], list[str]]:
    """Injection labels for the namespaces that hold App Mesh workloads (CRDs only)."""
    namespaces = sorted({inventory.namespace_of(r) for r in inventory.resources
                         if inventory.is_crd(r) and r.kind in ("VirtualNode", "VirtualGateway")})
    notes = []
    for mesh in inventory.of_kind("Mesh"):
        ledger.used(mesh, "spec.awsName", "spec.namespaceSelector")
        selector = (raw(mesh).get("namespaceSelector") or {}).get("matchLabels") or {}
        if selector:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
            notes.append(f"mesh {mesh.name}: remove the App Mesh namespace labels ({labels}; "
                         f"{APPMESH_LABELS[0]}) once every workload runs Istio's sidecar")
        if (raw(mesh).get("serviceDiscovery") or {}).get("ipPreference"):
            ledger.untranslatable(mesh, "spec.serviceDiscovery.ipPreference", "Istio picks IP families per Service",
                                  "the Kubernetes Service's ipFamilyPolicy")
    out = [manifest("v1", "Namespace", ns, None, None, [describe(r) for r in inventory.resources
                                                       if inventory.namespace_of(r) == ns and inventory.is_crd(r)],
                    ) for ns in namespaces]
    for m in out:
        m.doc["metadata"]["labels"] = {INJECTION_LABEL: "enabled"}
        m.sources = sorted(m.sources)[:8]
    if namespaces:
        notes.append(f"label {', '.join(namespaces)} with {INJECTION_LABEL}=enabled (namespace-*.yaml) and restart "
                     f"the workloads so Istio's sidecar replaces App Mesh's Envoy")
    return out, notes


def translate(resources: Iterable[ConfigResource], namespace: str | None = None) -> Translation:
    """Translate every App Mesh resource in ``resources`` (others are ignored)."""
    inventory = Inventory(list(resources), namespace)
    ledger = Ledger()
    dests = plan(inventory)
    manifests: list[Manifest] = []
    for vs in inventory.of_kind("VirtualService"):
        m = _virtual_service(vs, inventory, dests, ledger)
        if m is not None:
            manifests.append(m)
    for n in inventory.nodes:
        _node_fields(n, ledger)
    manifests += destination_rules(inventory, dests, ledger)
    manifests += peer_authentications(inventory, ledger)
    manifests += service_entries(inventory, ledger)
    manifests += sidecars(inventory, ledger)
    manifests += gateways(inventory, ledger)
    namespaces, notes = _namespaces(inventory, ledger)
    manifests += namespaces
    for r in inventory.resources:
        if not ledger.touched(r) and raw(r):
            ledger.untranslatable(r, "spec", *_ORPHAN.get(r.kind, ("nothing in the input refers to it", "")))
    ledger.close(inventory.resources)
    seen: dict[str, Manifest] = {}
    for m in manifests:
        if m.filename in seen:  # two App Mesh resources mapped to one Istio name: keep both, renamed
            m.doc["metadata"]["name"] = f"{m.name}-{len(seen)}"
        seen[m.filename] = m
    return Translation(sorted(seen.values(), key=lambda m: m.filename), ledger, inventory, notes)

