"""App Mesh configuration checks over the common layout (``spec["meshobs"]``).

They read only App Mesh resources, so they say nothing about Istio services (and
their ``mesh=Mesh.APPMESH`` marks them not applicable there): route weights vs the observed split,
calls to virtual services a node does not declare as backends, client TLS policy vs the
target's listener TLS, and health checks / outlier detection missing where requests fail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshobs import appmesh_spec as spec
from meshobs.catalogue import Category
from meshobs.model import Edge, Mesh, MeshSnapshot, ServiceRef

from .base import Finding, Settings, check, finding
from .split import judge_split, require_requests


def _r(x: float) -> float:
    return round(x, 4)


def _fmt(shares: dict[str, float]) -> str:
    return "/".join(f"{k} {v:g}%" for k, v in sorted(shares.items()))


def _split_route(routes: list[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, bool]:
    """The route that splits traffic (two or more weighted targets; the lowest priority, i.e.
    the catch-all, when several do) and whether other routes also send to the targets."""
    splitting = [r for r in routes if len(r.get("targets") or []) >= 2]
    if not splitting:
        return None, False
    chosen = max(splitting, key=lambda r: (r.get("priority") is None, r.get("priority") or 0))
    return chosen, len(routes) > 1


@check("appmesh.split_mismatch", Category.CONFIG, ("config", "requests"), ("MSH0208",), mesh=Mesh.APPMESH)
def split_mismatch(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The observed split across a route's target virtual nodes differs from its weights beyond
    noise (the chi-square test of config.split_mismatch, per virtual node)."""
    router, routes = spec.routes(snapshot, service)
    route, others = _split_route(routes)
    if route is None:
        return
    weights = {str(t.get("virtual_node")): float(t.get("weight") or 0) for t in route.get("targets") or []}
    nodes = spec.resources(snapshot, spec.VIRTUAL_NODE)
    counts: dict[str, float] = {}
    for e in snapshot.edges_into(service):
        if e.destination_workload is None or e.request_rate <= 0:
            continue
        node = next((n for n in nodes if spec.node_matches(n, e.destination_workload)), None)
        target = next((t for t in weights if node is not None and t in spec.names_of(node)), None)
        if target is not None:
            counts[target] = counts.get(target, 0.0) + e.request_rate * snapshot.window_s
    require_requests(counts, f"the virtual nodes of {service}")
    verdict = judge_split(counts, weights, matched_elsewhere=others)
    if verdict is None:
        return
    observed, configured = verdict.percent(verdict.observed), verdict.percent(verdict.expected)
    yield finding("MSH0208", "appmesh.split_mismatch", f"Service {service}", service=service,
                  observed=_fmt(observed), route=str(route.get("name") or "?"), virtual_router=router,
                  configured=_fmt(configured), p_value=verdict.p_value, requests=verdict.requests,
                  evidence={"observed_requests": {k: round(v, 1) for k, v in counts.items()},
                            "observed_percent": observed, "configured_percent": configured,
                            "chi_square": round(verdict.chi_square, 2), "p_value": verdict.p_value,
                            "max_share_difference": round(verdict.max_difference, 3),
                            "window_s": snapshot.window_s},
                  magnitude=verdict.max_difference * 100,
                  hint="compare with the callers' Envoy routes (curl localhost:9901/config_dump, the "
                       "weighted_clusters of the egress route) and the RequestCountPerTarget metric per "
                       "TargetVirtualNode in CloudWatch")


def _outbound(snapshot: MeshSnapshot, service: ServiceRef) -> dict[tuple[Any, ServiceRef], list[Edge]]:
    out: dict[tuple[Any, ServiceRef], list[Edge]] = defaultdict(list)
    for w in snapshot.workloads_of(service):
        for e in snapshot.edges_from_workload(w.ref):
            if not e.destination.is_unknown and e.destination != service:
                out[(w.ref, e.destination)].append(e)
    return out


@check("appmesh.undeclared_backend", Category.CONFIG, ("config", "graph"), ("MSH0209",),
       mesh=Mesh.APPMESH)
