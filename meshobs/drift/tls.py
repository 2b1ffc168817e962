"""DestinationRule TLS (live or intended) vs the transport socket each caller's cluster holds.

Which rule applies to a proxy's ``outbound|PORT|SUBSET|HOST`` cluster follows Istio: a rule
with a ``workloadSelector`` matching the proxy's pod labels in the proxy's namespace first, then
a rule without selector in the proxy's namespace, the host's namespace, anywhere else (the root
namespace). Within the rule (``MergeTrafficPolicy`` in istio/pilot): the top-level
``trafficPolicy.tls``, replaced by the port-level setting for the cluster's port when there is
one (port-level settings do not inherit: one without ``tls`` means "no TLS setting"), replaced by
the subset's ``trafficPolicy.tls`` and then the subset's port-level setting. A rule that sets no
TLS for the cluster is not compared: what the proxy does then depends on auto mTLS and the
PeerAuthentication policies, not on the rule.

Values are compared in the rule's words (``ISTIO_MUTUAL``, ``MUTUAL``, ``SIMPLE``, ``DISABLE``):
the proxy's cluster TLS (:attr:`UpstreamCluster.tls`, parsed from its transport socket) is
upper-cased. A proxy whose cluster still does mTLS after the rule was set to ``DISABLE`` (or the
reverse) is drift at ``spec.trafficPolicy.tls.mode`` (or the port / subset path that decided).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshobs.collectors.envoy.names import ClusterName, istio_outbound
from meshobs.model import ConfigResource, MeshSnapshot, Proxy

from .normalise import ResourceId, canonical

See = Callable[[ResourceId, str, Any, str, Any], None]


def expected_tls(spec: Mapping[str, Any], port: int | None, subset: str) -> tuple[str, str] | None:
    """(field path, mode) of the rule setting that decides the TLS of one cluster, or None."""
    policy = spec.get("trafficPolicy") or {}
    path, tls = "spec.trafficPolicy.tls", policy.get("tls")
    by_port = (policy.get("portLevelSettings") or {}).get(str(port)) if port is not None else None
    if by_port is not None:
        path, tls = f"spec.trafficPolicy.portLevelSettings[{port}].tls", by_port.get("tls")
    if subset:
        sub = ((spec.get("subsets") or {}).get(subset) or {}).get("trafficPolicy") or {}
        if sub.get("tls"):
            path, tls = f"spec.subsets[{subset}].trafficPolicy.tls", sub["tls"]
        sub_port = (sub.get("portLevelSettings") or {}).get(str(port)) if port is not None else None
        if sub_port is not None:
            path = f"spec.subsets[{subset}].trafficPolicy.portLevelSettings[{port}].tls"
            tls = sub_port.get("tls")
    if not isinstance(tls, Mapping) or not tls:
        return None
    # ClientTLSSettings.mode is a proto3 enum: absent means its zero value, DISABLE.
    return f"{path}.mode", str(tls.get("mode") or "DISABLE").upper()


def _selects(selector: Any, labels: Mapping[str, str] | None) -> bool | None:
    wanted = (selector or {}).get("matchLabels") if isinstance(selector, Mapping) else None
    if not wanted:
        return True
    if labels is None:
        return None  # unknown: cannot tell whether the rule applies
    return all(labels.get(k) == v for k, v in wanted.items())


def _rules_for(rules: Sequence[tuple[ConfigResource, dict[str, Any]]], host: str, proxy: Proxy,
               labels: Mapping[str, str] | None) -> list[tuple[ConfigResource, dict[str, Any]]] | None:
    """Of ``rules`` (those whose host is ``host``), the ones that apply to ``proxy``, most
    specific first; None when unknown."""
    scoped: list[tuple[ConfigResource, dict[str, Any]]] = []
    for r, s in rules:
        if s.get("workloadSelector") and r.namespace == proxy.namespace:
            hit = _selects(s["workloadSelector"], labels)
            if hit is None:
                return None
            if hit:
                scoped.append((r, s))
    host_ns = host.split(".")[1] if host.count(".") >= 1 else ""
    plain = [(r, s) for r, s in rules if not s.get("workloadSelector")]
    plain.sort(key=lambda rs: (rs[0].namespace != proxy.namespace, rs[0].namespace != host_ns, rs[0].namespace))
    return scoped + plain


def compare_tls(resources: Sequence[ConfigResource], proxies: Sequence[Proxy], see: See,
                labels: Mapping[str, Mapping[str, str]] | None = None,
                names: Mapping[str, ClusterName | None] | None = None,
                destination_rules: Sequence[tuple[ConfigResource, dict[str, Any]]] | None = None) -> None:
    """Feed ``see`` one observation per (proxy, cluster) whose TLS a DestinationRule decides.
    ``names``: :func:`istio_outbound` of each cluster name, ``destination_rules``: the
    resources' DestinationRules with their canonical specs, when already worked out."""

    rules = (list(destination_rules) if destination_rules is not None else
             [(r, canonical(r)["spec"]) for r in resources if r.kind == "DestinationRule"])
    if not rules:
        return
    # The rules of each host, in order: every (proxy, cluster) looked for its host's among all
    # the mesh's DestinationRules (25k clusters x 2,000 rules at 5,000 services).
    by_host: dict[str, list[tuple[ConfigResource, dict[str, Any]]]] = {}
    for r, s in rules:
        if isinstance(s.get("host"), str):
            by_host.setdefault(s["host"], []).append((r, s))
    # One field decides many clusters of a proxy (every subset, every port): the proxy differs
    # when any of them differs, and then holds what that cluster holds.
    held: dict[tuple[ResourceId, str, str], tuple[str, str]] = {}
    for proxy in proxies:
        # A proxy's clusters of one host (its ports, its subsets) share the rules that apply.
        applying: dict[str, list[tuple[ConfigResource, dict[str, Any]]] | None] = {}
        for c in proxy.clusters:
            if c.tls is None:
                continue
            parsed = names[c.name] if names is not None else istio_outbound(c.name)
            if parsed is None:
                continue
            host = c.service_host or parsed.service_host or ""
            port = c.port if c.port is not None else parsed.port
            subset = c.subset if c.subset is not None else parsed.subset
            if host in applying:
                applicable = applying[host]
            else:
                applicable = applying[host] = _rules_for(by_host.get(host, []), host, proxy,
                                                         (labels or {}).get(proxy.id))
            for resource, spec in applicable or []:
                decided = expected_tls(spec, port, subset or "")
                if decided is not None:
                    path, mode = decided
                    key = (ResourceId.of(resource), path, proxy.id)
                    if key not in held or held[key][1] == mode:
                        held[key] = (mode, c.tls.upper())
                    break
    for (rid, path, proxy_id), (mode, got) in held.items():
        see(rid, path, mode, proxy_id, got)


def proxy_labels(snapshot: MeshSnapshot) -> dict[str, dict[str, str]]:
    """Proxy id (``pod.namespace``) -> its pod's labels (else its workload's), for selectors."""
    out: dict[str, dict[str, str]] = {}
    pods = {f"{p.name}.{p.namespace}": dict(p.labels) for p in snapshot.pods if p.labels}
    for proxy in snapshot.proxies:
        if proxy.id in pods:
            out[proxy.id] = pods[proxy.id]
        elif proxy.workload is not None and (w := snapshot.workload(proxy.workload)) is not None and w.labels:
            out[proxy.id] = dict(w.labels)
    return out
