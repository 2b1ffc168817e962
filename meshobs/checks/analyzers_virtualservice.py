"""VirtualService analyzers beyond hosts and subsets: delegation (MSH0228), destination ports
(MSH0229, MSH0230), hosts a bound Gateway does not serve (MSH0231), VirtualServices merged on
one gateway with a rule taking every request (MSH0232) and JWT-claim routing without a
RequestAuthentication (MSH0233).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import (
    GATEWAY,
    MESH_GATEWAY,
    VIRTUAL_SERVICE,
    exported_to,
    gateway_key,
    host_matches,
    pick_resources,
    vs_destinations,
    vs_hosts,
)
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .analyzers_gateway import gateway_pods, gateway_selector, server_port
from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .config_vs import _catch_all
from .inventory import (
    declared_service,
    selects,
    service_entries_for,
    services_of_hosts,
    touched_by,
    visible_entries,
    vouches_for_config,
)
from .meshconfig import root_namespace

REQUEST_AUTHENTICATION = "RequestAuthentication"
CLAIM_PREFIX = "@request.auth.claims"


def _name(r: ConfigResource) -> str:
    return f"{r.namespace}/{r.name}"


# -- delegation --------------------------------------------------------------------------------
@analyzer("config.delegate", Category.CONFIG, ("VirtualService", "Service"), ("MSH0228",), mesh=Mesh.ISTIO)
def delegate_not_found(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A VirtualService delegates to a VirtualService that does not exist, has hosts (so Istio
    does not treat it as a delegate) or is not exported to the delegating namespace."""
    index = {(vs.namespace, vs.name): vs for vs in pick_resources(snapshot, VIRTUAL_SERVICE)}
    judged, unjudged = 0, set()
    for vs in index.values():
        for i, rule in enumerate(vs.spec.get("http") or ()):
            ref = rule.get("delegate") if isinstance(rule, Mapping) else None
            if not isinstance(ref, Mapping) or not ref.get("name"):
                continue
            key = (str(ref.get("namespace") or vs.namespace), str(ref["name"]))
            target = index.get(key)
            if target is None and not vouches_for_config(snapshot, VIRTUAL_SERVICE, key[0]):
                unjudged.add(key[0])
                continue
            judged += 1
            if target is None:
                reason = "does not exist"
            elif target.spec.get("hosts"):
                reason = "has hosts (a delegate must have none; Istio treats it as an ordinary VirtualService)"
            elif not exported_to(target, vs.namespace):
                reason = f"is not exported to namespace {vs.namespace}"
            else:
                continue
            yield finding("MSH0228", "config.delegate", resource=vs, at=f"spec.http[{i}].delegate",
                          services=touched_by(snapshot, vs), virtual_service=_name(vs),
                          delegate=f"{key[0]}/{key[1]}", reason=reason,
                          evidence={"delegate": f"{key[0]}/{key[1]}", "exists": target is not None},
                          hint="point delegate at a VirtualService without hosts, exported to this namespace")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no VirtualServices of {', '.join(sorted(unjudged))}")


# -- destination ports ---------------------------------------------------------------------------
def host_ports(snapshot: MeshSnapshot, host: str, namespace: str) -> tuple[int, ...] | None:
    """The ports ``host`` has as seen from ``namespace`` (a declared Service's, else the visible
    ServiceEntries'); None when the input does not define the host."""
    svc = declared_service(snapshot, host)
    if svc is not None and svc.ports:
        return tuple(sorted(set(svc.ports)))
    entries = visible_entries(service_entries_for(snapshot, host), namespace)
    ports = {int(str((p or {}).get("number"))) for se in entries for p in se.spec.get("ports") or ()
             if isinstance(p, Mapping) and str(p.get("number") or "").isdigit()}
    return tuple(sorted(ports)) if ports else None


def _bound_gateways(vs: ConfigResource) -> list[str]:
    return [str(g) for g in vs.spec.get("gateways") or () if str(g) != MESH_GATEWAY]


def _gateway_ports(snapshot: MeshSnapshot, vs: ConfigResource) -> set[int] | None:
    """The ports of the servers of the Gateways the VirtualService binds to; None when one of
    them is not in the input."""
    index = {(gw.namespace, gw.name): gw for gw in pick_resources(snapshot, GATEWAY)}
    ports: set[int] = set()
    for ref in _bound_gateways(vs):
        gw = index.get(gateway_key(ref, vs.namespace))
        if gw is None:
            return None
        ports |= {p for s in gw.spec.get("servers") or () if isinstance(s, Mapping) and (p := server_port(s))}
    return ports


@analyzer("config.destination_port", Category.CONFIG, ("VirtualService", "Gateway", "ServiceEntry", "Service"),
          ("MSH0229", "MSH0230"), mesh=Mesh.ISTIO)
