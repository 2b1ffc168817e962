"""Retries that hide a failing service, and timeouts that point at a slow one.

Both compare the two views Istio keeps of every call between two sidecars: the caller's proxy
reports what the caller got (after its retries, or its timeout), the destination's proxy reports
every attempt it answered and how long it took. A service can fail a third of its attempts while
its callers see well under 1 % (their retries succeed); a caller's ``504 UT`` is the
destination's ``0 DC`` (the caller hung up) on a request it was still working on.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.flags import meaning
from meshobs.istio_config import host_matches, http_routes, pick_resources, vs_hosts
from meshobs.model import Edge, Mesh, MeshSnapshot, Reporter, ServiceRef

from .base import CouldNotCheck, Finding, Settings, check, finding
from .intended import as_callers_see
from .traffic import _ms, _pct, _r, clusters_for

RETRY_COUNTERS = ("upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_retry_limit_exceeded",
                  "upstream_rq_retry_overflow")
# Response flags of a request the caller's proxy (or the destination's stream) gave up on in time.
TIMEOUT_FLAGS = frozenset({"UT", "SI", "DT", "UMSDR"})
# Retries explain the gap when the destination answered this many attempts per request, or more.
RETRY_ATTEMPTS = 1.05
_BLIND = {Mesh.APPMESH: "CloudWatch and X-Ray report each call once, not the caller's and the "
                        "destination's views side by side"}


def _inbound(snapshot: MeshSnapshot, service: ServiceRef) -> list[Edge]:
    edges = as_callers_see(snapshot, snapshot.served_edges(service))
    if not any(e.request_rate > 0 for e in edges):
        raise CouldNotCheck(f"no requests into {service} in the window")
    return edges


def _retry_counters(snapshot: MeshSnapshot, service: ServiceRef) -> tuple[dict[str, int], list[str]]:
    """The callers' Envoy retry counters for ``service`` (cumulative since each proxy started)."""
    totals = dict.fromkeys(RETRY_COUNTERS, 0)
    proxies: list[str] = []
    for p, c in clusters_for(snapshot, service):
        counted = {k: c.counter(k) for k in RETRY_COUNTERS}
        if any(counted.values()):
            proxies.append(p.id)
            for k, v in counted.items():
                totals[k] += v
    return totals, sorted(set(proxies))


@check("traffic.retries", Category.TRAFFIC, ("requests",), ("MSH0412",), uses=("latency", "proxies", "config"),
       blind_on=_BLIND)
