"""Live (or intended) Istio configuration vs what each Envoy actually holds (effective layer).

For every VirtualService bound to the mesh (``gateways`` empty or containing ``mesh``), the
callers are the proxies with a virtual host for one of its hosts (Istio pushes a VirtualService
to every sidecar that can see the host). Istio turns the i-th ``http`` route into one Envoy route
per match condition, in order, so the virtual host's routes are mapped onto the VirtualService's
routes by position (or by route name when the counts differ and the routes are named). For each
mapped pair the destinations (``outbound|PORT|SUBSET|HOST`` clusters with their weights, as
percentages), the retry policy and the timeouts are compared; the paths are the same as the
canonical VirtualService's (``spec.http[0].route[HOST|SUBSET].weight``), so one field drifting
in two layer pairs reads the same.

Every DestinationRule's subsets are compared with the subset clusters of the proxies that know
its host: a subset the proxies lack was never pushed; a subset cluster the rule no longer has is
a proxy that never got the removal.

Differences are grouped per field: one :class:`Drift` lists every proxy that differs and what
each holds, and names the proxies that are in sync, so "one proxy never got the update" reads
as such. DestinationRule TLS vs each cluster's transport socket is in :mod:`.tls`; App Mesh
VirtualRouters vs the ``cds_egress_...`` routes of their callers in :mod:`.appmesh`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshobs.collectors.envoy.names import ClusterName, istio_outbound
from meshobs.model import ConfigResource, HttpRoute, Proxy

from .appmesh import compare_appmesh
from .compare import Drift, Severity, classify
from .normalise import ResourceId, canonical, canonical_json, destination_rule_host
from .routes import FieldNames, envoy_view, istio_view, route_differences
from .routes import envoy_retry_on as envoy_retry_on  # re-exported: one definition, in routes


@dataclass
class _Observation:
    expected: Any
    actual: dict[str, Any] = field(default_factory=dict)  # proxy id -> value


def _virtual_hosts(proxy: Proxy, host: str) -> list[list[HttpRoute]]:
    """The proxy's route lists (one per route config) whose virtual host serves ``host``."""
    groups: dict[tuple[str, str], list[HttpRoute]] = defaultdict(list)
    for route in proxy.routes:
        domains = {d.split(":", 1)[0] for d in route.domains}
        if host in domains or route.virtual_host.split(":", 1)[0] == host:
            groups[(route.route_config, route.virtual_host)].append(route)
    return [groups[k] for k in sorted(groups)]


def _expand(http: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, r) for i, r in enumerate(http) for _ in range(max(1, len(r.get("match") or [])))]


def _pair(expected: list[tuple[int, dict[str, Any]]], actual: list[HttpRoute]
          ) -> list[tuple[int, dict[str, Any], HttpRoute]] | None:
    if len(expected) == len(actual):
        return [(i, e, a) for (i, e), a in zip(expected, actual)]
    by_name = {a.name: a for a in actual if a.name}
    named = [(i, e, by_name[e["name"]]) for i, e in expected if e.get("name") in by_name]
    return named if named and len(named) == len(expected) else None


def _target(cluster: str) -> str:
    parsed = istio_outbound(cluster)
    return f"{parsed.service_host}|{parsed.subset or ''}|{parsed.port or ''}" if parsed else f"{cluster}||"


def _covers(expected: str, actual: str) -> bool:
    """An Istio destination ``host|subset`` covers the clusters of every port; with a port, one."""
    host, subset, *port = expected.split("|")
    a_host, a_subset, a_port = actual.split("|")
    return host == a_host and subset == a_subset and (not port or port[0] == a_port)


def _route_fields(i: int, exp: dict[str, Any], act: HttpRoute) -> Iterable[tuple[str, Any, Any]]:
    """(path, expected, actual) for one VirtualService route and the Envoy route it became."""
    base = f"spec.http[{i}]"
    names = FieldNames(weight=lambda k: f"{base}.route[{k}].weight",
                       target=lambda k: f"{base}.route[{'|'.join(k.split('|')[:2])}]",
                       attempts=f"{base}.retries.attempts", retry_on=f"{base}.retries.retryOn",
                       per_try=f"{base}.retries.perTryTimeout", timeout=f"{base}.timeout")
    return route_differences(istio_view(exp), envoy_view(act, _target), names, _covers)