def undeclared_backend(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A virtual node of the service calls a virtual service missing from its backends."""
    for (wref, dest), edges in sorted(_outbound(snapshot, service).items(), key=lambda kv: str(kv[0])):
        node = spec.node_of(snapshot, wref)
        if node is None or spec.virtual_service(snapshot, dest) is None:
            continue  # not a virtual node, or the destination is not an App Mesh virtual service
        if any(spec.backend_matches(b, node, dest) for b in spec.backends(node)):
            continue
        rps = sum(e.request_rate for e in edges)
        errors = sum(e.error_rate for e in edges)
        if rps <= 0:
            continue
        yield finding("MSH0209", "appmesh.undeclared_backend", f"VirtualNode {node.namespace}/{node.name}",
                      service=service, virtual_node=f"{node.namespace}/{node.name}", destination=str(dest),
                      rps=_r(rps),
                      evidence={"rps": _r(rps), "error_rps": _r(errors),
                                "error_ratio": _r(errors / rps),
                                "declared_backends": sorted(str(b.get("virtual_service")) for b in
                                                            spec.backends(node))},
                      magnitude=errors or rps,
                      hint=f"add {dest.name} to spec.backends of VirtualNode {node.name} "
                           f"(kubectl edit virtualnode {node.name} -n {node.namespace})")


def _tls_words(client_tls: Mapping[str, Any] | None) -> str:
    if client_tls is None:
        return "sends plaintext (no client TLS policy)"
    return "requires TLS" if client_tls.get("enforce", True) else "originates TLS without enforcing it"


def _mismatch(client_tls: Mapping[str, Any] | None, listener_tls: str | None) -> bool:
    enforced = client_tls is not None and bool(client_tls.get("enforce", True))
    if enforced and listener_tls in (None, "DISABLED"):
        return True  # the client insists on TLS, the listener speaks plaintext
    return client_tls is None and listener_tls == "STRICT"  # the listener insists, the client does not


@check("appmesh.client_tls", Category.CONFIG, ("config",), ("MSH0210",), mesh=Mesh.APPMESH,
       uses=("requests",))  # the observed calls and their errors, as evidence
def client_tls(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A caller's client TLS policy for the service does not fit the service's listener TLS."""
    servers = spec.nodes_of(snapshot, service)
    if not servers:
        return
    edges_in = snapshot.edges_into(service)
    for client in spec.resources(snapshot, spec.VIRTUAL_NODE):
        if not any(spec.backend_matches(b, client, service) for b in spec.backends(client)):
            continue
        policy = spec.client_tls_for(client, service)
        for wref, server in servers:
            mode = spec.listener_tls(server)
            if not _mismatch(policy, mode):
                continue
            calls = [e for e in edges_in if spec.node_matches(client, e.source) and e.destination_workload == wref]
            rps, errors = sum(e.request_rate for e in calls), sum(e.error_rate for e in calls)
            yield finding("MSH0210", "appmesh.client_tls",
                          f"VirtualNode {client.namespace}/{client.name} -> {server.namespace}/{server.name}",
                          service=service, client=f"{client.namespace}/{client.name}",
                          client_tls=_tls_words(policy), server=f"{server.namespace}/{server.name}",
                          listener_tls=f"has TLS mode {mode}" if mode else "has no TLS",
                          evidence={"client_tls": dict(policy) if policy else None, "listener_tls": mode,
                                    "observed_rps": _r(rps), "observed_error_rps": _r(errors)},
                          magnitude=errors or 1.0,
                          hint="make both sides agree: a listener tls block (mode STRICT or PERMISSIVE) "
                               "for a client that enforces TLS, or a clientPolicy.tls on the caller's "
                               "backend for a STRICT listener")


@check("appmesh.resilience", Category.CONFIG, ("config", "requests"), ("MSH0211", "MSH0212"),
       mesh=Mesh.APPMESH)
def resilience(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Requests to the service fail and its virtual nodes' listeners lack health checks or
    outlier detection (nothing takes the failing endpoints out of rotation)."""
    inbound = snapshot.served_edges(service)
    rps = sum(e.request_rate for e in inbound)
    errors = sum(e.error_rate for e in inbound)
    if rps <= 0 or rps < settings.min_request_rate or errors / rps <= settings.error_ratio:
        return
    ratio_pct = round(100 * errors / rps, 2)
    for _wref, node in spec.nodes_of(snapshot, service):
        listeners = spec.listeners(node)
        subject = f"VirtualNode {node.namespace}/{node.name}"
        evidence: dict[str, object] = {"rps": _r(rps), "error_rps": _r(errors), "listeners": len(listeners)}
        if not any(lst.get("health_check") for lst in listeners):
            yield finding("MSH0211", "appmesh.resilience", subject, service=service,
                          virtual_node=f"{node.namespace}/{node.name}", ratio_pct=ratio_pct,
                          evidence=evidence, magnitude=errors,
                          hint="add spec.listeners[].healthCheck (protocol, path, thresholds, interval)")
        if not any(lst.get("outlier_detection") for lst in listeners):
            yield finding("MSH0212", "appmesh.resilience", subject, service=service,
                          virtual_node=f"{node.namespace}/{node.name}", ratio_pct=ratio_pct,
                          evidence=evidence, magnitude=errors,
                          hint="add spec.listeners[].outlierDetection (maxServerErrors, interval, "
                               "baseEjectionDuration, maxEjectionPercent)")
