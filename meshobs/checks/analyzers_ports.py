"""Service ports as Istio reads them: the protocol of a port comes from its ``appProtocol``, else
from its name (``http``, ``http-api``, ``grpc-admin``, ``tcp-db``...; Istio's "protocol
selection"). A port that declares none is sniffed (HTTP/1.1, HTTP/2 or TCP, per connection),
which works for clients that speak first and stalls servers that do (MySQL, SMTP).

* MSH0264: a port of a sidecar-meshed Service declares no protocol (IST0118; information, as in
  istioctl, since sniffing usually copes);
* MSH0265: one workload behind several Services that give one port, or one container port,
  different protocols (IST0116 / IST0137): its proxy builds one listener there;
* MSH0266: an ExternalName Service port without a protocol (IST0164): no sniffing there, so it
  is plain TCP.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.model import Mesh, MeshSnapshot, Service, ServicePort, WorkloadRef

from .base import Finding, Settings, analyzer, finding
from .dataplane import NAMESPACE, SIDECAR, SYSTEM_NAMESPACES, is_gateway_of, members, members_of
from .scope import Focus, services_in_focus

# What Istio's protocol selection recognises (names are compared in lower case).
PROTOCOLS = frozenset({"http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "udp", "mongo", "mysql",
                       "redis", "http_proxy"})
HTTP = frozenset({"http", "http2", "grpc", "grpc-web", "http_proxy"})
# Kubernetes' standard appProtocol values and the Istio protocol they mean.
APP_PROTOCOLS = {"kubernetes.io/h2c": "http2", "kubernetes.io/ws": "http", "kubernetes.io/wss": "https"}
# Istio's own ports (status, admin, xDS, metrics...): named by the Istio charts, never an app's.
ISTIO_PORTS = range(15000, 15100)
# Well-known ports of protocols where the server speaks first: sniffing waits for a client that
# waits for the server (FTP, SSH, SMTP, POP3, IMAP, submission, MySQL, NATS).
SERVER_FIRST = {21: "FTP", 22: "SSH", 25: "SMTP", 110: "POP3", 143: "IMAP", 587: "SMTP", 3306: "MySQL",
                4222: "NATS"}


def declared_protocol(port: ServicePort) -> str | None:
    """The protocol a Service port declares to Istio (``appProtocol`` first, then the name's
    prefix before the first ``-``), lower case; None when it declares none."""
    if port.app_protocol:
        value = port.app_protocol.lower()
        value = APP_PROTOCOLS.get(value, value)
        if value in PROTOCOLS:
            return value
    name = port.name.lower()
    prefix = name.split("-", 1)[0]
    return prefix if prefix in PROTOCOLS else None


def is_http(port: ServicePort) -> bool | None:
    """True/False when the port declares an HTTP (or not) protocol, None when it is sniffed."""
    protocol = declared_protocol(port)
    return None if protocol is None else protocol in HTTP


def _label(port: ServicePort) -> str:
    return f"named {port.name}" if port.name else "no name"


def _consequence(port: ServicePort) -> str:
    lowered = port.name.lower()
    near = next((p for p in sorted(PROTOCOLS, key=len, reverse=True)
                 if lowered.startswith(p) and lowered[len(p):len(p) + 1] in ("_", ".", "")), None)
    if port.port in SERVER_FIRST and port.protocol == "TCP":
        return (f"{SERVER_FIRST[port.port]} servers speak first, and Istio's protocol sniffing waits for the client: "
                "connections stall until the detection times out; name it tcp-... (or mysql-...)")
    if near and lowered != near:
        return (f"Istio reads the protocol from the name up to the first '-', so {port.name} is not {near} to it and "
                "it sniffs the protocol instead; name it " + near + "-...")
    return ("Istio sniffs each connection's protocol (HTTP/1.1, HTTP/2 or else TCP); declaring it makes routing, "
            "retries and request metrics certain")


def _sidecar_services(snapshot: MeshSnapshot, focus: Focus | None = None) -> list[Service]:
    """Declared Services with at least one workload running a sidecar (gateways excepted: their
    Gateway servers, not their Service's port names, say the protocols); with a focus, those of
    its services only."""
    declared = [s for s in services_in_focus(focus, snapshot.services) if s.origin and s.external_name is None]
    namespaces = {s.namespace for s in snapshot.services}
    if focus is None:
        found = [m for ns in namespaces for m in members(snapshot, ns) or []]
    else:  # the members of the focus's workloads only, as members() would list them
        found = [m for m in members_of(snapshot, {w for s in declared for w in s.workloads}).values()
                 if m.namespace in namespaces]
    modes: dict[WorkloadRef, str | None] = {}
    for m in found:
        if m.workload is not None:
            modes[m.workload] = None if is_gateway_of(snapshot, m.labels) else m.mode
    return [s for s in declared if any(modes.get(w) == SIDECAR for w in s.workloads)]


@analyzer("config.port_protocol", Category.CONFIG, ("Service", "Workload", "Pod", NAMESPACE, "Gateway"),
          ("MSH0264", "MSH0265", "MSH0266"), mesh=Mesh.ISTIO)
def port_protocol(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
    """Service ports whose protocol Istio has to guess: a meshed Service's port without a
    protocol name or appProtocol (IST0118), an ExternalName's (IST0164), and one workload's ports
    given different protocols by different Services (IST0116 / IST0137)."""
    for svc in _sidecar_services(snapshot, focus):
        if svc.namespace in SYSTEM_NAMESPACES:
            continue
        for i, port in enumerate(svc.port_specs):
            if port.port in ISTIO_PORTS or port.protocol == "UDP" or declared_protocol(port) is not None:
                continue
            yield finding("MSH0264", "config.port_protocol", f"Service {svc.ref}", located=svc.location,
                          at=f"spec.ports[{i}]", services=[svc.ref], port=port.port, port_name=_label(port),
                          service_name=str(svc.ref), consequence=_consequence(port),
                          evidence={"port": port.port, "name": port.name, "app_protocol": port.app_protocol},
                          hint="name the port <protocol>[-<suffix>] (http-api, grpc, tcp-db) or set appProtocol; "
                               "istioctl analyze reports IST0118")
    for svc in services_in_focus(focus, snapshot.services):
        if svc.external_name is None or not svc.origin or svc.namespace in SYSTEM_NAMESPACES:
            continue
        for i, port in enumerate(svc.port_specs):
            if declared_protocol(port) is not None or port.protocol == "UDP":
                continue
            yield finding("MSH0266", "config.port_protocol", f"Service {svc.ref}", located=svc.location,
                          at=f"spec.ports[{i}]", services=[svc.ref], port=port.port, port_name=_label(port),
                          service_name=str(svc.ref), external_name=svc.external_name,
                          evidence={"port": port.port, "name": port.name, "external_name": svc.external_name},
                          hint="name the port after its protocol (https-..., http-..., tcp-...) or set appProtocol; "
                               "istioctl analyze reports IST0164")
    yield from _conflicting_ports(snapshot, focus)


def _conflicting_ports(snapshot: MeshSnapshot, focus: Focus | None) -> Iterable[Finding]:
    declared = {s.ref: s for s in snapshot.services if s.origin and s.port_specs}
    for w in snapshot.workloads:
        if focus is not None and not focus.touches(w.services):
            continue  # its finding touches (some of) its Services
        services = [declared[s] for s in w.services if s in declared]
        if len(services) < 2:
            continue
        by_port: dict[int, dict[str, str]] = defaultdict(dict)
        by_target: dict[int, dict[str, str]] = defaultdict(dict)
        for svc in services:
            for port in svc.port_specs:
                protocol = declared_protocol(port) or "undeclared"
                by_port[port.port][str(svc.ref)] = protocol
                if port.listens_on is not None:
                    by_target[port.listens_on][f"{svc.ref}:{port.port}"] = protocol
        problems = [f"give port {p} different protocols ({_pairs(found)})"
                    for p, found in sorted(by_port.items()) if len(set(found.values())) > 1]
        problems += [f"send container port {t} different protocols ({_pairs(found)})"
                     for t, found in sorted(by_target.items())
                     if len(set(found.values())) > 1 and len({k.split(":")[0] for k in found}) > 1]
        if not problems:
            continue
        yield finding("MSH0265", "config.port_protocol", f"Workload {w.ref}", located=w.location, at="spec.template",
                      services=[s.ref for s in services], workload=str(w.ref),
                      service_names=", ".join(sorted(str(s.ref) for s in services)),
                      problem="; ".join(dict.fromkeys(problems)),
                      evidence={"services": sorted(str(s.ref) for s in services),
                                "ports": {str(p): f for p, f in sorted(by_port.items()) if len(f) > 1}},
                      hint="declare one protocol per port across the Services selecting these pods; istioctl "
                           "analyze reports IST0116 / IST0137")


def _pairs(found: dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(found.items()))
