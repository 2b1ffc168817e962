"""Pure view model of the service screen (no textual): RED over time, edges, workloads and
proxies, diagnosis, critical path of the slowest traces, configuration with drift.

Built in a worker thread: the critical path walks every span of the slowest traces and the
drift comparison reads every proxy's routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshobs.checks.base import Finding
from meshobs.engine.report import CheckResult, Report
from meshobs.model import ConfigResource, Layer, MeshSnapshot, Proxy, ServiceRef

from .viewmodel import (
    NeighbourRow,
    Red,
    fmt_ms,
    fmt_pct,
    fmt_rate,
    neighbourhood,
    rate_history,
    red_of,
)

SLOWEST_TRACES = 5


@dataclass(frozen=True, slots=True)
class ProxyRow:
    workload: str
    pod: str
    ready: str
    state: str
    xds: str  # "in sync" or the differing versions
    envoy: str
    cert_expiry: str

    def cells(self) -> tuple[str, ...]:
        return (self.workload, self.pod, self.ready, self.state, self.xds, self.envoy, self.cert_expiry)


@dataclass(frozen=True, slots=True)
class HopRow:
    service: str
    operation: str
    share: float
    p50_ms: float
    traces: int

    def cells(self) -> tuple[str, ...]:
        return (_short(self.service, 24), _short(self.operation, 30), f"{self.share * 100:.0f}%",
                fmt_ms(self.p50_ms), str(self.traces))


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One drifted field of a resource that routes to the service (``path``: where, e.g.
    ``spec.http[0].route[cart|v2].weight``; ``live`` what the cluster says, ``effective`` what
    the proxies run), or a resource without drift (``path`` "—", both sides "same")."""

    resource: str
    path: str
    live: str
    effective: str
    drift: bool

    def cells(self) -> tuple[str, ...]:
        return (("≠ " if self.drift else "  ") + self.resource, self.path, self.live, self.effective)


@dataclass(frozen=True)
class ServiceView:
    ref: ServiceRef
    status: str
    red: Red
    red_sparks: dict[str, str]  # metric -> sparkline
    has_history: bool
    neighbours: list[NeighbourRow]
    hidden_neighbours: int
    proxies: list[ProxyRow]
    checks: list[CheckResult]
    findings: list[Finding]
    hops: list[HopRow]
    slowest: list[tuple[str, float]]  # (trace id, duration ms)
    config: list[ConfigRow]
    notes: list[str] = field(default_factory=list)  # why a section is empty


def _short(value: Any, width: int = 28) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _expiry(seconds: float) -> str:
    if seconds < 0:
        return "EXPIRED"
    if seconds < 3600 * 48:
        return f"in {seconds / 3600:.0f}h"
    return f"in {seconds / 86400:.0f}d"


def _xds_state(p: Proxy) -> str:
    if p.control_plane_connected is False:
        return "disconnected"
    rejected = sum(int(v or 0) for v in p.update_rejected.values())
    if rejected:
        return f"{rejected} rejected"
    versions = {x.version for x in p.xds if x.type in ("cds", "lds", "rds") and x.version}
    if not p.xds:
        return "-"
    return "in sync" if len(versions) <= 1 else "mixed: " + ",".join(sorted(v[-8:] for v in versions))


def proxy_rows(snapshot: MeshSnapshot, ref: ServiceRef) -> list[ProxyRow]:
    rows = []
    for w in snapshot.workloads_of(ref):
        proxies = snapshot.proxies_of(w.ref)
        if not proxies:
            rows.append(ProxyRow(w.name, "-", "-", "no proxy" if w.meshed is False else "-", "-", "-", "-"))
        for p in proxies:
            certs = [c for c in snapshot.certs_of(p.id) if c.role.value == "workload"]
            expiry = _expiry(min(c.remaining_s(snapshot.time) for c in certs)) if certs else "-"
            ready = "-" if p.ready is None else ("yes" if p.ready else "NO")
            rows.append(ProxyRow(w.name, p.pod, ready, p.state or "-", _xds_state(p), p.envoy_version or "-",
                                 expiry))
    return rows


