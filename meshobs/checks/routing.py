"""Requests a proxy had no route for (404 ``NR``), with the resources that should route them.

An ingress gateway answers 404 NR when no VirtualService bound to one of its Gateways claims the
request's host (the VirtualService names a Gateway that does not exist, a Gateway that selects
other pods or does not list the host...); a sidecar does when the host's routes are missing.
Istio's metrics then carry the request's host as the destination (its ``:authority``), reported
by the proxy that answered. The symptom names the VirtualServices claiming the host and the
Gateways involved (``related``): the ranking puts a finding about one of them first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from meshobs.catalogue import Category
from meshobs.istio_config import (
    GATEWAY,
    MESH_GATEWAY,
    VIRTUAL_SERVICE,
    fqdn,
    gateway_key,
    host_matches,
    pick_resources,
    vs_gateway_refs,
    vs_hosts,
)
from meshobs.model import ConfigResource, Edge, Mesh, MeshSnapshot, ServiceRef

from .base import Finding, Settings, check, finding
from .traffic import _pct, _r, outbound_edges, require_requests

NO_ROUTE = "NR"


def _host(e: Edge) -> str:
    """The host the requests asked for: the authority Istio reports when no service matched."""
    return e.destination.name if e.destination.is_unknown or e.destination.namespace == "unknown" \
        else fqdn(e.destination.name, e.destination.namespace)


def _gateway_hosts(gw: object) -> list[str]:
    spec = getattr(gw, "spec", {})
    return [str(h).split("/", 1)[-1] for s in spec.get("servers") or () if hasattr(s, "get")
            for h in s.get("hosts") or ()]


def _match_words(match: object) -> str:
    """One HTTPMatchRequest in words: ``uri prefix /v2/``, ``header x-fleet``, ``port 8080``."""
    if not isinstance(match, Mapping):
        return "?"
    words = []
    for key, value in match.items():
        if key in ("uri", "scheme", "method", "authority") and isinstance(value, Mapping):
            words += [f"{key} {how} {what}" for how, what in value.items()]
        elif key in ("headers", "queryParams", "withoutHeaders") and isinstance(value, Mapping):
            words += [f"{key} {name}" for name in value]
        elif key != "name":
            words.append(f"{key} {value}")
    return " and ".join(words) or "anything"


def uncaught(vs: ConfigResource) -> list[str] | None:
    """What a VirtualService's http routes match when every one of them has a match (none
    catches the rest: other requests for its hosts get 404 NR); None when one route has no
    match, or it has no http routes at all."""
    rules = [r for r in vs.spec.get("http") or () if isinstance(r, Mapping)]
    if not rules or any(not r.get("match") for r in rules):
        return None
    return [_match_words(m) for r in rules for m in r.get("match") or ()]


@check("traffic.no_route", Category.TRAFFIC, ("requests",), ("MSH0416",), uses=("config",), mesh=Mesh.ISTIO)
def no_route(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The service's proxy answers 404 NR (no route) for a host a VirtualService claims, or an
    in-mesh service, on more than the error threshold of its calls: its routes are missing."""
    edges = outbound_edges(snapshot, service)
    require_requests(snapshot, service, [*edges, *snapshot.edges_into(service)], "to or from")
    total = sum(e.request_rate for e in edges)
    by_host: dict[str, list[Edge]] = {}
    per_host: dict[str, float] = {}
    for e in edges:
        host = _host(e)
        per_host[host] = per_host.get(host, 0.0) + e.request_rate
        if any(NO_ROUTE in r.flag_list for r in e.responses):
            by_host.setdefault(host, []).append(e)
    for host, group in sorted(by_host.items()):
        rate = sum(r.rate for e in group for r in e.responses if NO_ROUTE in r.flag_list)
        claims = [vs for vs in pick_resources(snapshot, VIRTUAL_SERVICE)
                  if any(host_matches(h, host) for h in vs_hosts(vs))]
        in_mesh = any(not e.destination.is_unknown and e.destination.namespace != "unknown" for e in group)
        # Judged against the calls to that host as well as against all of the service's calls: a
        # host called rarely beside a busy one can lose every request to a missing route while
        # being a sliver of the service's traffic.
        host_calls = per_host[host]
        if total <= 0 or not (claims or in_mesh) or (
                rate / total <= settings.error_ratio
                and (host_calls <= 0 or host_calls < settings.min_request_rate
                     or rate / host_calls <= settings.error_ratio)):
            continue  # requests for hosts nobody routes (scanners at an ingress) are not a fault
        related: list[str] = []
        described: list[str] = []
        matched_only: dict[str, list[str]] = {}
        for vs in claims:
            related.append(f"VirtualService {vs.namespace}/{vs.name}")
            refs = [ref for ref, _path in vs_gateway_refs(vs) if ref != MESH_GATEWAY]
            for ref in refs:
                ns, name = gateway_key(ref, vs.namespace)
                related.append(f"Gateway {ns}/{name}")
            bound = f"bound to gateways {', '.join(refs)}" if refs else "bound to the sidecars only (mesh)"
            only = uncaught(vs)
            if only is not None:
                matched_only[f"{vs.namespace}/{vs.name}"] = only
                bound += f", and routes only requests matching {' or '.join(only)} (no route catches the rest)"
            described.append(f"VirtualService {vs.namespace}/{vs.name} claims it, {bound}")
        serving = [gw for gw in pick_resources(snapshot, GATEWAY)
                   if any(host_matches(fqdn(h, gw.namespace) if h != "*" else "*", host) or h == "*"
                          for h in _gateway_hosts(gw))]
        related += [f"Gateway {gw.namespace}/{gw.name}" for gw in serving]
        if serving:
            described.append("Gateways serving it: " + ", ".join(f"{gw.namespace}/{gw.name}" for gw in serving))
        evidence = {"host": host, "no_route_rps": _r(rate), "ratio_of_calls": _r(rate / total),
                    "ratio_of_host_calls": _r(rate / host_calls) if host_calls > 0 else None,
                    "responses": sorted({f"{r.outcome} {r.flags}" for e in group for r in e.responses}),
                    "claimed_by": [f"{vs.namespace}/{vs.name}" for vs in claims],
                    "gateways_serving_host": [f"{gw.namespace}/{gw.name}" for gw in serving],
                    "reporting_workloads": sorted({str(e.source) for e in group})}
        if matched_only:
            evidence["routes_only_matching"] = matched_only
            hint = ("every http route of the VirtualService has a match and these requests fit none: add a "
                    "route without a match for the rest (or a match for these paths), or fix the callers' "
                    "requests; compare with istioctl proxy-config routes <pod>")
        else:
            hint = ("compare the routes the proxy has (istioctl proxy-config routes <pod>) with the "
                    "VirtualService: its gateways must name a Gateway (namespace/name) that selects this "
                    "proxy and lists the host")
        yield finding("MSH0416", "traffic.no_route", f"Edge {service} -> {host}", service=service,
                      related=related, evidence=evidence, magnitude=rate, hint=hint,
                      source=str(service), rps=f"{_r(rate)} req/s ({_pct(rate / total)}% of its calls)", host=host,
                      claims="; ".join(described) or "no VirtualService claims it")
