"""Pure view models for the dashboard: MeshSnapshot + diagnosis -> rows to show.

Nothing here imports textual, so every function runs in a worker thread (and in plain unit
tests). Rows are small frozen dataclasses; their ``cells()`` are plain strings so that the UI
thread only copies them into a table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from meshobs.checks.base import Finding
from meshobs.engine.report import MeshReport
from meshobs.model import Edge, MeshSnapshot, MetricSeries, ServiceRef, thaw

# "pending": the numbers are in, the diagnosis is still running. It sorts with "unknown":
# no finding yet is not health.
HEALTH_ORDER = {"failing": 0, "degraded": 1, "unknown": 2, "pending": 2, "partial": 3, "clean": 3, "healthy": 4}
HEALTH_MARK = {"failing": "× failing", "degraded": "! degraded", "unknown": "? unknown", "partial": "~ partial",
               "healthy": "✓ healthy", "clean": "○ clean", "pending": "diagnosing"}
# Appended to a health (and finding count) that comes from the previous refresh's diagnosis
# while this refresh's runs: the numbers beside it are new, the verdict is not yet.
PREVIOUS = "*"
PENDING_COUNT = "…"  # the findings column of a service whose diagnosis has not run yet
SORT_KEYS = ("health", "name", "rate", "errors", "p99")
BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 10


# A sparkline's vertical scale spans at least this fraction of its largest value: a series
# that varies by less (float noise such as 30 vs 30.000000000000004, or a 1 % wobble) draws
# as a ripple near the top, not as a cliff from the top bar to the bottom one.
MIN_RELATIVE_SPAN = 0.05


def spark_scale(values: Sequence[float | None]) -> tuple[float, float] | None:
    """(bottom, top) of the scale for ``values``; None when none is known.

    Min to max, widened around their middle to at least :data:`MIN_RELATIVE_SPAN` of the
    largest magnitude, so a flat series sits mid-height and noise moves a bar at most one step.
    """
    known = [v for v in values if v is not None]
    if not known:
        return None
    lo, hi = min(known), max(known)
    floor = max(abs(hi), abs(lo)) * MIN_RELATIVE_SPAN
    if hi - lo < floor:
        mid = (lo + hi) / 2
        lo, hi = mid - floor / 2, mid + floor / 2
    return lo, hi


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH) -> str:
    """Unicode block sparkline of the last ``width`` values; gaps (None) show as spaces.

    Scaled by :func:`spark_scale`: noise below 5 % of the value reads as a ripple, not a cliff;
    an all-zero series is the bottom bar.
    """
    tail = list(values)[-width:]
    scale = spark_scale(tail)
    if scale is None:
        return " " * min(width, len(tail))
    lo, hi = scale
    span = hi - lo
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(BARS[0])  # every value is 0
        else:
            out.append(BARS[min(len(BARS) - 1, max(0, int((v - lo) / span * (len(BARS) - 1) + 0.5)))])
    return "".join(out)


def spark_range(values: Sequence[float | None], fmt: Callable[[float], str], width: int = SPARK_WIDTH) -> str:
    """"min 11.8 max 12.3" of the values a sparkline shows ("" when there are none)."""
    known = [v for v in list(values)[-width:] if v is not None]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    return f"= {fmt(lo)}" if fmt(lo) == fmt(hi) else f"min {fmt(lo)} max {fmt(hi)}"


def fmt_rate(rps: float) -> str:
    """Requests per second, compact (``0``, ``0.42``, ``12.3``, ``1.2k``)."""
    if rps <= 0:
        return "0"
    if rps >= 1000:
        return f"{rps / 1000:.1f}k"
    if rps >= 10:
        return f"{rps:.1f}"
    return f"{rps:.2f}"


def fmt_pct(ratio: float) -> str:
    return "0%" if ratio <= 0 else ("<0.1%" if ratio < 0.001 else f"{ratio * 100:.1f}%")


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.1f}s" if ms >= 10_000 else f"{ms:.0f}ms"


@dataclass(frozen=True, slots=True)
class Red:
    """Rate, errors and duration of the traffic into a service."""

    rate: float
    error_ratio: float
    p99_ms: float | None


def red_of(edges: Iterable[Edge]) -> Red:
    """Aggregate inbound edges. p99 is the worst edge's p99: quantiles do not add up, and the
    worst caller is the one an engineer needs to see."""
    rate = errors = 0.0
    p99: float | None = None
    for e in edges:
        rate += e.request_rate
        errors += e.error_rate
        if e.latency is not None and e.latency.p99 is not None:
            p99 = e.latency.p99 if p99 is None else max(p99, e.latency.p99)
    return Red(rate, errors / rate if rate > 0 else 0.0, p99)


def rate_history(snapshot: MeshSnapshot, ref: ServiceRef, metric: str, instant: float,
                 index: dict[tuple[ServiceRef, str], MetricSeries] | None = None) -> tuple[str, bool]:
    """(sparkline, has_history). Without a series the line is flat at the instant value.

    ``index``: series by (service, metric); ``snapshot.series_of`` scans every series, which
    for the whole overview is quadratic in the number of services.
    """
    series = index.get((ref, metric)) if index is not None else snapshot.series_of(ref, metric)
    if series is not None and any(v is not None for v in series.values):
        return sparkline(series.values), True
    return sparkline([instant] * SPARK_WIDTH), False


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """One line of the overview.

    ``outbound``: nothing calls the service (an ingress gateway, a cron job), so ``red`` is its
    outbound traffic: an all-zero line would hide why such a service fails. ``reason`` is the
    one-line message of its top-ranked finding ("" when healthy). ``previous``: health, count
    and reason are the previous refresh's, shown while this refresh's diagnosis runs.
    """

    ref: ServiceRef
    health: str
    red: Red
    spark: str
    has_history: bool
    findings: int
    outbound: bool = False
    reason: str = ""
    previous: bool = False
    # Worked out once where the row is built (the worker): on a refresh the UI thread compares
    # and copies 5,000 rows' keys and cells, and formatting them there cost it ~25 ms.
    _key: str = field(init=False, repr=False, compare=False)
    _cells: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        arrow = OUT if self.outbound else ""
        mark = PREVIOUS if self.previous else ""
        count = (PENDING_COUNT if self.health == "pending" else
                 f"{self.findings}{mark}" if self.findings else "")
        cells = (HEALTH_MARK.get(self.health, self.health) + mark, self.ref.namespace, self.ref.name,
                 arrow + fmt_rate(self.red.rate), arrow + fmt_pct(self.red.error_ratio),
                 arrow + fmt_ms(self.red.p99_ms) if self.red.p99_ms is not None else fmt_ms(None),
                 self.spark, count)
        object.__setattr__(self, "_key", str(self.ref))
        object.__setattr__(self, "_cells", cells)

    @property
    def key(self) -> str:
        return self._key

    def cells(self) -> tuple[str, ...]:
        return self._cells


OUT = "→"  # marks outbound numbers in the overview
OVERVIEW_SPARK = 8  # bars in the overview (the service screen shows SPARK_WIDTH)
# (key, label, width); width 0 takes the room the others leave (the service name).
# Health is 12 wide ("! degraded" and the previous-refresh mark), the last column 8 (its
# label's length): the service names keep their room.
OVERVIEW_COLUMNS = (("health", "Health", 12), ("namespace", "Namespace", 11), ("name", "Service", 0),
                    ("rate", "req/s", 7), ("errors", "err%", 7), ("p99", "p99", 7),
                    ("spark", "rate", OVERVIEW_SPARK + 1), ("findings", "findings", 8))


def overview_rows(snapshot: MeshSnapshot, report: MeshReport | None, pending: bool = False) -> list[ServiceRow]:
    """Every (known) service with its health, RED numbers and sparkline, worst first.

    No data is not health: without traffic metrics (the source failed or none is configured)
    a service with no findings is "unknown", with the reason, never "healthy". ``pending``: the
    diagnosis of ``snapshot`` is still running; ``report`` (if any) is the previous refresh's,
    so its health is marked as such, and a service it does not know is "pending".
    """
    from meshobs.engine.inputs import availability

    no_traffic = availability(snapshot).get("requests")
    health = {r.service: (r.status, len(r.findings), r.findings[0].message if r.findings
                          and r.status not in ("healthy", "clean") else "") for r in report.reports} if report else {}
    if no_traffic:
        health = {ref: ("unknown", n, no_traffic) if status in ("healthy", "clean") else (status, n, why)
                  for ref, (status, n, why) in health.items()}
    index = {(s.service, s.metric): s for s in snapshot.series}
    rows = []
    for svc in snapshot.services:
        if svc.ref.is_unknown:
            continue
        red = red_of(snapshot.edges_into(svc.ref))
        outbound = False
        if red.rate <= 0:
            out = red_of(snapshot.edges_from(svc.ref))
            if out.rate > 0:
                red, outbound = out, True
        spark, has = rate_history(snapshot, svc.ref, "request_rate", red.rate, index)
        if len(spark) > OVERVIEW_SPARK:
            spark = spark[-OVERVIEW_SPARK:]
        known = health.get(svc.ref)
        status, count, reason = known or ("pending" if pending else "unknown", 0, "")
        rows.append(ServiceRow(svc.ref, status, red, spark, has, count, outbound, reason,
                               previous=pending and known is not None))
    return sort_rows(rows, "health")


def sort_rows(rows: Iterable[ServiceRow], key: str, reverse: bool = False) -> list[ServiceRow]:
    """Sort by one of SORT_KEYS. ``health`` is worst first, then most errors, then busiest;
    numeric keys are largest first (``reverse`` flips any of them)."""
    if key == "name":
        ordered = sorted(rows, key=lambda r: (r.ref.name, r.ref.namespace))
    elif key == "rate":
        ordered = sorted(rows, key=lambda r: (-r.red.rate, r.ref))
    elif key == "errors":
        ordered = sorted(rows, key=lambda r: (-r.red.error_ratio, -r.red.rate, r.ref))
    elif key == "p99":
        ordered = sorted(rows, key=lambda r: (-(r.red.p99_ms or -1.0), r.ref))
    else:
        ordered = sorted(rows, key=lambda r: (HEALTH_ORDER.get(r.health, 2), -r.red.error_ratio,
                                              -r.findings, -r.red.rate, r.ref))
    return ordered[::-1] if reverse else ordered


@dataclass(frozen=True)
class RowFilter:
    """Text (substring of ``ns/name``), namespace and health; empty means everything.

    The text may carry ``ns:NAME`` and ``health:STATUS`` tokens, so one search box covers all
    three filters.
    """

    text: str = ""
    namespace: str = ""
    health: str = ""

    @classmethod
    def parse(cls, query: str, namespace: str = "", health: str = "") -> RowFilter:
        words = []
        for token in query.split():
            if token.startswith(("ns:", "namespace:")):
                namespace = token.split(":", 1)[1]
            elif token.startswith("health:"):
                health = token.split(":", 1)[1]
            else:
                words.append(token)
        return cls(" ".join(words).lower(), namespace, health)

    def matches(self, row: ServiceRow) -> bool:
        if self.namespace and row.ref.namespace != self.namespace:
            return False
        if self.health and not row.health.startswith(self.health):
            return False
        return not self.text or self.text in row.key.lower()  # the key is ``ns/name``, made once per row

    def describe(self) -> str:
        """The filter as typed ("data ns:shop health:failing"); "" when it shows everything."""
        parts = [self.text, f"ns:{self.namespace}" if self.namespace else "",
                 f"health:{self.health}" if self.health else ""]
        return " ".join(p for p in parts if p)


def filter_rows(rows: Iterable[ServiceRow], flt: RowFilter) -> list[ServiceRow]:
    if flt == RowFilter():
        return list(rows)  # no filter: 5,000 rows need no test each on every refresh
    return [r for r in rows if flt.matches(r)]


def mtls_of(edges: Iterable[Edge]) -> str:
    """``yes`` when every edge reports mutual TLS, ``NO`` when one reports plaintext, else ``?``
    (only Istio's destination proxies report it; CloudWatch and X-Ray do not)."""
    seen = {e.security.value for e in edges}
    if "none" in seen:
        return "NO"
    return "yes" if seen == {"mutual_tls"} else "?"


@dataclass(frozen=True, slots=True)
class NeighbourRow:
    """One caller or callee of the selected service, with the numbers of the edge(s)."""

    direction: str  # "in" | "out"
    peer: str
    red: Red
    mtls: str = "?"

    def line(self) -> str:
        arrow = "←" if self.direction == "in" else "→"
        return (f"{arrow} {self.peer:<32.32} {fmt_rate(self.red.rate):>7} req/s "
                f"{fmt_pct(self.red.error_ratio):>6} err  p99 {fmt_ms(self.red.p99_ms):>6}")


def _peer_of_source(snapshot: MeshSnapshot, e: Edge) -> str:
    if e.source_service is not None:
        return str(e.source_service)
    services = snapshot.services_of(e.source)
    return str(services[0]) if services else f"{e.source} (workload)"


def neighbourhood(snapshot: MeshSnapshot, ref: ServiceRef, limit: int = 8) -> tuple[list[NeighbourRow], int]:
    """Callers and callees of ``ref`` aggregated per peer service, busiest first, at most
    ``limit`` per direction (a hub with 300 callers stays readable); also how many were left out."""
    hidden = 0
    out: list[NeighbourRow] = []
    for direction, edges in (("in", snapshot.edges_into(ref)), ("out", snapshot.edges_from(ref))):
        by_peer: dict[str, list[Edge]] = {}
        for e in edges:
            peer = _peer_of_source(snapshot, e) if direction == "in" else str(e.destination)
            by_peer.setdefault(peer, []).append(e)
        rows = sorted((NeighbourRow(direction, peer, red_of(es), mtls_of(es)) for peer, es in by_peer.items()),
                      key=lambda r: (r.red.error_ratio <= 0, -r.red.rate, r.peer))
        out.extend(rows[:limit])
        hidden += max(0, len(rows) - limit)
    return out, hidden


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A finding in the mesh-wide list. ``rank``: its best rank in any service's report (1 is
    the most likely root cause); ``first_of_group`` marks the first of its severity."""

    finding: Finding
    first_of_group: bool
    rank: int

    @property
    def key(self) -> str:
        f = self.finding
        return f"{f.code}|{f.subject}|{f.service}|{f.check}"

    def cells(self) -> tuple[str, ...]:
        f = self.finding
        sev = f.severity.value if self.first_of_group else ""
        return (str(self.rank) if self.rank else "", sev, f.code, f.message)


def finding_rows(report: MeshReport | None) -> list[FindingRow]:
    """All findings across the mesh, one per (code, subject): by severity, then by rank, so
    the most likely root cause leads and its symptoms follow.

    A root cause shows up in the report of every service upstream of it; listing it once per
    subject keeps the list about the mesh rather than about who noticed. Its rank is the best
    it got in any report (a symptom never outranks its cause within one report).
    """
    if report is None:
        return []
    unique: dict[tuple[str, str], Finding] = {}
    best: dict[tuple[str, str], int] = {}
    for f in report.findings:
        key = (f.code, f.subject)
        unique.setdefault(key, f)
        if f.rank > 0:
            best[key] = min(best.get(key, f.rank), f.rank)
    unranked = 1 << 30  # mesh-wide findings have no rank: after the ranked ones of their severity
    ordered = sorted(unique.items(), key=lambda kv: (-kv[1].severity.weight, best.get(kv[0], unranked),
                                                     kv[1].code, kv[1].subject))
    rows, previous = [], None
    for key, f in ordered:
        rows.append(FindingRow(f, f.severity != previous, best.get(key, 0)))
        previous = f.severity
    return rows


def finding_markdown(f: Finding) -> str:
    """One finding as Markdown, for pasting into an incident document."""
    lines = [f"**{f.code}** ({f.severity.value}) `{f.subject}`: {f.message}", ""]
    if f.caused_by:
        lines.append(f"- caused by: {'; '.join(f.caused_by)}")
    if f.hint:
        lines.append(f"- hint: {f.hint}")
    lines.append(f"- doc: `{f.doc}`")
    lines += ["- evidence:", "", "```json", json.dumps(thaw(f.evidence), indent=2, default=str), "```", ""]
    return "\n".join(lines)
