"""Drift checks: what the configuration says vs what Envoy does vs what Git says vs what flows.

Live layer: the resources in the cluster. Effective layer: the routes and clusters in the
callers' Envoy proxies. Intended layer: the manifests in Git. The three compare through
``meshobs drift``'s engine (:mod:`meshobs.drift.findings`). Observed: the request rates per
destination workload (``Edge``) against the VirtualService's weights.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.drift.findings import EFFECTIVE, INTENDED_LIVE, drift_findings
from meshobs.istio_config import (
    VIRTUAL_SERVICE,
    VsRoute,
    applies_to_sidecars,
    host_matches,
    http_routes,
    pick_resources,
    service_hosts,
    vs_hosts,
)
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, ServiceRef, WorkloadRef

from .base import Finding, Settings, check, finding, memo
from .config import destination_rules_for, selects, subsets_for_host, target_service, workload_labels
from .split import chi_square_p, judge_split, require_requests

__all__ = ["chi_square_p"]  # re-exported: the split statistics moved to .split


def _fmt_weights(weights: dict[str, float]) -> str:
    return "/".join(f"{k or '(no subset)'} {v:g}%" for k, v in sorted(weights.items()))


def _percent(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: round(100.0 * v / total, 1) for k, v in weights.items() if v > 0} if total > 0 else {}


def _route_label(route: VsRoute) -> str:
    return route.name or f"#{route.index}"


# -- drift: the configuration vs the callers' Envoys, vs Git ---------------------------------
# One engine for both commands: these checks report what `meshobs drift` finds on the same
# snapshot (meshobs.drift.findings), under the same codes, so `diagnose` and `drift` never
# disagree about a VirtualService, a DestinationRule or an App Mesh router.


@check("config.weight_drift", Category.CONFIG, ("config", "proxies"), ("MSH0203", "MSH0280"), uses=("pods",))
def weight_drift(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The routes, weights or subsets the callers' Envoys hold differ from the configuration
    (VirtualService, DestinationRule or App Mesh router) that routes to the service."""
    yield from drift_findings(snapshot, service, EFFECTIVE, ("MSH0203", "MSH0280"), "config.weight_drift")


