"""Drift checks: what the VirtualService says vs what Envoy does vs what Git says vs what flows.

Live layer: the VirtualService in the cluster. Effective layer: the RDS routes in the callers'
Envoy proxies (``Proxy.routes``, clusters named ``outbound|PORT|SUBSET|HOST``). Intended layer:
the manifests in Git. Observed: the request rates per destination workload (``Edge``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import (
    VIRTUAL_SERVICE,
    VsRoute,
    applies_to_sidecars,
    host_matches,
    http_routes,
    parse_cluster_name,
    pick_resources,
    service_hosts,
    vs_hosts,
)
from meshobs.model import ConfigResource, HttpRoute, Layer, Mesh, MeshSnapshot, ServiceRef, WorkloadRef

from .base import Finding, Settings, check, finding, memo
from .config import destination_rules_for, selects, subsets_for_host, target_service, workload_labels
from .split import chi_square_p, judge_split, require_requests

__all__ = ["chi_square_p"]  # re-exported: the split statistics moved to .split

WEIGHT_TOLERANCE = 1.0  # percentage points: Envoy may round weights


def _fmt_weights(weights: dict[str, float]) -> str:
    return "/".join(f"{k or '(no subset)'} {v:g}%" for k, v in sorted(weights.items()))


def _percent(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: round(100.0 * v / total, 1) for k, v in weights.items() if v > 0} if total > 0 else {}


def _refs(owners: Iterable[str]) -> tuple[WorkloadRef, ...]:
    """The workloads among route-group owners (``ns/name``; a proxy without one is named by id)."""
    return tuple(WorkloadRef(*o.split("/", 1)) for o in sorted(owners) if "/" in o)


def _route_label(route: VsRoute) -> str:
    return route.name or f"#{route.index}"


# -- the effective layer ---------------------------------------------------------------------
def _envoy_weights(route: HttpRoute, hosts: set[str]) -> dict[str, float] | None:
    """Subset -> weight of one Envoy route, None when it does not send to this service."""
    out: dict[str, float] = {}
    for d in route.destinations:
        parsed = parse_cluster_name(d.cluster)
        if parsed is None or parsed.host not in hosts:
            return None
        out[parsed.subset or ""] = out.get(parsed.subset or "", 0) + d.weight
    return out or None


_RouteGroup = tuple[int, str, list[HttpRoute]]  # (position in the mesh, workload, routes of one virtual host)


def _routes_by_host(snapshot: MeshSnapshot) -> dict[str, list[_RouteGroup]]:
    """Destination host -> the proxies' virtual-host route groups that send to it.

    Built once per snapshot: walking every proxy's routes for every service made ``--all``
    cost services x proxies x routes. A group is listed under every host its routes name.
    """
    out: dict[str, list[_RouteGroup]] = {}
    position = 0
    for proxy in snapshot.proxies:
        owner = str(proxy.workload) if proxy.workload else proxy.id
        groups: dict[tuple[str, str], list[HttpRoute]] = {}
        for r in proxy.routes:
            groups.setdefault((r.route_config, r.virtual_host), []).append(r)
        for routes in groups.values():
            hosts: set[str] = set()
            for r in routes:
                parsed = [parse_cluster_name(d.cluster) for d in r.destinations]
                hosts.update(c.host for c in parsed if c is not None)
            for host in hosts:
                out.setdefault(host, []).append((position, owner, routes))
            position += 1
    return out


def _envoy_route_groups(snapshot: MeshSnapshot, hosts: set[str]) -> Iterator[tuple[str, list[HttpRoute]]]:
    """(workload, the routes of one virtual host) for every proxy routing to ``hosts``, in proxy order."""
    index = memo(snapshot, "config_routes.routes_by_host", _routes_by_host)
    candidates = {position: (owner, routes) for h in hosts for position, owner, routes in index.get(h, ())}
    for position in sorted(candidates):
        owner, routes = candidates[position]
        # The index is by any host named; a group counts only if one route sends to this service alone.
        if any(_envoy_weights(r, hosts) is not None for r in routes):
            yield owner, routes


def _pair(vs_routes: list[VsRoute], envoy: list[HttpRoute]) -> Iterator[tuple[VsRoute, HttpRoute]]:
    """Match VirtualService routes to Envoy routes: by name, else by position when the counts agree."""
    by_name = {r.name: r for r in envoy if r.name}
    same_length = len(vs_routes) == len(envoy)
    for i, vr in enumerate(vs_routes):
        if vr.name and vr.name in by_name:
            yield vr, by_name[vr.name]
        elif same_length:
            yield vr, envoy[i]


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
    return _own(http_routes(vs), hosts)


def _own(routes: list[VsRoute], hosts: set[str]) -> list[VsRoute]:
    """The routes that send only to ``hosts``."""
    return [r for r in routes if r.destinations and all(d.host in hosts for d in r.destinations)]


_IntendedPair = tuple[ConfigResource, list[VsRoute], ConfigResource, list[VsRoute]]


def _intended_pairs(snapshot: MeshSnapshot) -> dict[str, list[tuple[int, _IntendedPair]]]:
    """Destination host -> (position, live VirtualService and its Git twin, both parsed).

    Built once per snapshot so intended_drift does not re-parse every live VirtualService per
    service. Only pairs whose live routes name the host can yield findings for it.
    """
    intended = {r.key: r for r in snapshot.config_of(VIRTUAL_SERVICE, Layer.INTENDED)}
    out: dict[str, list[tuple[int, _IntendedPair]]] = {}
    for position, live_vs in enumerate(snapshot.config_of(VIRTUAL_SERVICE, Layer.LIVE)):
        git_vs = intended.get(live_vs.key)
        if git_vs is None:
            continue
        live_routes = http_routes(live_vs)
        pair = (live_vs, live_routes, git_vs, http_routes(git_vs))
        for host in {d.host for r in live_routes for d in r.destinations}:
            out.setdefault(host, []).append((position, pair))
    return out


@check("config.weight_drift", Category.CONFIG, ("config", "proxies"), ("MSH0203",), mesh=Mesh.ISTIO)
def weight_drift(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Route weights in the VirtualService differ from the weights the callers' Envoys route by."""
    vs = _sidecar_vs(snapshot, service)
    if vs is None:
        return
    hosts = service_hosts(target_service(snapshot, service))
    vs_routes = _own_routes(vs, hosts)
    drift: dict[tuple[int, str], dict[str, Any]] = {}  # (route, effective weights) -> workloads
    for owner, envoy_routes in _envoy_route_groups(snapshot, hosts):
        for vr, er in _pair(vs_routes, envoy_routes):
            live = _percent({k: float(v) for k, v in vr.weights().items()})
            eff_raw = _envoy_weights(er, hosts)
            if eff_raw is None:
                continue
            eff = _percent(eff_raw)
            keys = set(live) | set(eff)
            if max(abs(live.get(k, 0.0) - eff.get(k, 0.0)) for k in keys) > WEIGHT_TOLERANCE:
                entry = drift.setdefault((vr.index, _fmt_weights(eff)), {"route": vr, "live": live, "eff": eff,
                                                                        "workloads": set()})
                entry["workloads"].add(owner)
    for (_, eff_text), d in sorted(drift.items(), key=lambda kv: kv[0]):
        workloads = sorted(d["workloads"])
        yield finding("MSH0203", "config.weight_drift", f"VirtualService {vs.namespace}/{vs.name}",
                      service=service, workloads=_refs(workloads), route=_route_label(d["route"]),
                      virtual_service=f"{vs.namespace}/{vs.name}",
                      live=_fmt_weights(d["live"]), effective=eff_text, proxies=", ".join(workloads),
                      evidence={"route": _route_label(d["route"]), "live_weights": d["live"],
                                "effective_weights": d["eff"], "proxies_of": workloads},
                      magnitude=max(abs(d["live"].get(k, 0.0) - d["eff"].get(k, 0.0))
                                    for k in set(d["live"]) | set(d["eff"])),
                      hint="the proxies did not take the VirtualService: compare with istioctl proxy-config "
                           "routes <pod> -o json, check istioctl proxy-status for STALE RDS and istiod's "
                           "logs for rejected pushes")