class _Collector:
    def __init__(self) -> None:
        self.obs: dict[tuple[ResourceId, str], _Observation] = {}

    def see(self, rid: ResourceId, path: str, expected: Any, proxy: str, actual: Any) -> None:
        o = self.obs.setdefault((rid, path), _Observation(expected))
        o.actual.setdefault(proxy, actual)

    def drifts(self, layers: str) -> list[Drift]:
        out: list[Drift] = []
        for (rid, path), o in sorted(self.obs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            differing = {p: v for p, v in o.actual.items() if v != o.expected}
            if not differing:
                continue
            in_sync = sorted(p for p in o.actual if p not in differing)
            common = Counter(canonical_json(v) for v in differing.values()).most_common(1)[0][0]
            right = next(v for v in differing.values() if canonical_json(v) == common)
            category, severity = classify(path)
            if path.endswith("]") and (".route[" in path or ".weightedTargets[" in path):
                category, severity = "destination", Severity.ERROR
            out.append(Drift(rid, layers, path, o.expected, right, category, severity,
                             proxies=tuple(sorted(differing)),
                             per_proxy=tuple(sorted(differing.items())),
                             extra=(("proxies_in_sync", in_sync),)))
        return out


def compare_effective(reference: Iterable[ConfigResource], proxies: Sequence[Proxy], layers: str,
                      labels: Mapping[str, Mapping[str, str]] | None = None) -> list[Drift]:
    """Differences between mesh resources (``reference``: live or intended) and the proxies.

    ``labels`` (proxy id -> pod labels) decides which DestinationRules with a
    ``workloadSelector`` apply to a proxy; without it such proxies' TLS is not compared.
    """
    from .tls import compare_tls

    reference = list(reference)
    resources = [r for r in reference if str(r.mesh) == "istio"]
    seen = _Collector()
    with_routes = [p for p in proxies if p.routes]
    sidecar_vss = [(vs, spec) for vs in resources if vs.kind == "VirtualService"
                   # bound to gateways only: sidecars never get it
                   if "mesh" in ((spec := canonical(vs)["spec"]).get("gateways") or ["mesh"])]
    # Istio gives sidecars one VirtualService per host (the oldest) and ignores the others: with
    # several for a host, which one the proxies should hold is not known, so that host is not
    # compared (diagnose reports the duplicate itself: MSH0206).
    claims = Counter(h for _vs, spec in sidecar_vss for h in set(spec.get("hosts") or []))
    for vs, spec in sidecar_vss:
        expected = _expand(spec.get("http") or [])
        if not expected:
            continue
        rid = ResourceId.of(vs)
        hosts = [h for h in spec.get("hosts") or [] if claims[h] == 1]
        for proxy in with_routes:
            for host in hosts:
                for actual in _virtual_hosts(proxy, host):
                    pairs = _pair(expected, actual)
                    if pairs is None:
                        seen.see(rid, "spec.http", len(expected), proxy.id, len(actual))
                        continue
                    seen.see(rid, "spec.http", len(expected), proxy.id, len(expected))
                    for i, exp, act in pairs:
                        for path, want, got in _route_fields(i, exp, act):
                            seen.see(rid, path, want, proxy.id, got)
    names = outbound_names(proxies)
    # Each DestinationRule in its comparable form once, for its subsets and its TLS: those of
    # the hosts the proxies hold clusters of, the only ones either reads (a neighbourhood's
    # proxies hold a few dozen hosts of thousands).
    held = _cluster_hosts(proxies, names)
    rules = [(r, canonical(r)["spec"]) for r in resources
             if r.kind == "DestinationRule" and destination_rule_host(r) in held]
    _subsets(rules, proxies, seen, names)
    compare_tls(resources, proxies, seen.see, labels, names, rules)
    compare_appmesh(reference, proxies, seen.see)
    return seen.drifts(layers)


def _cluster_hosts(proxies: Sequence[Proxy], clusters: Mapping[str, ClusterName | None]) -> set[str]:
    """Every host a cluster of ``proxies`` is for, as :func:`_subsets` and
    :func:`.tls.compare_tls` look their DestinationRules up."""
    hosts: set[str] = set()
    for proxy in proxies:
        for c in proxy.clusters:
            parsed = clusters[c.name]
            host = c.service_host or (parsed.service_host if parsed else None)
            if host:
                hosts.add(host)
    return hosts


def outbound_names(proxies: Sequence[Proxy]) -> dict[str, ClusterName | None]:
    """:func:`istio_outbound` of every cluster name the proxies hold, each name read once: the
    proxies of a mesh hold the same clusters (150k clusters, a few thousand names at 5,000
    services), and the subsets and the TLS are compared over all of them."""
    names: dict[str, ClusterName | None] = {}
    for proxy in proxies:
        for c in proxy.clusters:
            if c.name not in names:
                names[c.name] = istio_outbound(c.name)
    return names


def _subsets(destination_rules: Sequence[tuple[ConfigResource, dict[str, Any]]], proxies: Sequence[Proxy],
             seen: _Collector, clusters: Mapping[str, ClusterName | None]) -> None:
    rules: dict[str, tuple[ResourceId, set[str]]] = {}
    for dr, spec in destination_rules:
        host = spec.get("host")
        if not host:
            continue
        rid, names = rules.get(host, (ResourceId.of(dr), set()))
        rules[host] = (rid, names | set(spec.get("subsets") or {}))
    for proxy in proxies:
        held: dict[str, set[str]] = defaultdict(set)
        for c in proxy.clusters:
            parsed = clusters[c.name]
            host = c.service_host or (parsed.service_host if parsed else None)
            if c.direction != "outbound" and not parsed:
                continue
            if host in rules:
                subset = c.subset if c.subset is not None else (parsed.subset if parsed else "")
                held[host].add(subset or "")
        for host, subsets in held.items():
            rid, names = rules[host]
            for name in sorted(names | (subsets - {""})):
                want = "present" if name in names else None
                got = "present" if name in subsets else None
                seen.see(rid, f"spec.subsets[{name}]", want, proxy.id, got)