def destination_port(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A destination names a port its host does not have, or names none where the host has
    several and the port the request arrived on is not one of them (istioctl analyze's IST0112)."""
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        own_ports = [host_ports(snapshot, h, vs.namespace) for h in vs_hosts(vs)]
        for d in vs_destinations(vs):
            ports = host_ports(snapshot, d.host, vs.namespace)
            if ports is None or "*" in d.host:
                continue
            listed = ", ".join(map(str, ports))
            if d.port is not None:
                if d.port not in ports:
                    yield finding("MSH0230", "config.destination_port", resource=vs, at=f"{d.path}.port.number",
                                  services=services_of_hosts(snapshot, [d.host]), virtual_service=_name(vs),
                                  port=d.port, host=d.host, ports=listed,
                                  evidence={"port": d.port, "host_ports": list(ports)},
                                  hint=f"route to one of ports {listed}; istioctl analyze reports IST0101")
                continue
            if len(ports) < 2 or not d.path.startswith("spec.http"):
                continue
            consequence = _ambiguity(snapshot, vs, d.host, ports, own_ports)
            if consequence is None:
                continue
            yield finding("MSH0229", "config.destination_port", resource=vs, at=f"{d.path}.host",
                          services=services_of_hosts(snapshot, [d.host]), virtual_service=_name(vs), host=d.host,
                          ports=listed, consequence=consequence, evidence={"host_ports": list(ports)},
                          hint="add port: {number: N} to the destination; istioctl analyze reports IST0112")


def _ambiguity(snapshot: MeshSnapshot, vs: ConfigResource, host: str, ports: tuple[int, ...],
               own_ports: list[tuple[int, ...] | None]) -> str | None:
    """Why a destination without a port goes wrong, or None when the proxy's choice is safe.

    Envoy sends a portless destination to the port the request arrived on (the gateway's
    server port, or the sidecar's listener: a port of the VirtualService's own host)."""
    if _bound_gateways(vs):
        listening = _gateway_ports(snapshot, vs)
        if listening is None:
            return "the gateway sends requests to the port they arrived on, which may not be one of them"
        missing = sorted(listening - set(ports))
        if missing:
            return (f"the gateway sends requests arriving on port {', '.join(map(str, missing))} to that port, "
                    "which it does not have (503 NR)")
    if not _bound_gateways(vs) or MESH_GATEWAY in (vs.spec.get("gateways") or ()):
        if host in vs_hosts(vs) or any(p is None for p in own_ports):
            return None
        arriving = {p for ps in own_ports if ps for p in ps}
        missing = sorted(arriving - set(ports))
        if missing:
            return (f"sidecars send requests arriving on port {', '.join(map(str, missing))} to that port, which it "
                    "does not have (503 NR)")
    return None


# -- hosts of the bound Gateways -------------------------------------------------------------------
def _server_hosts(gw: ConfigResource, vs_namespace: str) -> list[str]:
    """The hosts a Gateway's servers accept from VirtualServices of ``vs_namespace``."""
    out = []
    for server in gw.spec.get("servers") or ():
        for h in (server.get("hosts") or ()) if isinstance(server, Mapping) else ():
            ns, _, host = str(h).rpartition("/")
            if ns in ("", "*") or (ns == "." and vs_namespace == gw.namespace) or ns == vs_namespace:
                out.append(host.lower())
    return out


def _meets(a: str, b: str) -> bool:
    return a == b or host_matches(a, b) or host_matches(b, a)


@analyzer("config.gateway_host", Category.CONFIG, ("VirtualService", "Gateway", "Service"), ("MSH0231",),
          mesh=Mesh.ISTIO)
def host_not_in_gateway(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A VirtualService binds a host to a Gateway none of whose servers accept that host (or
    accept it only from other namespaces), so the gateway never routes it (IST0132)."""
    index = {(gw.namespace, gw.name): gw for gw in pick_resources(snapshot, GATEWAY)}
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        for j, ref in enumerate(vs.spec.get("gateways") or ()):
            gw = index.get(gateway_key(str(ref), vs.namespace)) if str(ref) != MESH_GATEWAY else None
            if gw is None:
                continue
            accepted = _server_hosts(gw, vs.namespace)
            for i, h in enumerate(vs.spec.get("hosts") or ()):
                host = str(h).lower()
                if any(_meets(host, a) for a in accepted):
                    continue
                yield finding("MSH0231", "config.gateway_host", resource=vs, at=f"spec.hosts[{i}]",
                              services=touched_by(snapshot, vs), virtual_service=_name(vs), host=host,
                              gateway=_name(gw), gateway_hosts=", ".join(sorted(set(accepted))) or "no host from "
                              f"namespace {vs.namespace}",
                              evidence={"host": host, "gateway": _name(gw), "gateway_ref": f"spec.gateways[{j}]",
                                        "accepted_hosts": sorted(set(accepted))},
                              hint="add the host to a server of the Gateway (hosts: [\"ns/host\"]) or fix the "
                                   "VirtualService's host; istioctl analyze reports IST0132")


# -- VirtualServices merged on one gateway ---------------------------------------------------------
def _takes_all(vs: ConfigResource) -> bool:
    return any(isinstance(rule, Mapping) and (not rule.get("match") or any(_catch_all(m) for m in rule["match"]))
               for rule in vs.spec.get("http") or ())


@analyzer("config.gateway_virtualservices", Category.CONFIG, ("VirtualService", "Service"), ("MSH0232",),
          mesh=Mesh.ISTIO)
def competing_gateway_virtualservices(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Several VirtualServices bind one host to one gateway and one of them has a rule taking
    every request: Istio merges them in creation order, so whether the others' rules are ever
    reached is not decided by the configuration."""
    groups: dict[tuple[tuple[str, str], str], list[ConfigResource]] = defaultdict(list)
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        for ref in _bound_gateways(vs):
            for host in vs_hosts(vs):
                groups[(gateway_key(ref, vs.namespace), host)].append(vs)
    for ((gw_ns, gw_name), host), members in sorted(groups.items()):
        members = sorted({vs.key: vs for vs in members}.values(), key=lambda v: (v.namespace, v.name))
        catch_all = [vs for vs in members if _takes_all(vs)]
        if len(members) < 2 or not catch_all:
            continue
        names = [_name(vs) for vs in members]
        yield finding("MSH0232", "config.gateway_virtualservices", resource=catch_all[0], at="spec.http",
                      services=touched_by(snapshot, catch_all[0]), virtual_services=", ".join(names), host=host,
                      gateway=f"{gw_ns}/{gw_name}",
                      evidence={"virtual_services": names, "taking_every_request": [_name(v) for v in catch_all]},
                      hint="keep one VirtualService per host and gateway, or give every rule a match except in "
                           "one; Istio's guidance: split a host's routes only with delegation")


# -- JWT claims --------------------------------------------------------------------------------------
def _claims(vs: ConfigResource) -> Iterator[tuple[str, str]]:
    """(claim header, field path) of the JWT-claim matches in the VirtualService's http rules."""
    for i, rule in enumerate(vs.spec.get("http") or ()):
        for j, match in enumerate((rule.get("match") or ()) if isinstance(rule, Mapping) else ()):
            for field in ("headers", "withoutHeaders"):
                headers = match.get(field) if isinstance(match, Mapping) else None
                for key in headers or ():
                    if str(key).startswith(CLAIM_PREFIX):
                        yield str(key), f"spec.http[{i}].match[{j}].{field}"


def _authenticated(snapshot: MeshSnapshot, namespaces: Iterable[str], label_sets: Iterable[Mapping[str, Any]]
                   ) -> bool:
    """Does some RequestAuthentication apply to gateway pods in ``namespaces`` with these labels?"""
    label_sets = list(label_sets)
    for ra in pick_resources(snapshot, REQUEST_AUTHENTICATION):
        if ra.namespace != root_namespace(snapshot) and ra.namespace not in namespaces:
            continue
        selector = (ra.spec.get("selector") or {}).get("matchLabels") if isinstance(ra.spec.get("selector"),
                                                                                     Mapping) else None
        if not selector or any(selects(selector, ls) for ls in label_sets):
            return True
    return False


@analyzer("config.jwt_claim_route", Category.CONFIG, ("VirtualService", "Gateway", "RequestAuthentication",
                                                       "Workload", "Pod", "Service", "MeshConfig"), ("MSH0233",),
          mesh=Mesh.ISTIO)
def jwt_claim_without_authentication(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A gateway VirtualService routes on a JWT claim (``@request.auth.claims.*``), but no
    RequestAuthentication applies to the gateway's pods, so the claim is never there
    (istioctl analyze's IST0149)."""
    index = {(gw.namespace, gw.name): gw for gw in pick_resources(snapshot, GATEWAY)}
    judged, unjudged = 0, set[str]()
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        claims = list(_claims(vs))
        if not claims:
            continue
        for ref in _bound_gateways(vs):
            gw = index.get(gateway_key(ref, vs.namespace))
            if gw is None:
                continue
            pods = gateway_pods(snapshot, gateway_selector(gw))
            namespaces = pods.namespaces or (gw.namespace,)
            if not any(vouches_for_config(snapshot, REQUEST_AUTHENTICATION, ns) for ns in (*namespaces,
                                                                                          root_namespace(snapshot))):
                unjudged.update(namespaces)
                continue
            judged += 1
            if _authenticated(snapshot, namespaces, pods.label_sets or ({},)):
                continue
            claim, path = claims[0]
            yield finding("MSH0233", "config.jwt_claim_route", resource=vs, at=path,
                          services=touched_by(snapshot, vs), virtual_service=_name(vs),
                          claim=claim[len(CLAIM_PREFIX) + 1:] or claim, gateway=_name(gw),
                          evidence={"claims": sorted({c for c, _ in claims}),
                                    "gateway_pod_namespaces": list(namespaces)},
                          hint="add a RequestAuthentication selecting the gateway pods (in their namespace or the "
                               "root namespace); istioctl analyze reports IST0149")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no RequestAuthentication in {', '.join(sorted(unjudged))} or "
                            f"{root_namespace(snapshot)}")

