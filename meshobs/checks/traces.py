"""Slow hops: which operation holds up requests through the service, over many traces.

For every trace through the target service, the critical path of the service's topmost spans
(its entries into the service) is computed the Jaeger UI way (see ``meshobs.critical_path``)
and the paths are aggregated per hop (service + operation), ranked by share of critical-path
time.

A hop is called slow (MSH0501, a warning the engine can rank as the cause) only when the
requests it holds up are part of a latency problem, judged against yardsticks the user set:

* a *breach*: the service's p99 (as the latency check reads it from the metrics: its worst
  inbound edge) is over ``thresholds.p99_ms``, or over ``latency_regression`` times the
  ``--baseline``'s; without metrics for the service, more than 1 % (and at least two) of its
  traced requests over the threshold;
* that breach is the service's own, or an *upstream* service's whose traced requests pass
  through it (the slow hop of a breaching frontend usually sits several services below it);
* the hop holds at least half of the critical-path time of the service's requests, and its p99
  self time alone is at least a quarter of the threshold (so that it matters to the breach).

A service over its own threshold whose time no single hop dominates gets the largest hop as
information (MSH0502). A healthy mesh gets neither, however spiky a service's latency within
its threshold (a batch job's long tail is not a slow hop) and however much one hop dominates
fast requests. MSH0502 is also given for any service when asked for (``diagnose --hops``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.critical_path import HopStats, critical_paths, rank_hops
from meshobs.model import MeshSnapshot, ServiceRef, Span, Trace
from meshobs.trace_names import span_names, span_service_matches

from .base import CouldNotCheck, Finding, Settings, check, finding
from .traffic import inbound_p99

MIN_TRACES = 5  # fewer traces say nothing about a distribution
MIN_SLOW = 2  # one slow request in a handful is an outlier, not a tail
SLOW_FRACTION = 0.01  # the p99: more than 1 % of the requests over the threshold
DOMINANT_SHARE = 0.5  # one hop holds at least half of the critical-path time ...
SLOW_FRACTION_OF_P99 = 0.25  # ... and its p99 self time alone is a quarter of the p99 threshold


def entry_spans(trace: Trace, service: ServiceRef) -> list[Span]:
    """The service's topmost spans in a trace: its spans whose parent belongs to another service."""
    by_id = {s.span_id: s for s in trace.spans}
    out = []
    for s in trace.spans:
        if not span_service_matches(s.service, service):
            continue
        parent = by_id.get(s.parent_id) if s.parent_id else None
        if parent is None or not span_service_matches(parent.service, service):
            out.append(s)
    return out


def _traces_of(snapshot: MeshSnapshot, service: ServiceRef) -> list[Trace]:
    """Traces with a span of ``service``, via the snapshot's per-span-service index: the names
    a tracer can give the service (:func:`span_names`) looked up among the span services, in
    their sorted order, not every span service matched per service."""
    seen: dict[str, Trace] = {}
    present = snapshot.derived("traces.span_services", _span_services)
    for name in sorted({n for n in span_names(service) if n in present}):
        for trace in snapshot.traces_through(name):
            seen.setdefault(trace.trace_id, trace)
    return list(seen.values())


def _span_services(snapshot: MeshSnapshot) -> frozenset[str]:
    return frozenset(s.service for t in snapshot.traces for s in t.spans)


def _resolve(snapshot: MeshSnapshot, span_service: str, target: ServiceRef) -> ServiceRef | None:
    if span_service_matches(span_service, target):
        return target
    name, _, ns = span_service.partition(".")
    found = snapshot.find_services(name, ns or None) or snapshot.find_services(name)
    return found[0].ref if len(found) == 1 else None


@check("traces.slow_hop", Category.TRACES, ("traces",), ("MSH0501", "MSH0502"),
       uses=("requests", "latency"))  # the p99 the latency check reads: the yardstick of "slow"