@check("config.policy_drift", Category.CONFIG, ("config", "proxies"), ("MSH0204", "MSH0281"), uses=("pods",))
def policy_drift(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Retries, timeouts or TLS in the configuration differ from those of the callers' Envoys
    (retry conditions compared as Envoy holds them: ``5xx,503`` is ``5xx,retriable-status-codes``)."""
    yield from drift_findings(snapshot, service, EFFECTIVE, ("MSH0204", "MSH0281"), "config.policy_drift")


@check("config.intended_drift", Category.CONFIG, ("config",), ("MSH0207", "MSH0283", "MSH0284", "MSH0285"))
def intended_drift(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The live configuration shaping the service differs from the intended (Git) one: a field
    edited by hand, a resource never applied, or one created outside Git."""
    yield from drift_findings(snapshot, service, INTENDED_LIVE, ("MSH0207", "MSH0283", "MSH0284", "MSH0285"),
                              "config.intended_drift")


def _sidecar_vss_by_host(snapshot: MeshSnapshot) -> tuple[dict[str, list[ConfigResource]], list[ConfigResource]]:
    """Sidecar VirtualServices with HTTP routes: by exact host, and those with a wildcard host."""
    exact: dict[str, list[ConfigResource]] = {}
    wildcard: list[ConfigResource] = []
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        if not (applies_to_sidecars(vs) and vs.spec.get("http")):
            continue
        hosts = vs_hosts(vs)
        for h in dict.fromkeys(hosts):
            if not h.startswith("*"):
                exact.setdefault(h, []).append(vs)
        if any(h.startswith("*") for h in hosts):
            wildcard.append(vs)
    return exact, wildcard


def sidecar_virtual_services(snapshot: MeshSnapshot, hosts: set[str]) -> list[ConfigResource]:
    """The sidecar VirtualServices with HTTP routes whose hosts cover ``hosts``, by namespace and
    name: what istio_config.virtual_services_for selects, from an index built once per snapshot."""
    exact, wildcard = memo(snapshot, "config_routes.sidecar_vss_by_host", _sidecar_vss_by_host)
    found = {(vs.namespace, vs.name): vs for h in hosts for vs in exact.get(h, ())}
    found.update({(vs.namespace, vs.name): vs for vs in wildcard
                  if any(host_matches(p, x) for p in vs_hosts(vs) for x in hosts)})
    return [found[k] for k in sorted(found)]


def _sidecar_vs(snapshot: MeshSnapshot, service: ServiceRef) -> ConfigResource | None:
    """The one VirtualService that shapes sidecar traffic to the service.

    None when there is none, or several: which one Istio applies is then unknown (the oldest),
    so drift cannot be judged; config.duplicate_virtualservice reports that case.
    """
    found = sidecar_virtual_services(snapshot, service_hosts(target_service(snapshot, service)))
    return found[0] if len(found) == 1 else None


def _own_routes(vs: ConfigResource, hosts: set[str]) -> list[VsRoute]:
    """The routes that send only to ``hosts``."""
    return [r for r in http_routes(vs) if r.destinations and all(d.host in hosts for d in r.destinations)]


def requests_by_subset(snapshot: MeshSnapshot, service: ServiceRef,
                       host: str) -> tuple[dict[str | None, float], set[WorkloadRef]]:
    """Requests (rate x window) into ``service`` per subset of ``host`` whose DestinationRule
    labels its destination workload carries (None: no subset's), and the callers that sent them."""
    subsets = subsets_for_host(destination_rules_for(snapshot, [host]), host)
    counts: dict[str | None, float] = {}
    callers: set[WorkloadRef] = set()
    for e in snapshot.edges_into(service):
        w = snapshot.workload(e.destination_workload) if e.destination_workload else None
        if w is None or e.request_rate <= 0:
            continue
        callers.add(e.source)
        labels = workload_labels(w)
        subset = next((name for name, (_, sel) in sorted(subsets.items()) if sel and selects(sel, labels)), None)
        counts[subset] = counts.get(subset, 0.0) + e.request_rate * snapshot.window_s
    return counts, callers


# -- observed split --------------------------------------------------------------------------
@check("config.split_mismatch", Category.CONFIG, ("config", "requests"), ("MSH0205",), mesh=Mesh.ISTIO)
def split_mismatch(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The observed split across subsets differs from the VirtualService's weights beyond noise.

    Requests = rate x window per destination workload, mapped to subsets by the DestinationRule's
    labels; a chi-square goodness-of-fit test against the default (last unmatched) route's
    weights, plus a minimum difference in share so small meshes do not flap.
    """
    vs = _sidecar_vs(snapshot, service)
    if vs is None:
        return
    svc = target_service(snapshot, service)
    hosts = service_hosts(svc)
    routes = _own_routes(vs, hosts)
    default = next((r for r in reversed(routes) if not r.has_match), None)
    if default is None or not all(d.subset for d in default.destinations) or len(default.destinations) < 2:
        return
    observed, callers = requests_by_subset(snapshot, service, next(iter(default.destinations)).host)
    counts = {subset: n for subset, n in observed.items() if subset is not None}
    matched_elsewhere = any(r.has_match and r is not default for r in routes)
    require_requests(counts, f"the subsets of {service}")
    verdict = judge_split(counts, {k: float(v) for k, v in default.weights().items()},
                          matched_elsewhere=matched_elsewhere)
    if verdict is None:
        return
    total, stat, p, diff = verdict.requests, verdict.chi_square, verdict.p_value, verdict.max_difference
    obs_pct, cfg_pct = verdict.percent(verdict.observed), verdict.percent(verdict.expected)
    # The callers' proxies route the split: a caller that did not take the routes explains it.
    yield finding("MSH0205", "config.split_mismatch", f"Service {service}", service=service,
                  workloads=sorted(w for w in callers if not w.is_unknown), observed=_fmt_weights(obs_pct),
                  virtual_service=f"{vs.namespace}/{vs.name}",
                  configured=_fmt_weights(cfg_pct), p_value=p, requests=total,
                  evidence={"observed_requests": {k: round(v, 1) for k, v in counts.items()},
                            "observed_percent": obs_pct, "configured_percent": cfg_pct,
                            "chi_square": round(stat, 2), "p_value": p, "max_share_difference": round(diff, 3),
                            "window_s": snapshot.window_s, "route": _route_label(default)},
                  magnitude=diff * 100,
                  hint="check the callers' effective routes (istioctl proxy-config routes <caller-pod> -o json) "
                       "and sum(rate(istio_requests_total{destination_service=...}[5m])) by "
                       "(destination_version)")
