"""Prometheus history for authored (``rich``) scenarios: series that change over time.

The classic demo's counters grow at one constant rate, so its query results are simply those
rates. An authored scenario has faults with an onset, series that are born when the first
failing request happens, gauges that istiod sets when a proxy rejects a push, and scrapes that
stop. Here every series is piecewise constant in *age* (seconds before the scenario time);
:func:`openmetrics_text` turns the series into the samples a real Prometheus would have scraped
(one every ``STEP_S``), and :func:`prometheus_source` answers the collector's queries from
those very samples with Prometheus 2.x's own ``rate()`` arithmetic (``extrapolatedRate`` in
promql/functions.go), so a bundle and a live Prometheus backfilled with the text agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from meshobs.collectors.promql import (
    HISTORY_QUERIES,
    ISTIO_DURATION_BUCKETS_MS,
    QUERIES,
    RANGE_QUERIES,
    Query,
    history_rate_window_s,
    history_span_s,
    history_step_s,
    render,
    render_history,
    render_range,
    series_rate_window_s,
    series_step_s,
)
from meshobs.durations import format_duration
from meshobs.raw import Payload, RawSource

from .prometheus import _GRPC_STATUS, _label_text, _labels, _le, _selected, _value, answer, grouping, rules_payload
from .traffic import EdgeTraffic, Reported

STEP_S = 15.0  # the scrape interval
# A counter that already existed when the history starts has counted for this long.
UPTIME_S = 3 * 86400.0


@dataclass
class Series:
    """One time series: ``values[i]`` holds on ages ``[cuts[i-1], cuts[i])`` (``cuts`` ascending,
    the last segment open-ended). A counter's value is its rate per second there, a gauge's its
    level; ``None`` = the series does not exist then (not yet created)."""

    name: str  # the sample name, suffix included (istio_requests_total, ..._bucket)
    family: str  # the OpenMetrics family (istio_requests, istio_request_duration_milliseconds)
    kind: str  # counter | gauge | histogram
    labels: dict[str, str]
    cuts: tuple[float, ...]
    values: list[float | None]
    counter: bool = True
    _born: float | None = field(default=None, repr=False)

    def segment(self, age: float) -> int:
        i = 0
        while i < len(self.cuts) and age >= self.cuts[i]:
            i += 1
        return i

    def born_s_ago(self) -> float:
        """The age at which the series came to exist (inf: before any history)."""
        if self._born is None:
            self._born = self._birth()
        return self._born

    def _birth(self) -> float:
        if self.values[-1] is not None and (not self.counter or self.values[-1] > 0):
            return math.inf
        for i in range(len(self.values) - 2, -1, -1):
            v = self.values[i]
            if v is not None and (not self.counter or v > 0):
                return self.cuts[i]
        return -1.0  # never exists

    def value_at(self, age: float) -> float | None:
        """The sample a scrape at ``age`` reads (None: no series yet)."""
        born = self.born_s_ago()
        if age >= born:
            return None
        if not self.counter:
            return self.values[self.segment(age)]
        # A counter counts from its birth; one older than the history from the pods' start.
        upper = born if math.isfinite(born) else max(UPTIME_S, *(self.cuts or (0.0,)))
        bounds = [0.0, *self.cuts, math.inf]
        total = 0.0
        for i, rate in enumerate(self.values):
            lo, hi = max(bounds[i], age), min(bounds[i + 1], upper)
            if hi > lo and rate:
                total += rate * (hi - lo)
        return total


@dataclass
class Timeline:
    """Every series of a scenario and the scrape grid they are sampled on."""

    series: list[Series] = field(default_factory=list)
    history_s: float = 3600.0
    end_s_ago: float = 0.0  # no scrape younger than this (Prometheus stopped scraping)
    _points: dict[int, dict[int, float | None]] = field(default_factory=dict, repr=False)

    def ages(self) -> list[float]:
        """Scrape ages, oldest first."""
        n = int(self.history_s // STEP_S)
        return [k * STEP_S for k in range(n, -1, -1) if k * STEP_S >= self.end_s_ago - 1e-9]

    def points(self, s: Series) -> list[tuple[float, float]]:
        """(age, value) of every scrape of ``s``, oldest first."""
        return self.samples(s, 0.0, self.history_s)

    def samples(self, s: Series, lo_age: float, hi_age: float) -> list[tuple[float, float]]:
        """(age, value) of the scrapes of ``s`` with ages in [lo_age, hi_age], oldest first."""
        cache = self._points.setdefault(id(s), {})
        first = max(math.ceil(lo_age / STEP_S - 1e-9), math.ceil(self.end_s_ago / STEP_S - 1e-9))
        last = min(math.floor(hi_age / STEP_S + 1e-9), int(self.history_s // STEP_S))
        out = []
        for k in range(last, first - 1, -1):
            if k not in cache:
                cache[k] = s.value_at(k * STEP_S)
            v = cache[k]
            if v is not None:
                out.append((k * STEP_S, v))
        return out

    def rate(self, s: Series, at_age: float, range_s: float) -> float | None:
        """``rate(s[range_s])`` evaluated ``at_age`` seconds before the scenario time, as
        Prometheus 2.x computes it (closed range, extrapolation to the range's edges, limited
        by a counter's distance to zero). None when fewer than two samples fall in the range."""
        points = self.samples(s, at_age, at_age + range_s)
        if len(points) < 2:
            return None
        first, last = points[0][1], points[-1][1]
        delta = last - first
        range_start_age, range_end_age = at_age + range_s, at_age
        to_start = range_start_age - points[0][0]
        to_end = points[-1][0] - range_end_age
        sampled = points[0][0] - points[-1][0]
        average = sampled / (len(points) - 1)
        if delta > 0 and first >= 0:
            to_zero = sampled * (first / delta)
            to_start = min(to_start, to_zero)
        threshold = average * 1.1
        interval = sampled + (to_start if to_start < threshold else average / 2)
        interval += to_end if to_end < threshold else average / 2
        return delta * (interval / sampled) / range_s


# -- series from traffic ----------------------------------------------------------------------

def _reporters(edge: EdgeTraffic) -> tuple[str, ...]:
    if edge.reporters is not None:
        return edge.reporters
    reached = edge.destination_workload is not None and edge.destination_istio
    out = ("source", "destination") if reached else ("source",)
    return out if edge.source_reported else tuple(r for r in out if r != "source")


def _view_samples(edge: EdgeTraffic, reporter: str, view: Reported
                  ) -> Iterator[tuple[str, str, str, dict[str, str], float]]:
    """(family, kind, sample name, labels, rate) of one reporter's view of an edge."""
    base = _labels(edge, reporter)
    if reporter == "waypoint":  # a waypoint terminates mTLS on both sides
        base["connection_security_policy"] = "mutual_tls"
    if edge.protocol == "tcp":
        share = view.rps / edge.rps if edge.rps else 0.0
        tcp = {**base, "response_flags": "-"}
        yield "istio_tcp_sent_bytes", "counter", "istio_tcp_sent_bytes_total", tcp, edge.tcp_sent_bps * share
        yield ("istio_tcp_received_bytes", "counter", "istio_tcp_received_bytes_total", tcp,
               edge.tcp_received_bps * share)
        yield ("istio_tcp_connections_opened", "counter", "istio_tcp_connections_opened_total", tcp, view.rps)
        yield ("istio_tcp_connections_closed", "counter", "istio_tcp_connections_closed_total", tcp, view.rps)
        return
    latency = view.latency
    mean_ms = latency.p50_ms * math.exp(latency.sigma ** 2 / 2)
    hist = "istio_request_duration_milliseconds"
    for i, (code, flags, fraction) in enumerate(view.responses):
        rps = view.rps * fraction
        labels = {**base, "response_code": code, "response_flags": flags}
        if edge.protocol == "grpc":
            labels["grpc_response_status"] = (view.grpc_statuses[i] if i < len(view.grpc_statuses)
                                              else _GRPC_STATUS.get(code, "2"))
        yield "istio_requests", "counter", "istio_requests_total", labels, rps
        for b in (*map(float, ISTIO_DURATION_BUCKETS_MS), math.inf):
            share = 1.0 if math.isinf(b) else latency.cdf(b)
            yield hist, "histogram", f"{hist}_bucket", {**labels, "le": _le(b)}, rps * share
        yield hist, "histogram", f"{hist}_count", labels, rps
        yield hist, "histogram", f"{hist}_sum", labels, rps * mean_ms


def traffic_series(edges: Iterable[EdgeTraffic]) -> list[Series]:
    """The Istio standard metrics of ``edges``, one Series per sample name and label set."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = {}
    for edge in edges:
        cuts = edge.boundaries
        segment_ages = [0.0, *cuts]  # an age inside each segment: its start
        for reporter in _reporters(edge):
            side = "source" if reporter == "source" else "destination"
            for i, age in enumerate(segment_ages):
                for family, kind, name, labels, rate in _view_samples(edge, reporter, edge.view(side, age)):
                    key = (name, tuple(labels.items()))
                    s = out.get(key)
                    if s is None:
                        s = out[key] = Series(name, family, kind, labels, cuts, [0.0] * len(segment_ages))
                    s.values[i] = (s.values[i] or 0.0) + rate
    return list(out.values())


# -- the backfill text -------------------------------------------------------------------------

def openmetrics_text(timeline: Timeline, end: datetime) -> str:
    """The samples of every series as OpenMetrics text for ``promtool tsdb create-blocks-from
    openmetrics`` (timestamps in seconds; a family's series together; samples in time order)."""
    return "".join(openmetrics_chunks(timeline, end))


def openmetrics_chunks(timeline: Timeline, end: datetime) -> Iterator[str]:
    """:func:`openmetrics_text` in pieces (a family header, or one group's samples), made as
    they are consumed, so the demo server writes them to its backfill file without the whole text."""
    end_s = end.timestamp()
    ages = timeline.ages()
    families: dict[str, tuple[str, dict[tuple[tuple[str, str], ...], list[Series]]]] = {}
    for s in timeline.series:
        group_labels = tuple((k, v) for k, v in s.labels.items() if k != "le")
        families.setdefault(s.family, (s.kind, {}))[1].setdefault(group_labels, []).append(s)
    for family, (kind, groups) in families.items():
        yield f"# TYPE {family} {kind}\n"
        for members in groups.values():
            heads = [(dict(timeline.points(s)), f"{s.name}{{{_label_text(s.labels)}}} ") for s in members]
            out: list[str] = []
            for age in ages:
                t = end_s - age
                stamp = f"{t:.0f}" if t == int(t) else f"{t:.3f}"
                for values, head in heads:
                    v = values.get(age)
                    if v is not None:
                        out.append(f"{head}{v!r} {stamp}\n")
            yield "".join(out)
    yield "# EOF\n"


# -- what the collector's queries answer -------------------------------------------------------

def _sum_by(timeline: Timeline, query: Query, at_age: float, range_s: float,
            selected: list[Series] | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    """``sum by (grouping) (rate(metric{selector}[range_s]))`` evaluated ``at_age`` seconds early
    (over ``selected``, the query's series, when the caller already picked them)."""
    group = grouping(query)
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    for s in _series_of(timeline, query) if selected is None else selected:
        r = timeline.rate(s, at_age, range_s)
        if r is None:
            continue
        key = tuple((k, s.labels[k]) for k in group if s.labels.get(k))
        sums[key] = sums.get(key, 0.0) + r
    return sums


def _series_of(timeline: Timeline, query: Query) -> list[Series]:
    """The series ``query`` reads (its metric, its fixed matchers)."""
    metric, selectors = query.metric(recorded=False), query.selectors
    return [s for s in timeline.series if s.name == metric and any(not f or _selected(s.labels, f) for f in selectors)]


def _matrix_payload(timeline: Timeline, key: str, query: Query, promql: str, time: datetime, span_s: float,
                    step: float, rate_window: float) -> Payload:
    """A range query's answer from the timeline's own samples, every ``step`` over ``span_s``."""
    ts = time.timestamp()
    selected = _series_of(timeline, query)
    points: dict[str, tuple[dict[str, str], list[list[float | int | str]]]] = {}
    for age in [span_s - k * step for k in range(round(span_s / step) + 1)]:
        for metric, v in answer(query, _sum_by(timeline, query, age, rate_window, selected)):
            t = ts - age
            points.setdefault(json.dumps(metric, sort_keys=True), (metric, []))[1].append(
                [int(t) if t == int(t) else t, _value(v)])
    matrix: list[dict[str, object]] = [{"metric": metric, "values": values} for metric, values in points.values()]
    return Payload(key=key, status=200, url="demo/api/v1/query_range",
                   body=json.dumps({"resultType": "matrix", "result": matrix}),
                   params={"query": promql, "start": ts - span_s, "end": ts, "step": step},
                   meta={"phase": query.phase})


def prometheus_source(timeline: Timeline, time: datetime, window_s: float) -> RawSource:
    """The RawSource the Prometheus collector fetches at ``time`` from a Prometheus holding
    :func:`openmetrics_text` of ``timeline``: same query keys, params and result JSON."""
    ts = time.timestamp()
    ts_json: float | int = int(ts) if ts == int(ts) else ts
    window = format_duration(window_s)
    raw = RawSource(name="prometheus", kind="prometheus", meta={"url": "demo"})
    raw.add(rules_payload(time, window_s))
    for name, query in QUERIES.items():
        rows = answer(query, _sum_by(timeline, query, 0.0, window_s))
        result = [{"metric": metric, "value": [ts_json, _value(v)]}
                  for metric, v in rows if not query.positive or v > 0]
        raw.add(Payload(key=f"query:{name}", status=200, url="demo/api/v1/query",
                        body=json.dumps({"resultType": "vector", "result": result}),
                        params={"query": render(name, window), "time": ts}, meta={"phase": query.phase}))
    from .prom_pilot import control_plane_payload

    raw.add(control_plane_payload(timeline, time, window_s))
    step = series_step_s(window_s)
    rate_window = series_rate_window_s(window_s)
    for name, query in RANGE_QUERIES.items():
        raw.add(_matrix_payload(timeline, f"range:{name}", query, render_range(name, window_s), time,
                                window_s, step, rate_window))
    # The hour "what changed" reads, as the collector asks for it by default.
    span = history_span_s(window_s)
    step = history_step_s(span)
    for name, query in HISTORY_QUERIES.items():
        raw.add(_matrix_payload(timeline, f"history:{name}", query, render_history(name, span), time,
                                span, step, history_rate_window_s(step)))
    return raw
