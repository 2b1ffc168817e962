"""mTLS mode consistency: a STRICT server against clients that disable mTLS or send plaintext."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import (
    PEER_AUTHENTICATION,
    destination_rule_for,
    dr_tls_mode,
    peer_auth_mode,
    pick_resources,
)
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, Security, ServiceRef, WorkloadRef

from .base import Finding, Settings, analyzer, check, finding, memo
from .config import destination_rules_for, istio_services, target_service, workload_labels
from .meshconfig import root_namespace
from .scope import Focus

NON_MUTUAL = ("DISABLE", "SIMPLE")

_Client = tuple[str, dict[str, Any]]  # (workload, its labels)


def _peer_authentications(snapshot: MeshSnapshot) -> list[ConfigResource]:
    return pick_resources(snapshot, PEER_AUTHENTICATION)


def _clients_by_namespace(snapshot: MeshSnapshot) -> dict[str, list[_Client]]:
    """Every workload of the mesh (each a potential client), by namespace, with its labels."""
    out: dict[str, list[_Client]] = {}
    for w in snapshot.workloads:
        out.setdefault(w.namespace, []).append((str(w.ref), workload_labels(w)))
    return out


def _has_workload_selector(dr: ConfigResource) -> bool:
    # Mirrors istio_config.destination_rule_for: only such a DestinationRule makes the choice
    # depend on the client's labels (and only for clients in its own namespace).
    return bool((dr.spec.get("workloadSelector") or {}).get("matchLabels"))


def strict_scope(snapshot: MeshSnapshot, service: ServiceRef) -> dict[WorkloadRef | None, ConfigResource | None]:
    """Workloads of the service whose PeerAuthentication resolves to STRICT -> that resource.

    With no workloads known (manifest-only runs), the namespace/mesh level decides under key None.
    """
    pas = memo(snapshot, "istio.peer_authentications", _peer_authentications)
    svc = target_service(snapshot, service)
    port = svc.ports[0] if svc.ports else None
    root = root_namespace(snapshot)
    out: dict[WorkloadRef | None, ConfigResource | None] = {}
    workloads = snapshot.workloads_of(service)
    for w in workloads:
        mode, pa = peer_auth_mode(pas, w.namespace, workload_labels(w), port, root_namespace=root)
        if mode == "STRICT":
            out[w.ref] = pa
    if not workloads:
        mode, pa = peer_auth_mode(pas, service.namespace, {}, port, root_namespace=root)
        if mode == "STRICT":
            out[None] = pa
    return out


def _pa_name(pa: ConfigResource | None) -> str:
    return f"{pa.namespace}/{pa.name}" if pa else "(mesh default)"


@analyzer("certs.mtls_conflict", Category.CERTS, ("PeerAuthentication", "DestinationRule", "Service", "Workload",
                                                                  "MeshConfig"), ("MSH0306",), mesh=Mesh.ISTIO)
def mtls_conflict(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
    """PeerAuthentication is STRICT for a service while a client DestinationRule sets tls DISABLE/SIMPLE."""
    for svc in istio_services(snapshot, focus):  # its findings touch svc only
        yield from _mtls_conflicts(snapshot, svc.ref)


def _mtls_conflicts(snapshot: MeshSnapshot, service: ServiceRef) -> Iterable[Finding]:
    strict = strict_scope(snapshot, service)
    if not strict:
        return
    svc = target_service(snapshot, service)
    host, port = svc.fqdn, (svc.ports[0] if svc.ports else None)
    drs = destination_rules_for(snapshot, [host])
    if not drs:
        return
    # Every workload of the mesh is a potential client; without workloads, one anonymous
    # client per namespace that holds a matching DestinationRule.
    clients = memo(snapshot, "mtls.clients_by_namespace", _clients_by_namespace)
    if not clients:
        clients = {ns: [(f"{ns}/*", {})] for ns in sorted({dr.namespace for dr in drs} | {service.namespace})}
    selective = {dr.namespace for dr in drs if _has_workload_selector(dr)}
    root = root_namespace(snapshot)
    offenders: dict[tuple[str, str], tuple[ConfigResource, str, list[str]]] = {}
    for ns, members in clients.items():
        # Clients of one namespace share a DestinationRule unless one there selects by labels:
        # decide once per namespace instead of once per workload of the mesh.
        decided: list[tuple[ConfigResource | None, list[str] | None]] = (
            [(destination_rule_for(drs, host, ns, service.namespace, labels, root), [name]) for name, labels in members]
            if ns in selective else [(destination_rule_for(drs, host, ns, service.namespace, {}, root), None)])
        for dr, names in decided:
            mode = dr_tls_mode(dr, port) if dr is not None else None
            if dr is not None and mode in NON_MUTUAL:
                who = names if names is not None else [name for name, _ in members]  # None: the whole namespace
                offenders.setdefault((dr.namespace, dr.name), (dr, mode, []))[2].extend(who)
    pa = next(iter(strict.values()))
    for (ns, name), (dr, mode, who) in sorted(offenders.items()):
        yield finding("MSH0306", "certs.mtls_conflict", f"DestinationRule {ns}/{name}", resource=dr,
                      at=_tls_mode_path(dr, port), services=[service],
                      destination_rule=f"{ns}/{name}", tls_mode=mode, host=host, peer_authentication=_pa_name(pa),
                      evidence={"tls_mode": mode, "clients": sorted(who), "peer_authentication": _pa_name(pa),
                                "strict_workloads": sorted(str(w) for w in strict if w is not None)},
                      magnitude=len(who),
                      hint="set trafficPolicy.tls.mode ISTIO_MUTUAL in the DestinationRule (or remove the tls "
                           "block to use auto mTLS); check with istioctl x describe pod <server-pod>")


def _tls_mode_path(dr: ConfigResource, port: int | None) -> str:
    """The field that sets the client TLS mode: the port-level one when it applies."""
    policy = dr.spec.get("trafficPolicy") or {}
    for i, pls in enumerate(policy.get("portLevelSettings") or ()):
        if port is not None and (pls.get("port") or {}).get("number") == port and (pls.get("tls") or {}).get("mode"):
            return f"spec.trafficPolicy.portLevelSettings[{i}].tls.mode"
    return "spec.trafficPolicy.tls.mode"


@check("certs.plaintext_edge", Category.CERTS, ("config", "requests", "security"), ("MSH0307",),
       blind_on={Mesh.APPMESH: "CloudWatch and X-Ray do not report how requests were secured "
                               "(Istio's connection_security_policy has no App Mesh counterpart)"})
def plaintext_edge(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Plaintext (connection_security_policy="none") reached the service where STRICT applies."""
    strict = strict_scope(snapshot, service)
    if not strict:
        return
    plain: dict[WorkloadRef, list[Any]] = {}
    for e in snapshot.edges_into(service):
        if e.security is not Security.PLAINTEXT or e.request_rate <= 0:
            continue
        target = e.destination_workload
        if target is not None and target not in strict and None not in strict:
            continue
        plain.setdefault(e.source, []).append(e)
    for source, edges in sorted(plain.items()):
        rate = sum(e.request_rate for e in edges)
        pa = strict.get(edges[0].destination_workload) if edges[0].destination_workload in strict else next(
            iter(strict.values()))
        flags: dict[str, float] = {}
        for e in edges:
            for flag, r in e.rate_by_flag().items():
                flags[flag] = round(flags.get(flag, 0.0) + r, 3)
        yield finding("MSH0307", "certs.plaintext_edge", f"Edge {source} -> {service}", service=service,
                      source=str(source), rate=rate, peer_authentication=_pa_name(pa),
                      evidence={"request_rate": round(rate, 3), "connection_security_policy": "none",
                                "response_flags": flags,
                                "error_ratio": round(sum(e.error_rate for e in edges) / rate, 3),
                                "destination_workloads": sorted(str(e.destination_workload) for e in edges),
                                "source_principal": edges[0].source_principal},
                      magnitude=rate,
                      hint="the client sends plaintext: give it a sidecar, or fix its DestinationRule tls.mode; "
                           "confirm with sum(rate(istio_requests_total{reporter=\"destination\","
                           "connection_security_policy=\"none\"}[5m])) by (source_workload)")
