"""Pure view model of the service screen (no textual): RED over time, edges, proxies, diagnosis,
critical path of the slowest traces, configuration with drift.

Built in a worker thread: the critical path walks every span of the slowest traces and the
drift comparison reads every proxy's routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshobs.checks.base import Finding
from meshobs.engine.report import CheckResult, Report
from meshobs.model import ConfigResource, Layer, MeshSnapshot, MetricSeries, ServiceRef

from .links import TraceLinks
from .proxy_model import findings_by_proxy, proxy_list_rows
from .rows import TableRow
from .viewmodel import (
    NeighbourRow,
    Red,
    fmt_ms,
    fmt_pct,
    fmt_rate,
    neighbourhood,
    rate_history,
    red_of,
    spark_range,
)
from .yaml_model import drift_words

SLOWEST_TRACES = 5


@dataclass(frozen=True, slots=True)
class HopRow:
    service: str
    operation: str
    share: float
    p50_ms: float
    traces: int

    @property
    def key(self) -> str:
        return f"{self.service}|{self.operation}"

    def cells(self) -> tuple[str, ...]:
        return (self.service, self.operation, f"{self.share * 100:.0f}%", fmt_ms(self.p50_ms), str(self.traces))


@dataclass(frozen=True, slots=True)
class SlowTrace:
    """One of the slowest traces through the service: the whole id and where to see it."""

    trace_id: str
    duration_ms: float
    link: str | None

    @property
    def key(self) -> str:
        return self.trace_id

    def cells(self) -> tuple[str, ...]:
        return (self.trace_id, fmt_ms(self.duration_ms), self.link or "-")


@dataclass(frozen=True)
class ConfigEntry:
    """A live resource that routes to the service and how it drifted: ``drifts`` from
    meshobs.drift (live vs what the proxies run; intended vs live when the snapshot has the
    intended layer). ``checked``: which layer pairs could be compared."""

    resource: ConfigResource
    drifts: list[Any]
    checked: tuple[str, ...]

    @property
    def key(self) -> str:
        return str(self.resource)

    def cells(self) -> tuple[str, ...]:
        n = len(self.drifts)
        state = f"{n} drifted" if n else ("in sync" if self.checked else "not compared")
        return (("≠ " if n else "  ") + str(self.resource), state)

    def lines(self) -> list[str]:
        """Each drifted field in full (wraps under the table)."""
        if not self.drifts:
            pairs = " and ".join(self.checked) or "nothing (no Envoy routes or intended copy to compare with)"
            return [f"{self.resource}: no drift ({'compared ' if self.checked else ''}{pairs}); y shows the YAML"]
        return [drift_words(d) for d in self.drifts]


@dataclass(frozen=True)
class ServiceView:
    ref: ServiceRef
    status: str
    red: Red
    red_sparks: dict[str, str]  # metric -> sparkline
    red_ranges: dict[str, str]  # metric -> "min 11.8 max 12.3"
    has_history: bool
    neighbours: list[NeighbourRow]
    hidden_neighbours: int
    proxies: list[TableRow]
    checks: list[CheckResult]
    findings: list[Finding]
    hops: list[HopRow]
    slowest: list[SlowTrace]
    config: list[ConfigEntry]
    notes: list[str] = field(default_factory=list)  # why a section is empty


def hop_rows(snapshot: MeshSnapshot, ref: ServiceRef, links: TraceLinks) -> tuple[list[HopRow], list[SlowTrace]]:
    """Critical path of the slowest traces through ``ref``, per hop, largest share first."""
    from meshobs.critical_path import critical_path, rank_hops

    names = {f"{ref.name}.{ref.namespace}", ref.name, str(ref)}
    traces = [t for t in snapshot.traces if t.services & names]
    slowest = sorted(traces, key=lambda t: (-t.duration_us, t.trace_id))[:SLOWEST_TRACES]
    hops = rank_hops((t.trace_id, critical_path(t)) for t in slowest)
    rows = [HopRow(h.service, h.operation, h.share, h.p50_us / 1000, h.traces) for h in hops[:10]]
    return rows, [SlowTrace(t.trace_id, t.duration_us / 1000, links.url(t.trace_id)) for t in slowest]


def routes_to(resource: ConfigResource, ref: ServiceRef) -> bool:
    """Does the resource (VirtualService hosts, DestinationRule host) name the service?"""
    names = {ref.name, f"{ref.name}.{ref.namespace}", f"{ref.name}.{ref.namespace}.svc.cluster.local"}
    spec = resource.spec
    hosts = set(spec.get("hosts") or ()) | ({spec["host"]} if isinstance(spec.get("host"), str) else set())
    if resource.namespace != ref.namespace:
        names -= {ref.name}  # a short name means the resource's own namespace
    return bool(hosts & names)


def config_entries(snapshot: MeshSnapshot, ref: ServiceRef) -> list[ConfigEntry]:
    """Live resources that route to the service with their drift, through meshobs.drift: the
    one comparison `meshobs drift` uses (live vs effective; intended vs live when present)."""
    from meshobs.drift.compare import INTENDED_LIVE, LIVE_EFFECTIVE, compare_resources
    from meshobs.drift.effective import compare_effective

    live = [c for c in snapshot.config if c.layer is Layer.LIVE and routes_to(c, ref)]
    intended = [c for c in snapshot.config if c.layer is Layer.INTENDED and routes_to(c, ref)]
    drifts: list[Any] = []
    checked: list[str] = []
    if live and any(p.routes for p in snapshot.proxies):
        drifts += compare_effective(live, snapshot.proxies, LIVE_EFFECTIVE)
        checked.append(LIVE_EFFECTIVE)
    if intended:
        drifts += compare_resources(intended, live, INTENDED_LIVE, right_scope=set())
        checked.append(INTENDED_LIVE)
    out = []
    for c in sorted(live, key=lambda c: (c.kind, c.namespace, c.name)):
        mine = [d for d in drifts if (d.resource.kind, d.resource.namespace, d.resource.name) == c.key]
        out.append(ConfigEntry(c, mine, tuple(checked)))
    return out


def _history(snapshot: MeshSnapshot, ref: ServiceRef, metric: str) -> MetricSeries | None:
    series = snapshot.series_of(ref, metric)
    return series if series is not None and any(v is not None for v in series.values) else None


def service_view(snapshot: MeshSnapshot, report: Report | None, ref: ServiceRef,
                 links: TraceLinks | None = None) -> ServiceView:
    """Everything the service screen shows about ``ref``."""
    red = red_of(snapshot.edges_into(ref))
    sparks, ranges, has = {}, {}, False
    for metric, instant, fmt in (("request_rate", red.rate, fmt_rate), ("error_ratio", red.error_ratio, fmt_pct),
                                 ("p99_ms", red.p99_ms or 0.0, fmt_ms)):
        sparks[metric], got = rate_history(snapshot, ref, metric, instant)
        series = _history(snapshot, ref, metric)
        ranges[metric] = spark_range(series.values, fmt) if series is not None else ""
        has = has or got
    neighbours, hidden = neighbourhood(snapshot, ref, limit=50)
    hops, slowest = hop_rows(snapshot, ref, links or TraceLinks())
    notes = []
    if not has:
        notes.append("no history: the source gave instant values only")
    if not slowest:
        notes.append("no traces through this service")
    elif all(t.link is None for t in slowest):
        notes.append("no trace links: the Jaeger URL (sources.jaeger.url) or X-Ray region is not known")
    findings = list(report.findings) if report else []
    proxies = proxy_list_rows(snapshot, findings_by_proxy(findings), snapshot.workloads_of(ref))
    return ServiceView(
        ref=ref, status=report.status if report else "unknown", red=red, red_sparks=sparks, red_ranges=ranges,
        has_history=has, neighbours=neighbours, hidden_neighbours=hidden, proxies=proxies,
        checks=list(report.checks) if report else [], findings=findings,
        hops=hops, slowest=slowest, config=config_entries(snapshot, ref), notes=notes)


def red_summary(view: ServiceView) -> list[str]:
    """Three lines: rate, errors, p99, each with its sparkline and the range it spans."""
    r = view.red
    lines = [("rate  ", "request_rate", f"{fmt_rate(r.rate)} req/s"),
             ("errors", "error_ratio", fmt_pct(r.error_ratio)),
             ("p99   ", "p99_ms", fmt_ms(r.p99_ms))]
    return [f"{label} {view.red_sparks[metric]}  {now:<11}" + (f" ({view.red_ranges[metric]})"
                                                              if view.red_ranges.get(metric) else "")
            for label, metric, now in lines]


def time_label(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"