def retries(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The service fails a share of the attempts it answers above the threshold, while its
    callers, retrying, see far fewer errors: the retries hide the fault (and cost latency)."""
    inbound = _inbound(snapshot, service)
    both = [e for e in inbound if e.destination_responses]
    if not both:
        if any(e.reporter is Reporter.SOURCE for e in inbound):
            raise CouldNotCheck(f"only the callers' proxies report the calls into {service} (no sidecar on it?), "
                                "so its own answers cannot be compared with what callers get")
        return  # callers without a proxy of their own: the mesh retries nothing for them
    attempts = sum(e.destination_request_rate for e in both)
    own_errors = sum(e.destination_error_rate for e in both)
    rps = sum(e.request_rate for e in both)
    seen_errors = sum(e.error_rate for e in both)
    if attempts <= 0 or rps <= 0:
        return
    own, seen = own_errors / attempts, seen_errors / rps
    if own <= settings.error_ratio or seen > own / 2:
        return
    counters, proxies = _retry_counters(snapshot, service)
    if attempts < RETRY_ATTEMPTS * rps and not counters["upstream_rq_retry"]:
        return  # the gap is not retries (a caller without retries reports every failure)
    by_caller: dict[str, dict[str, float]] = {}
    for e in both:
        row = by_caller.setdefault(str(snapshot.caller_of(e) or e.source),
                                   {"rps": 0.0, "attempts_rps": 0.0, "error_rps": 0.0, "own_error_rps": 0.0})
        row["rps"] += e.request_rate
        row["attempts_rps"] += e.destination_request_rate
        row["error_rps"] += e.error_rate
        row["own_error_rps"] += e.destination_error_rate
    latency = [(e.latency.p99, e.destination_latency.p99) for e in both
               if e.latency and e.destination_latency and e.latency.p99 and e.destination_latency.p99]
    caller_p99 = max((c for c, _ in latency), default=None)
    own_p99 = max((o for _, o in latency), default=None)
    seen_flags: dict[str, float] = {}
    for e in both:
        for flag, rate in e.rate_by_flag(errors_only=True).items():
            seen_flags[flag] = seen_flags.get(flag, 0.0) + rate
    parts = [f"{len(by_caller)} caller(s) retried {_r(attempts - rps)} times/s"]
    if counters["upstream_rq_retry"]:
        parts.append(f"Envoy counts {counters['upstream_rq_retry']} retries, {counters['upstream_rq_retry_success']} "
                     f"succeeded, {counters['upstream_rq_retry_limit_exceeded']} ran out of attempts, "
                     f"{counters['upstream_rq_retry_overflow']} refused by the retry budget on "
                     f"{len(proxies)} caller proxies")
    if caller_p99 is not None and own_p99 is not None:
        parts.append(f"p99 as callers see it {_ms(caller_p99)} ms vs {_ms(own_p99)} ms per attempt")
    yield finding("MSH0412", "traffic.retries", f"Service {service}", service=service,
                  evidence={"attempts_rps": _r(attempts), "own_error_rps": _r(own_errors), "own_error_ratio": _r(own),
                            "rps": _r(rps), "error_rps": _r(seen_errors), "error_ratio": _r(seen),
                            "threshold": settings.error_ratio, "retries_per_request": _r(attempts / rps - 1),
                            "caller_error_flags": {f: _r(v) for f, v in sorted(seen_flags.items())},
                            "retry_counters": counters, "retry_counters_on": proxies,
                            "caller_p99_ms": _r(caller_p99) if caller_p99 is not None else None,
                            "own_p99_ms": _r(own_p99) if own_p99 is not None else None,
                            "by_caller": {k: {m: _r(v) for m, v in row.items()}
                                          for k, row in sorted(by_caller.items())}},
                  magnitude=own_errors,
                  hint=f"{service}'s own errors are the fault: read its logs and the errors' codes on its side "
                       f"(reporter=\"destination\"); the callers' retry policy (VirtualService retries) only "
                       f"hides them, at the cost of latency and load",
                  own_pct=_pct(own), attempts_rps=_r(attempts), seen_pct=_pct(seen), rps=_r(rps),
                  retry_summary="; ".join(parts))


def _route_timeouts(snapshot: MeshSnapshot, service: ServiceRef) -> list[str]:
    """The request timeouts configured for the service's hosts (VirtualService routes)."""
    svc = snapshot.service(service)
    hosts = {f"{service.name}.{service.namespace}.svc.cluster.local", *(svc.hosts if svc else ())}
    out: list[str] = []
    for vs in pick_resources(snapshot, "VirtualService"):
        if not any(host_matches(h, x) for h in vs_hosts(vs) for x in hosts):
            continue
        for r in http_routes(vs):
            if r.timeout_s is not None:
                out.append(f"{r.timeout_s:g} s route timeout of VirtualService {vs.namespace}/{vs.name}")
            if r.retries is not None and r.retries.per_try_timeout_s is not None:
                out.append(f"{r.retries.per_try_timeout_s:g} s per-try timeout of VirtualService "
                           f"{vs.namespace}/{vs.name}")
    return sorted(set(out))


@check("traffic.timeouts", Category.TRAFFIC, ("requests",), ("MSH0413",), uses=("latency", "config"))
def timeouts(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Callers give up waiting for the service (UT, SI, DT, UMSDR) on more than the error
    threshold of their requests: the service (or what it waits for) is slower than their timeout."""
    inbound = _inbound(snapshot, service)
    rps = sum(e.request_rate for e in inbound)
    timed_out: dict[str, float] = {}
    for e in inbound:
        for r in e.responses:
            if r.is_error and TIMEOUT_FLAGS & set(r.flag_list):
                timed_out[f"{r.outcome} {r.flags}"] = timed_out.get(f"{r.outcome} {r.flags}", 0.0) + r.rate
    total = sum(timed_out.values())
    if rps <= 0 or total / rps <= settings.error_ratio:
        return
    # How long the service itself takes: its own proxy's view when it reports, else the callers'
    # (capped by their timeout, so a lower bound).
    own = [e.destination_latency for e in inbound if e.destination_latency is not None]
    side = "its own proxy"
    if not own:
        own = [e.latency for e in inbound if e.latency is not None]
        side = "its callers (capped by their timeout)"
    p50 = max((lat.p50 for lat in own if lat.p50 is not None), default=None)
    p99 = max((lat.p99 for lat in own if lat.p99 is not None), default=None)
    hung_up = sum(r.rate for e in inbound for r in e.destination_responses if "DC" in r.flag_list)
    limits = _route_timeouts(snapshot, service)
    top_code, top_rate = max(timed_out.items(), key=lambda kv: kv[1])
    flag = top_code.split(" ", 1)[1]
    yield finding("MSH0413", "traffic.timeouts", f"Service {service}", service=service,
                  evidence={"rps": _r(rps), "timeouts_rps": _r(total), "timeout_ratio": _r(total / rps),
                            "by_code": {k: _r(v) for k, v in sorted(timed_out.items())},
                            "own_p50_ms": _r(p50) if p50 is not None else None,
                            "own_p99_ms": _r(p99) if p99 is not None else None, "latency_seen_by": side,
                            "destination_disconnects_rps": _r(hung_up), "timeouts_configured": limits,
                            "callers": sorted({str(snapshot.caller_of(e) or e.source) for e in inbound
                                               if any(TIMEOUT_FLAGS & set(r.flag_list) for r in e.responses)})},
                  magnitude=total,
                  hint=f"find what {service} waits for (its slowest spans in the traces, its database, its own "
                       f"callees); raising the callers' timeout only moves the wait upstream",
                  timeouts_rps=_r(total), rps=_r(rps),
                  top=f"{top_code} = {'; '.join(meaning(f) for f in flag.split(','))}, {_r(top_rate)} req/s",
                  own_p50_ms=_ms(p50) if p50 is not None else "?", own_p99_ms=_ms(p99) if p99 is not None else "?",
                  limit=f" (over the {limits[0]})" if limits else "")