def _policy(vr: VsRoute) -> dict[str, object]:
    """The settings a VirtualService route sets explicitly (unset ones are not compared)."""
    out: dict[str, object] = {}
    if vr.timeout_s is not None:
        out["timeout"] = vr.timeout_s
    if vr.retries is not None:
        out["retries.attempts"] = vr.retries.attempts
        if vr.retries.per_try_timeout_s is not None:
            out["retries.perTryTimeout"] = vr.retries.per_try_timeout_s
        if vr.retries.retry_on:
            out["retries.retryOn"] = ",".join(sorted(vr.retries.retry_on.split(",")))
    return out


def _envoy_policy(er: HttpRoute) -> dict[str, object]:
    return {"timeout": er.timeout_s or 0.0, "retries.attempts": er.retry_attempts or 0,
            "retries.perTryTimeout": er.per_try_timeout_s,
            "retries.retryOn": ",".join(sorted(er.retry_on.split(","))) if er.retry_on else None}


def _show(setting: str, value: object) -> str:
    if isinstance(value, float) and setting != "retries.attempts":
        return f"{value:g}s"
    return str(value)


@check("config.policy_drift", Category.CONFIG, ("config", "proxies"), ("MSH0204",), mesh=Mesh.ISTIO)
def policy_drift(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Retries or timeouts in the VirtualService differ from those in the callers' Envoy routes."""
    vs = _sidecar_vs(snapshot, service)
    if vs is None:
        return
    hosts = service_hosts(target_service(snapshot, service))
    vs_routes = _own_routes(vs, hosts)
    drift: dict[tuple[int, str, str], tuple[VsRoute, object, set[str]]] = {}
    for owner, envoy_routes in _envoy_route_groups(snapshot, hosts):
        for vr, er in _pair(vs_routes, envoy_routes):
            eff = _envoy_policy(er)
            for setting, live in _policy(vr).items():
                actual = eff.get(setting)
                if actual is None:
                    continue
                differs = (abs(float(live) - float(actual)) > 1e-3  # type: ignore[arg-type]
                           if isinstance(live, (int, float)) else live != actual)
                if differs:
                    key = (vr.index, setting, repr(actual))
                    drift.setdefault(key, (vr, actual, set()))[2].add(owner)
    for (_, setting, _), (vr, actual, owners) in sorted(drift.items(), key=lambda kv: kv[0]):
        live = _policy(vr)[setting]
        yield finding("MSH0204", "config.policy_drift", f"VirtualService {vs.namespace}/{vs.name}",
                      service=service, workloads=_refs(owners), setting=setting, route=_route_label(vr),
                      virtual_service=f"{vs.namespace}/{vs.name}", live=_show(setting, live),
                      effective=_show(setting, actual), proxies=", ".join(sorted(owners)),
                      evidence={"setting": setting, "live": live, "effective": actual, "proxies_of": sorted(owners)},
                      hint="compare istioctl proxy-config routes <pod> -o json with the VirtualService; a "
                           "stale proxy (istioctl proxy-status) or an EnvoyFilter patching routes explains it")


@check("config.intended_drift", Category.CONFIG, ("config",), ("MSH0207",), mesh=Mesh.ISTIO)
def intended_drift(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The live VirtualService's weights, retries or timeouts differ from the intended (Git) one."""
    hosts = service_hosts(target_service(snapshot, service))
    index = memo(snapshot, "config_routes.intended_pairs", _intended_pairs)
    candidates = {position: pair for h in hosts for position, pair in index.get(h, ())}
    for position in sorted(candidates):
        live_vs, live_parsed, git_vs, git_parsed = candidates[position]
        live_routes, git_routes = _own(live_parsed, hosts), _own(git_parsed, hosts)
        for lr, gr in zip(live_routes, git_routes):
            live = {**_policy(lr), "weights": _fmt_weights(_percent({k: float(v) for k, v in lr.weights().items()}))}
            git = {**_policy(gr), "weights": _fmt_weights(_percent({k: float(v) for k, v in gr.weights().items()}))}
            for setting in sorted(set(live) | set(git)):
                if live.get(setting) != git.get(setting):
                    lv, gv = live.get(setting, "unset"), git.get(setting, "unset")
                    yield finding("MSH0207", "config.intended_drift",
                                  f"VirtualService {live_vs.namespace}/{live_vs.name}", service=service,
                                  setting=setting, route=_route_label(lr),
                                  virtual_service=f"{live_vs.namespace}/{live_vs.name}",
                                  live=_show(setting, lv), intended=_show(setting, gv),
                                  origin=git_vs.origin or "the intended manifests",
                                  evidence={"setting": setting, "live": lv, "intended": gv,
                                            "intended_origin": git_vs.origin},
                                  hint="someone edited the cluster by hand: re-apply the manifests from Git "
                                       "(or commit the change there) so the two agree")


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
    host = next(iter(default.destinations)).host
    subsets = subsets_for_host(destination_rules_for(snapshot, [host]), host)
    counts: dict[str, float] = {}
    callers: set[WorkloadRef] = set()
    for e in snapshot.edges_into(service):
        w = snapshot.workload(e.destination_workload) if e.destination_workload else None
        if w is None or e.request_rate <= 0:
            continue
        callers.add(e.source)
        labels = workload_labels(w)
        subset = next((name for name, (_, sel) in sorted(subsets.items()) if sel and selects(sel, labels)), None)
        if subset is not None:
            counts[subset] = counts.get(subset, 0.0) + e.request_rate * snapshot.window_s
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
