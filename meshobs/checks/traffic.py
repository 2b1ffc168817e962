"""Traffic: errors (by response code and Envoy flag), latency, saturation, endpoint health.

Error rates are judged on the edges into the service (what its callers see) and on its
outbound edges (what it sees from its callees), because a service that answers 503 is usually
passing on a failure one hop further down.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.durations import format_duration
from meshobs.flags import meaning
from meshobs.istio_config import DESTINATION_RULE, destination_rule_for, fqdn, pick_resources
from meshobs.model import Edge, Mesh, MeshSnapshot, Proxy, ServiceRef, UpstreamCluster, WorkloadRef, thaw

from .base import CouldNotCheck, Finding, Settings, check, finding, memo
from .intended import as_callers_see
from .scope import mesh_of

BLACKHOLE = "BlackHoleCluster"  # Istio's catch-all for hosts outside a REGISTRY_ONLY registry


def split_unreached(e: Edge) -> tuple[Edge | None, Edge | None]:
    """An edge no destination workload reported, split into (what a destination outside the
    mesh answered, what never left the caller's proxy).

    Only the caller reports calls to external hosts (PassthroughCluster, ServiceEntry hosts) and
    to pods without a sidecar; an error there without a response flag is the far end's own
    answer. Errors with a flag (UH, UF, NR, URX...) were made by the caller's proxy, and so is
    everything sent to BlackHoleCluster (its route answers 502 itself).
    """
    if e.destination.name == BLACKHOLE:
        return None, e
    local = tuple(r for r in e.responses if r.is_error and r.flag_list)
    if not local:
        return e, None
    rest = tuple(r for r in e.responses if r not in local)
    return (e.with_responses(rest) if rest else None), e.with_responses(local)


def _window(snapshot: MeshSnapshot) -> str:
    return format_duration(snapshot.window_s)


def _too_little_traffic(snapshot: MeshSnapshot, service: ServiceRef, groups: list[list[Edge]],
                        settings: Settings, direction: str) -> None:
    """Raise CouldNotCheck when no group of edges carried enough requests to judge: no data in
    the window is never a pass."""
    best = max((sum(e.request_rate for e in g) for g in groups), default=0.0)
    if best <= 0:
        if any((e.tcp_connections_opened_rate or 0) > 0 for g in groups for e in g):
            return  # TCP only (a database, ztunnel's L4): connections flowed, no request can fail
        raise CouldNotCheck(f"no requests {direction} {service} in the {_window(snapshot)} window")
    if best < settings.min_request_rate:
        # Counted as people count: requests in the window, against what the threshold asks for.
        seen, need = best * snapshot.window_s, settings.min_request_rate * snapshot.window_s
        raise CouldNotCheck(f"{seen:.0f} requests {direction} {service} in the {_window(snapshot)} window, "
                            f"need at least {need:.0f} (thresholds.min_request_rate {settings.min_request_rate:g} "
                            "req/s)")


def require_requests(snapshot: MeshSnapshot, service: ServiceRef, edges: list[Edge], direction: str) -> None:
    """Raise CouldNotCheck when ``edges`` carried no request in the window: a check that found
    nothing on no traffic has not judged anything."""
    if not any(e.request_rate > 0 or (e.tcp_connections_opened_rate or 0) > 0 for e in edges):
        raise CouldNotCheck(f"no requests {direction} {service} in the {_window(snapshot)} window")


def _r(x: float) -> float:
    """Evidence numbers rounded so reports (and golden files) are stable and readable."""
    return round(x, 4)


def _pct(x: float) -> str:
    """A percentage as people read it: 45.0, 1.04 (two decimals below 10 %, so a value just over
    a 1 % threshold does not print as "1.0% (threshold 1.0%)"), 0.5 for thresholds."""
    value = 100 * x
    text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text and value < 10 else text


def _outbound_index(snapshot: MeshSnapshot) -> dict[ServiceRef, list[Edge]]:
    """Edges by calling service, built once: ``snapshot.edges_from`` scans every edge per call."""
    out: dict[ServiceRef, list[Edge]] = defaultdict(list)
    for e in snapshot.edges:
        src = e.source_service
        if src is None:
            w = snapshot.workload(e.source)
            src = w.services[0] if w and w.services else None
        if src is not None:
            out[src].append(e)
    return dict(out)


def outbound_edges(snapshot: MeshSnapshot, service: ServiceRef) -> list[Edge]:
    """Edges whose caller is ``service`` (shared by the engine for the downstream walk)."""
    return memo(snapshot, "traffic.outbound", _outbound_index).get(service, [])


def _clusters_index(snapshot: MeshSnapshot) -> dict[str, list[tuple[Proxy, UpstreamCluster]]]:
    out: dict[str, list[tuple[Proxy, UpstreamCluster]]] = defaultdict(list)
    for p in snapshot.proxies:
        for c in p.clusters:
            if c.direction == "outbound" and c.service_host:
                out[c.service_host].append((p, c))
    return dict(out)


def clusters_for(snapshot: MeshSnapshot, service: ServiceRef) -> list[tuple[Proxy, UpstreamCluster]]:
    """Every caller proxy's outbound cluster for ``service``: how its callers see its endpoints."""
    index = memo(snapshot, "traffic.clusters", _clusters_index)
    svc = snapshot.service(service)
    hosts = {f"{service.name}.{service.namespace}.svc.cluster.local"}
    if svc is not None:
        hosts.update(svc.hosts)
    out: list[tuple[Proxy, UpstreamCluster]] = []
    for h in sorted(hosts):
        out.extend(index.get(h, []))
    return out


def error_breakdown(edges: list[Edge]) -> tuple[dict[str, float], dict[str, dict[str, object]], str]:
    """The errors of ``edges`` by code and by Envoy response flag (each with its meaning), and the
    commonest code and flag pair in words (``"none"`` without errors)."""
    by_code: dict[str, float] = defaultdict(float)
    by_flag: dict[str, float] = defaultdict(float)
    by_pair: dict[tuple[str, str], float] = defaultdict(float)
    for e in edges:
        for code, rate in e.rate_by_code(errors_only=True).items():
            by_code[code] += rate
        for r in e.responses:
            if not r.is_error:
                continue
            # CloudWatch and X-Ray report response-code classes (5xx) and no Envoy flags at all:
            # "-" there means "not reported", not "the upstream answered the error itself".
            flags_of: tuple[str, ...]
            if r.code.endswith("xx"):
                flags_of, pair_flag = (NOT_REPORTED,), NOT_REPORTED
            else:
                flags_of, pair_flag = r.flag_list or ("-",), r.flags or "-"
            for flag in flags_of:
                by_flag[flag] += r.rate
            by_pair[(r.outcome, pair_flag)] += r.rate  # a gRPC failure named by its status too
    flags = {f: {"rps": _r(v), "meaning": _meaning(f)}
             for f, v in sorted(by_flag.items(), key=lambda kv: -kv[1])}
    top = "none"
    if by_pair:
        (code, fl), rate = max(by_pair.items(), key=lambda kv: (kv[1], kv[0]))
        if fl == "-":
            top = f"{code} with no response flag (the upstream answered it), {_r(rate)} req/s"
        elif fl == NOT_REPORTED:
            top = f"{code}, {_r(rate)} req/s (CloudWatch and X-Ray report no response flags)"
        else:
            top = f"{code} {fl} = {'; '.join(_meaning(f) for f in fl.split(','))}, {_r(rate)} req/s"
    return ({c: _r(v) for c, v in sorted(by_code.items(), key=lambda kv: -kv[1])}, flags, top)


NOT_REPORTED = "n/a"


def _meaning(flag: str) -> str:
    if flag == NOT_REPORTED:
        return "not reported: CloudWatch and X-Ray carry no response flags"
    return meaning(flag)


def _judge(edges: list[Edge], settings: Settings) -> tuple[float, float, float] | None:
    rps = sum(e.request_rate for e in edges)
    errors = sum(e.error_rate for e in edges)
    if rps <= 0 or rps < settings.min_request_rate:
        return None
    ratio = errors / rps
    return (rps, errors, ratio) if ratio > settings.error_ratio else None


def _failing_version(service: ServiceRef, inbound: list[Edge], settings: Settings) -> Iterable[Finding]:
    """One version (a canary) fails while its siblings do not: the service-wide ratio can sit
    under the threshold (10 % errors on 10 % of the traffic is 1 %), the version's does not."""
    by_workload: dict[WorkloadRef, list[Edge]] = defaultdict(list)
    for e in inbound:
        if e.destination_workload is not None:
            by_workload[e.destination_workload].append(e)
    if len(by_workload) < 2:
        return
    for workload, edges in sorted(by_workload.items()):
        judged = _judge(edges, settings)
        if judged is None:
            continue
        rps, errors, ratio = judged
        others = [e for w, es in by_workload.items() if w != workload for e in es]
        other_rps = sum(e.request_rate for e in others)
        other_ratio = sum(e.error_rate for e in others) / other_rps if other_rps else 0.0
        # Only when the siblings are healthy (or far better): otherwise the service as a whole fails.
        if other_ratio > settings.error_ratio and ratio < 5 * other_ratio:
            continue
        _codes, by_flag, top = error_breakdown(edges)
        share = rps / (rps + other_rps)
        evidence: dict[str, object] = {"workload": str(workload), "rps": _r(rps), "error_rps": _r(errors),
                                       "error_ratio": _r(ratio), "other_versions_error_ratio": _r(other_ratio),
                                       "traffic_share": _r(share), "by_flag": by_flag}
        hint = (f"roll back or pause the rollout of {workload.name}; its logs and the errors' "
                f"response codes say why it fails where the other versions do not"
                if share < _MOST else
                # It carries most of the traffic: the version in service, not one being rolled out.
                f"{workload.name} takes {_pct(share)} of the calls: it is the version in service, not a "
                f"canary; shift the weight to the versions that work (the "
                f"VirtualService's route weights) while its logs and the errors' response codes say "
                f"why it fails where they do not")
        if next(iter(by_flag), None) == _HUNG_UP:
            # Its callers hang up on it: how slow it is, beside its siblings, is the evidence.
            mine, theirs = worst_p99(edges), worst_p99(others)
            if mine is not None:
                evidence["p99_ms"] = _r(mine[0])
            if theirs is not None:
                evidence["other_versions_p99_ms"] = _r(theirs[0])
            hint = (f"its callers hang up on {workload.name} (DC) where they wait for the other versions: "
                    f"it answers slower than their deadlines; compare its latency with theirs, and roll "
                    f"back what made it slower")
        yield finding("MSH0409", "traffic.error_rate", f"Workload {workload}", service=service,
                      evidence=evidence, magnitude=errors, hint=hint,
                      workload=str(workload), ratio_pct=_pct(ratio), others_pct=_pct(other_ratio), top=top)


# A version taking at least this share of a service's calls is the one in service, not a canary.
_MOST = 0.5
_ERROR_HINT = ("the response flags say where it failed: UH/UF point at the destination's endpoints, "
               "UO at a circuit breaker, RL at the callee's local rate limit, UC at mTLS, NR at routing, "
               "'-' at the application itself")
# DC (downstream connection terminated) on most errors: the caller hung up before the answer
# came (its own deadline, a client's cancel). The destination did not fail; it was slow, and
# its logs show requests served: the flag hint above would send the reader there.
_HUNG_UP = "DC"
_HUNG_UP_HINT = ("most of these errors carry DC (downstream connection terminated): the caller hung up "
                 "before the answer came (its own deadline or a client cancel), so the destination was slow "
                 "rather than failing; compare this hop's latency (p99) with the callers' deadlines")


def _error_hint(by_flag: dict[str, dict[str, object]]) -> str:
    """The hint for an error finding: by the flag most of its errors carry (``by_flag`` comes
    sorted by rate, most first)."""
    return _HUNG_UP_HINT if next(iter(by_flag), None) == _HUNG_UP else _ERROR_HINT


@check("traffic.error_rate", Category.TRAFFIC, ("requests",), ("MSH0401", "MSH0402", "MSH0408", "MSH0409"),
       uses=("config",))
def error_rate(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Error ratio above the threshold on inbound requests, on each outbound destination, and
    on requests that never reached any destination workload."""
    inbound = as_callers_see(snapshot, snapshot.served_edges(service))
    by_dest: dict[ServiceRef, list[Edge]] = defaultdict(list)
    lost: dict[ServiceRef, list[Edge]] = defaultdict(list)
    for e in as_callers_see(snapshot, outbound_edges(snapshot, service)):
        if e.destination_workload is not None:
            by_dest[e.destination].append(e)
            continue
        answered, never = split_unreached(e)
        if answered is not None:
            by_dest[e.destination].append(answered)
        if never is not None:
            lost[e.destination].append(never)
    if not any(e.error_rate > 0 for es in lost.values() for e in es):
        _too_little_traffic(snapshot, service, [inbound, *by_dest.values()], settings, "to or from")
    yield from _failing_version(service, inbound, settings)
    judged = _judge(inbound, settings)
    if judged:
        rps, errors, ratio = judged
        by_code, by_flag, top = error_breakdown(inbound)
        # One caller may have several edges (destination versions, protocols): sum them.
        per_caller: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for e in inbound:
            acc = per_caller[str(e.source)]
            acc[0] += e.request_rate
            acc[1] += e.error_rate
        by_source = {caller: {"rps": _r(v[0]), "error_rps": _r(v[1])}
                     for caller, v in sorted(per_caller.items(), key=lambda kv: (-kv[1][1], kv[0]))
                     if v[1] > 0}
        # Which version answers the errors: a canary shows up here.
        by_workload: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for e in inbound:
            acc = by_workload[str(e.destination_workload)]
            acc[0] += e.request_rate
            acc[1] += e.error_rate
        by_destination = {w: {"rps": _r(v[0]), "error_rps": _r(v[1]),
                              "error_ratio": _r(v[1] / v[0]) if v[0] else 0.0}
                          for w, v in sorted(by_workload.items())}
        yield finding("MSH0401", "traffic.error_rate", f"Service {service}", service=service,
                      evidence={"rps": _r(rps), "error_rps": _r(errors), "error_ratio": _r(ratio),
                                "threshold": settings.error_ratio, "by_code": by_code,
                                "by_flag": by_flag, "by_source": by_source,
                                "by_destination_workload": by_destination},
                      magnitude=errors, hint=_error_hint(by_flag),
                      ratio_pct=_pct(ratio), error_rps=_r(errors), rps=_r(rps),
                      threshold_pct=_pct(settings.error_ratio), top=top)
    for dest in sorted(by_dest):
        judged = _judge(by_dest[dest], settings)
        if not judged:
            continue
        rps, errors, ratio = judged
        by_code, by_flag, top = error_breakdown(by_dest[dest])
        yield finding("MSH0402", "traffic.error_rate", f"Edge {service} -> {dest}", service=service,
                      evidence={"destination": str(dest), "rps": _r(rps), "error_rps": _r(errors),
                                "error_ratio": _r(ratio), "threshold": settings.error_ratio,
                                "by_code": by_code, "by_flag": by_flag,
                                "destination_workloads": sorted({str(e.destination_workload)
                                                                 for e in by_dest[dest]})},
                      magnitude=errors, hint=_error_hint(by_flag),
                      source=str(service), destination=str(dest), ratio_pct=_pct(ratio),
                      error_rps=_r(errors), rps=_r(rps), threshold_pct=_pct(settings.error_ratio),
                      top=top)
    for dest in sorted(lost):
        errors = sum(e.error_rate for e in lost[dest])
        if errors <= 0:
            continue
        by_code, by_flag, top = error_breakdown(lost[dest])
        yield finding("MSH0408", "traffic.error_rate", f"Edge {service} -> {dest}", service=service,
                      evidence={"destination": str(dest), "error_rps": _r(errors),
                                "by_code": by_code, "by_flag": by_flag,
                                "source_workloads": sorted({str(e.source) for e in lost[dest]})},
                      magnitude=errors,
                      hint="only the calling proxy saw these requests: no destination was picked "
                           "(no healthy endpoint, no route, or the connection failed)",
                      source=str(service), destination=str(dest), error_rps=_r(errors), top=top)


def worst_p99(edges: Iterable[Edge]) -> tuple[float, Edge] | None:
    """The worst p99 over the edges that carried traffic, and its edge (quantiles cannot be
    summed): the latency check's reading, and the ranking walk's of a hop."""
    best: tuple[float, Edge] | None = None
    for e in edges:
        if e.latency is None or e.latency.p99 is None or e.request_rate <= 0:
            continue
        if best is None or e.latency.p99 > best[0]:
            best = (e.latency.p99, e)
    return best


def inbound_p99(snapshot: MeshSnapshot, service: ServiceRef) -> tuple[float, Edge] | None:
    """The service's p99 as the latency check judges it: its worst inbound edge's (ms)."""
    return worst_p99(snapshot.served_edges(service))


def _ms(value: float) -> str:
    """Milliseconds as people read them in a message: 973 ms, 42.5 ms, 0.8 ms."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


@check("traffic.latency", Category.TRAFFIC, ("requests", "latency"), ("MSH0403", "MSH0404"), callers=True)
def latency(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Inbound p99 above the threshold, or more than ``latency_regression`` times the baseline."""
    inbound = snapshot.served_edges(service)
    worst = worst_p99(inbound)
    if worst is None:
        _too_little_traffic(snapshot, service, [inbound], settings, "into")
        raise CouldNotCheck(f"no latency quantiles for the requests into {service} (a TCP service, or "
                            "the duration histogram is not collected)")
    p99, edge = worst
    per_source = {str(e.source): e.latency.p99 for e in inbound
                  if e.latency is not None and e.latency.p99 is not None}
    if p99 > settings.p99_ms:
        yield finding("MSH0403", "traffic.latency", f"Service {service}", service=service,
                      evidence={"p99_ms": _r(p99), "threshold_ms": settings.p99_ms,
                                "worst_caller": str(edge.source), "p99_by_caller": per_source},
                      magnitude=p99 / settings.p99_ms,
                      hint="meshobs looks for the slow hop in the traces (05xx findings); "
                           "compare with the p99 of the service's own callees",
                      p99_ms=_ms(p99), threshold_ms=_ms(settings.p99_ms))
    if settings.baseline is not None:
        base = inbound_p99(settings.baseline, service)
        if base is not None and base[0] > 0 and p99 / base[0] > settings.latency_regression:
            factor = p99 / base[0]
            yield finding("MSH0404", "traffic.latency", f"Service {service}", service=service,
                          evidence={"p99_ms": _r(p99), "baseline_p99_ms": _r(base[0]),
                                    "factor": round(factor, 2), "limit": settings.latency_regression},
                          magnitude=factor,
                          hint="compare what changed since the baseline window: deployments, "
                               "config pushes, a slower callee",
                          p99_ms=_ms(p99), factor=round(factor, 1), baseline_ms=_ms(base[0]))


def _connection_pools(snapshot: MeshSnapshot, service: ServiceRef, client_namespaces: Iterable[str]
                      ) -> dict[str, dict[str, object]]:
    """The DestinationRule each overflowing caller uses for ``service`` (Istio's lookup: the
    client's namespace, the service's, the root), with the connection pool it sets: the limits
    the breaker enforces. Subject ("DestinationRule ns/name") -> its trafficPolicy.connectionPool
    (empty when it sets none)."""
    drs = pick_resources(snapshot, DESTINATION_RULE)
    host = fqdn(service.name, service.namespace)
    out: dict[str, dict[str, object]] = {}
    for ns in sorted(set(client_namespaces)):
        dr = destination_rule_for(drs, host, ns, service.namespace)
        if dr is not None:
            pool = (dr.spec.get("trafficPolicy") or {}).get("connectionPool") or {}
            out[f"DestinationRule {dr.namespace}/{dr.name}"] = thaw(pool)
    return out


@check("traffic.circuit_breaker", Category.TRAFFIC, ("proxies|requests",), ("MSH0405",), callers=True,
       uses=("config",))
def circuit_breaker(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Callers' circuit breakers for this service overflow (UO flags in the window, open breakers;
    counters since the proxies started only when the window's requests cannot say)."""
    overflows = 0
    proxies: set[str] = set()
    open_breakers: dict[str, dict[str, int]] = {}
    callers = clusters_for(snapshot, service)
    if not callers:
        # No caller's breaker to read: only the response flags of the requests can tell.
        _too_little_traffic(snapshot, service, [snapshot.edges_into(service)], settings, "into")
    for p, c in callers:
        opened = {k: int(v) for k, v in c.circuit_breaker_open.items() if v}
        if c.overflows > 0 or opened:
            overflows += c.overflows
            proxies.add(p.id)
            if opened:
                open_breakers[f"{p.id} {c.name}"] = opened
    inbound = snapshot.edges_into(service)
    uo = sum(e.rate_by_flag(errors_only=True).get("UO", 0.0) for e in inbound)
    # Envoy's overflow counters add up since the proxy started: with the window's requests at
    # hand and none of them overflowing (no UO), and no breaker open now, they are history (a
    # burst days ago), not a finding. Without request data they are all there is to go by.
    history = bool(overflows) and not open_breakers and uo <= 0 and any(e.responses for e in inbound)
    if (overflows and not history) or open_breakers or uo > 0:
        evidence: dict[str, object] = {"overflows": overflows, "uo_rps": _r(uo),
                                       "caller_proxies": sorted(proxies), "open_breakers": open_breakers}
        # The limits that shed them, from the callers' DestinationRule: the fix is there.
        callers_ns = {e.source.namespace for e in inbound if e.rate_by_flag(errors_only=True).get("UO", 0.0) > 0}
        callers_ns |= {p.namespace for p, _c in callers if p.id in proxies and p.namespace}
        pools = _connection_pools(snapshot, service, callers_ns)
        if pools:
            evidence["connection_pool"] = pools
        yield finding("MSH0405", "traffic.circuit_breaker", f"Service {service}", service=service,
                      evidence=evidence,
                      magnitude=uo or overflows,
                      hint="the callers' DestinationRule connectionPool limits are too low for the "
                           "load, or the service is too slow to drain its queue",
                      overflows=overflows, proxies=len(proxies))


@check("traffic.endpoints", Category.TRAFFIC, ("proxies",), ("MSH0406", "MSH0407"), callers=True)
def endpoints(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Callers' proxies have ejected this service's endpoints (outlier detection) or see none healthy."""
    ejected_by: dict[str, int] = {}
    unhealthy: dict[str, tuple[int, int]] = {}
    appmesh = mesh_of(snapshot, service) is Mesh.APPMESH
    callers = clusters_for(snapshot, service)
    if not callers:
        raise CouldNotCheck(f"no caller's proxy holds a cluster for {service}, so no one's view of its "
                            "endpoints is known")
    for p, c in callers:
        ejected = max(c.outlier_ejections_active, sum(1 for h in c.hosts if h.failed_outlier_check))
        if ejected > 0:
            ejected_by[f"{p.id} {c.name}"] = ejected
        total = c.membership_total if c.membership_total is not None else len(c.hosts)
        healthy = c.membership_healthy if c.membership_healthy is not None else c.healthy_hosts
        if total > 0 and healthy == 0:
            unhealthy[f"{p.id} {c.name}"] = (healthy, total)
    if ejected_by:
        proxies = {k.split(" ", 1)[0] for k in ejected_by}
        worst = max(ejected_by.values())
        yield finding("MSH0406", "traffic.endpoints", f"Service {service}", service=service,
                      evidence={"ejected_by_cluster": ejected_by, "caller_proxies": sorted(proxies)},
                      magnitude=worst,
                      hint="the endpoints failed consecutive requests; look at the service's own "
                           "errors and logs, then the outlier detection settings ("
                           + ("the virtual node listener's outlierDetection" if appmesh
                              else "the DestinationRule's trafficPolicy.outlierDetection") + ")",
                      ejected=worst, proxies=len(proxies))
    if unhealthy:
        proxies = {k.split(" ", 1)[0] for k in unhealthy}
        total = max(t for _h, t in unhealthy.values())
        yield finding("MSH0407", "traffic.endpoints", f"Service {service}", service=service,
                      evidence={"clusters": {k: {"healthy": h, "total": t}
                                             for k, (h, t) in unhealthy.items()}},
                      magnitude=total,
                      hint="callers answer 503 UH; check the pods' readiness and "
                           + ("the virtual node's service discovery" if appmesh
                              else "the DestinationRule subsets' labels"),
                      healthy=0, total=total, proxies=len(proxies))
