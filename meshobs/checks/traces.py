"""Slow hops: which operation holds up requests through the service, over many traces.

For every trace through the target service, the critical path of the service's topmost span
(its entry into the service) is computed the Jaeger UI way (see ``meshobs.critical_path``);
the paths are aggregated per hop (service + operation) and ranked by their share of all
critical-path time. The dominant hop is reported with its p50/p99 self time on the path and
example trace ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.critical_path import Section, critical_path, rank_hops
from meshobs.model import MeshSnapshot, ServiceRef, Span, Trace

from .base import CouldNotCheck, Finding, Settings, check, finding

MIN_TRACES = 5  # fewer traces say nothing about a distribution
DOMINANT_SHARE = 0.5  # one hop holds at least half of the critical-path time ...
SLOW_FRACTION_OF_P99 = 0.25  # ... and its p99 self time alone is a quarter of the p99 threshold


def span_service_matches(span_service: str, service: ServiceRef) -> bool:
    """Jaeger service names for Istio are ``name.namespace`` (or plain ``name``)."""
    return span_service in (service.name, f"{service.name}.{service.namespace}", str(service))


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
    """Traces with a span of ``service``, via the snapshot's per-span-service index (the
    handful of distinct span service names is matched, not every trace)."""
    seen: dict[str, Trace] = {}
    for name in snapshot.derived("traces.span_services", _span_services):
        if span_service_matches(name, service):
            for trace in snapshot.traces_through(name):
                seen.setdefault(trace.trace_id, trace)
    return list(seen.values())


def _span_services(snapshot: MeshSnapshot) -> list[str]:
    return sorted({s.service for t in snapshot.traces for s in t.spans})


def _resolve(snapshot: MeshSnapshot, span_service: str, target: ServiceRef) -> ServiceRef | None:
    if span_service_matches(span_service, target):
        return target
    name, _, ns = span_service.partition(".")
    found = snapshot.find_services(name, ns or None) or snapshot.find_services(name)
    return found[0].ref if len(found) == 1 else None


@check("traces.slow_hop", Category.TRACES, ("traces",), ("MSH0501", "MSH0502"))
def slow_hop(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """One hop dominates the critical path of requests through the service."""
    paths: list[tuple[str, list[Section]]] = []
    for trace in _traces_of(snapshot, service):
        sections: list[Section] = []
        for entry in entry_spans(trace, service):
            sections.extend(critical_path(trace, entry.span_id))
        if sections:
            paths.append((trace.trace_id, sections))
    if len(paths) < MIN_TRACES:
        raise CouldNotCheck(f"{len(paths)} trace(s) through {service}, need at least {MIN_TRACES} to say which "
                            "hop holds requests up")
    ranked = rank_hops(paths)
    if not ranked:
        return
    top = ranked[0]
    hop = f"{top.service} {top.operation}"
    slow = top.share >= DOMINANT_SHARE and top.p99_us / 1000 >= settings.p99_ms * SLOW_FRACTION_OF_P99
    if not slow and top.share < DOMINANT_SHARE:
        return  # no hop dominates: saying which one is largest would be noise on every service
    evidence = {
        "hop": {"service": top.service, "operation": top.operation},
        "share": round(top.share, 3), "p50_self_ms": round(top.p50_us / 1000, 2),
        "p99_self_ms": round(top.p99_us / 1000, 2), "traces": len(paths), "traces_with_hop": top.traces,
        "example_trace_ids": list(top.example_trace_ids),
        "ranking": [{"hop": f"{h.service} {h.operation}", "share": round(h.share, 3),
                     "p99_self_ms": round(h.p99_us / 1000, 2)} for h in ranked[:5]],
    }
    yield finding("MSH0501" if slow else "MSH0502", "traces.slow_hop", f"Hop {top.service} {top.operation}",
                  service=_resolve(snapshot, top.service, service) or service, hop=hop, through=str(service),
                  share=top.share,
                  p50_ms=top.p50_us / 1000, p99_ms=top.p99_us / 1000, traces=len(paths),
                  evidence={**evidence, "through": str(service)}, magnitude=top.share * top.p99_us / 1000,
                  hint=f"open an example trace in Jaeger ({', '.join(top.example_trace_ids)}), switch on the "
                       f"critical path, and look at why {top.operation} in {top.service} is slow "
                       "(its own spans, logs and resource usage)")