def hop_rows(snapshot: MeshSnapshot, ref: ServiceRef) -> tuple[list[HopRow], list[tuple[str, float]]]:
    """Critical path of the slowest traces through ``ref``, per hop, largest share first."""
    from meshobs.critical_path import critical_path, rank_hops

    names = {f"{ref.name}.{ref.namespace}", ref.name, str(ref)}
    traces = [t for t in snapshot.traces if t.services & names]
    slowest = sorted(traces, key=lambda t: (-t.duration_us, t.trace_id))[:SLOWEST_TRACES]
    hops = rank_hops((t.trace_id, critical_path(t)) for t in slowest)
    rows = [HopRow(h.service, h.operation, h.share, h.p50_us / 1000, h.traces) for h in hops[:10]]
    return rows, [(t.trace_id, t.duration_us / 1000) for t in slowest]


def _routes_to(resource: ConfigResource, ref: ServiceRef) -> bool:
    names = {ref.name, f"{ref.name}.{ref.namespace}", f"{ref.name}.{ref.namespace}.svc.cluster.local"}
    spec = resource.spec
    hosts = set(spec.get("hosts") or ()) | ({spec["host"]} if isinstance(spec.get("host"), str) else set())
    if resource.namespace != ref.namespace:
        names -= {ref.name}  # a short name means the resource's own namespace
    return bool(hosts & names)


def config_rows(snapshot: MeshSnapshot, ref: ServiceRef) -> list[ConfigRow]:
    """Live resources that route to the service, each followed by its drifted fields (live vs
    what the proxies actually run)."""
    live = [c for c in snapshot.config if c.layer is Layer.LIVE and _routes_to(c, ref)]
    drifts: list[Any] = []
    if live and any(p.routes for p in snapshot.proxies):
        try:
            from meshobs.drift.effective import compare_effective

            drifts = compare_effective(live, snapshot.proxies, "live-effective")
        except Exception:  # drift is a nicety here; never lose the screen over it
            drifts = []
    rows = []
    for c in sorted(live, key=lambda c: (c.kind, c.name)):
        mine = [d for d in drifts if d.resource.kind == c.kind and d.resource.name == c.name
                and d.resource.namespace == c.namespace]
        if not mine:
            rows.append(ConfigRow(str(c), "—", "same", "same", False))
        for i, d in enumerate(mine):
            # The resource is named on its first drifted field only: the rest read as its fields.
            rows.append(ConfigRow(str(c) if i == 0 else "", _short(d.path, 44), _short(d.left, 20),
                                  _short(d.right, 20), True))
    return rows


def service_view(snapshot: MeshSnapshot, report: Report | None, ref: ServiceRef) -> ServiceView:
    """Everything the service screen shows about ``ref``."""
    red = red_of(snapshot.edges_into(ref))
    sparks, has = {}, False
    for metric, instant in (("request_rate", red.rate), ("error_ratio", red.error_ratio),
                            ("p99_ms", red.p99_ms or 0.0)):
        sparks[metric], got = rate_history(snapshot, ref, metric, instant)
        has = has or got
    neighbours, hidden = neighbourhood(snapshot, ref, limit=50)
    hops, slowest = hop_rows(snapshot, ref)
    notes = []
    if not has:
        notes.append("no history: the source gave instant values only")
    if not slowest:
        notes.append("no traces through this service")
    return ServiceView(
        ref=ref, status=report.status if report else "unknown", red=red, red_sparks=sparks, has_history=has,
        neighbours=neighbours, hidden_neighbours=hidden, proxies=proxy_rows(snapshot, ref),
        checks=list(report.checks) if report else [], findings=list(report.findings) if report else [],
        hops=hops, slowest=slowest, config=config_rows(snapshot, ref), notes=notes)


def red_summary(view: ServiceView) -> list[str]:
    """Three lines: rate, errors, p99, each with its sparkline."""
    r = view.red
    return [f"rate   {view.red_sparks['request_rate']}  {fmt_rate(r.rate)} req/s",
            f"errors {view.red_sparks['error_ratio']}  {fmt_pct(r.error_ratio)}",
            f"p99    {view.red_sparks['p99_ms']}  {fmt_ms(r.p99_ms)}"]


def time_label(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"