def slow_hop(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The slow requests through the service spend most of their critical path in one hop."""
    traces = _traces_of(snapshot, service)
    entries = {t.trace_id: entry_spans(t, service) for t in traces}
    paths = [(tid, sections) for tid, sections in
             critical_paths(traces, lambda t: [s.span_id for s in entries[t.trace_id]]) if sections]
    if len(paths) < MIN_TRACES:
        raise CouldNotCheck(f"{len(paths)} trace(s) through {service}, need at least {MIN_TRACES} to say which "
                            "hop holds requests up")
    # a request's time through the service: its longest entry span in the trace
    took_us = sorted(max(s.duration_us for s in entries[tid]) for tid, _ in paths)
    traced_over = sum(1 for t in took_us if t > settings.p99_ms * 1000)
    own = _breach(snapshot, service, settings)
    if own is None and traced_over >= max(MIN_SLOW, math.ceil(SLOW_FRACTION * len(paths))):
        own = f"{service}: traced p99 over the {settings.p99_ms:.0f} ms threshold"
    context = own or next((why for ref in _upstream(snapshot, traces, entries, service)
                           if (why := _breach(snapshot, ref, settings))), None)
    ranked = rank_hops(paths)
    top = ranked[0]
    if context and top.share >= DOMINANT_SHARE and top.p99_us >= settings.p99_ms * 1000 * SLOW_FRACTION_OF_P99:
        yield _hop_finding("MSH0501", snapshot, service, ranked, len(paths), context, settings, took_us)
    elif own or settings.explain_hops:
        yield _hop_finding("MSH0502", snapshot, service, ranked, len(paths), own or "asked for", settings, took_us)


def _breach(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> str | None:
    """Why the service's latency is a problem by its metrics ('' when it is not, None when the
    metrics have no latency for it): over the p99 threshold, or regressed against the baseline."""
    measured = inbound_p99(snapshot, service)
    if measured is None:
        return None
    p99 = measured[0]
    if p99 > settings.p99_ms:
        return f"{service}: p99 {p99:.0f} ms over the {settings.p99_ms:.0f} ms threshold"
    base = inbound_p99(settings.baseline, service) if settings.baseline is not None else None
    if base is not None and base[0] > 0 and p99 / base[0] > settings.latency_regression:
        return f"{service}: p99 {p99:.0f} ms is {p99 / base[0]:.1f}x the baseline's {base[0]:.0f} ms"
    return ""


def _upstream(snapshot: MeshSnapshot, traces: list[Trace], entries: dict[str, list[Span]],
              service: ServiceRef) -> list[ServiceRef]:
    """The services above ``service`` in its traces (its callers, theirs, up to the root)."""
    names: set[str] = set()
    for trace in traces:
        by_id = {s.span_id: s for s in trace.spans}
        for entry in entries[trace.trace_id]:
            seen: set[str] = set()
            parent = by_id.get(entry.parent_id) if entry.parent_id else None
            while parent is not None and parent.span_id not in seen:  # broken data may loop
                seen.add(parent.span_id)
                names.add(parent.service)
                parent = by_id.get(parent.parent_id) if parent.parent_id else None
    refs = {ref for name in names if (ref := _resolve(snapshot, name, service)) is not None and ref != service}
    return sorted(refs)


def _hop_finding(code: str, snapshot: MeshSnapshot, service: ServiceRef, ranked: list[HopStats], traces: int,
                 why: str, settings: Settings, took_us: list[int]) -> Finding:
    top = ranked[0]
    hop = f"{top.service} {top.operation}"
    p99_request_ms = took_us[min(len(took_us) - 1, math.ceil(0.99 * len(took_us)) - 1)] / 1000
    evidence = {
        "hop": {"service": top.service, "operation": top.operation},
        "share": round(top.share, 3), "p50_self_ms": round(top.p50_us / 1000, 2),
        "p99_self_ms": round(top.p99_us / 1000, 2), "traces": traces, "because": why,
        "threshold_ms": settings.p99_ms, "request_p99_ms": round(p99_request_ms, 2),
        "traces_with_hop": top.traces, "example_trace_ids": list(top.example_trace_ids),
        "ranking": [{"hop": f"{h.service} {h.operation}", "share": round(h.share, 3),
                     "p99_self_ms": round(h.p99_us / 1000, 2)} for h in ranked[:5]],
        "through": str(service),
    }
    return finding(code, "traces.slow_hop", f"Hop {top.service} {top.operation}",
                   service=_resolve(snapshot, top.service, service) or service, hop=hop, through=str(service),
                   share=top.share, p50_ms=top.p50_us / 1000, p99_ms=top.p99_us / 1000, traces=traces,
                   why=why, evidence=evidence,
                   magnitude=top.share * top.p99_us / 1000 if code == "MSH0501" else 0.0,
                   hint=f"open an example trace in Jaeger ({', '.join(top.example_trace_ids)}), switch on the "
                        f"critical path, and look at why {top.operation} in {top.service} is slow "
                        "(its own spans, logs and resource usage)")
