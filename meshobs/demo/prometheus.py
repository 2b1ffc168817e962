"""Istio standard metrics for a demo mesh: OpenMetrics text to backfill a real Prometheus, and
the query results the Prometheus collector would have fetched from it (computed analytically).

Both come from the same series model: every counter grows linearly at its edge's rate, so
``rate(x[W])`` over the backfilled samples equals that rate exactly, and the analytic results
below are what the real server answers (up to float rounding).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from meshobs.collectors.promql import (
    GRAPH_QUERIES,
    HISTORY_QUERIES,
    ISTIO_DURATION_BUCKETS_MS,
    QUERIES,
    RANGE_QUERIES,
    Query,
    histogram_quantile,
    history_span_s,
    history_step_s,
    render,
    render_history,
    render_range,
    rules_query,
    series_step_s,
)
from meshobs.durations import format_duration
from meshobs.raw import Payload, RawSource

from .traffic import EdgeTraffic

# One OpenMetrics "metric": a family, its labels, and its samples as (name suffix, extra labels,
# rate per second). A histogram's buckets, _count and _sum travel together.
_Sample = tuple[str, dict[str, str], float]
_Metric = tuple[str, str, dict[str, str], list[_Sample]]

_GRPC_STATUS = {"200": "0", "404": "5", "429": "8", "503": "14", "504": "4", "0": "14"}


def _le(bound: float) -> str:
    if math.isinf(bound):
        return "+Inf"
    # Envoy writes bounds as plain numbers (le="1800000", never 1.8e+06).
    return str(int(bound)) if bound == int(bound) else repr(bound)


def _labels(edge: EdgeTraffic, reporter: str) -> dict[str, str]:
    """The full Istio label set of one edge as ``reporter`` reports it."""
    reached = edge.destination_workload is not None
    mtls = edge.mtls
    dst_ns = edge.destination_namespace if reached else "unknown"
    labels = {
        "reporter": reporter,
        "source_workload": edge.source_workload,
        "source_workload_namespace": edge.source_namespace,
        "source_principal": edge.source_principal if mtls else "unknown",
        "source_app": edge.source_service,
        "source_version": edge.source_version,
        "source_cluster": "Kubernetes",
        "source_canonical_service": edge.source_service,
        "source_canonical_revision": edge.source_version,
        "destination_workload": edge.destination_workload or "unknown",
        "destination_workload_namespace": dst_ns,
        "destination_principal": edge.destination_principal if mtls and reached else "unknown",
        "destination_app": edge.destination_service if reached else "unknown",
        "destination_version": edge.destination_version if reached else "unknown",
        "destination_service": edge.destination_fqdn,
        "destination_service_name": edge.destination_service,
        "destination_service_namespace": edge.destination_namespace,
        "destination_canonical_service": edge.destination_service if reached else "unknown",
        "destination_canonical_revision": edge.destination_version if reached else "latest",
        "destination_cluster": "Kubernetes" if reached else "unknown",
        "request_protocol": edge.protocol,
    }
    # Only the destination proxy knows how the bytes arrived.
    if reporter == "destination":
        labels["connection_security_policy"] = "mutual_tls" if mtls else "none"
    return labels


def _metrics(traffic: list[EdgeTraffic]) -> Iterator[_Metric]:
    buckets = (*map(float, ISTIO_DURATION_BUCKETS_MS), math.inf)
    for edge in traffic:
        reporters = ("source", "destination") if edge.destination_workload is not None \
            and edge.destination_istio else ("source",)
        for reporter in reporters:
            base = _labels(edge, reporter)
            if edge.protocol == "tcp":
                tcp = {**base, "response_flags": "-"}
                yield ("istio_tcp_sent_bytes", "counter", tcp, [("_total", {}, edge.tcp_sent_bps)])
                yield ("istio_tcp_received_bytes", "counter", tcp,
                       [("_total", {}, edge.tcp_received_bps)])
                yield ("istio_tcp_connections_opened", "counter", tcp, [("_total", {}, edge.rps)])
                yield ("istio_tcp_connections_closed", "counter", tcp, [("_total", {}, edge.rps)])
                continue
            mean_ms = edge.latency.p50_ms * math.exp(edge.latency.sigma ** 2 / 2)
            for i, (code, flags, fraction) in enumerate(edge.responses):
                rps = edge.rps * fraction
                labels = {**base, "response_code": code, "response_flags": flags}
                if edge.protocol == "grpc":
                    labels["grpc_response_status"] = (edge.grpc_statuses[i] if i < len(edge.grpc_statuses)
                                                      else _GRPC_STATUS.get(code, "2"))
                yield ("istio_requests", "counter", labels, [("_total", {}, rps)])
                samples: list[_Sample] = [
                    ("_bucket", {"le": _le(b)}, rps * (1.0 if math.isinf(b) else edge.latency.cdf(b)))
                    for b in buckets]
                samples += [("_count", {}, rps), ("_sum", {}, rps * mean_ms)]
                yield ("istio_request_duration_milliseconds", "histogram", labels, samples)


def _per_pod(metrics: Iterator[_Metric], pods: int) -> Iterator[_Metric]:
    """Each metric split over ``pods`` pods of the reporting workload (equal shares)."""
    for family, kind, labels, samples in metrics:
        if pods <= 1:
            yield family, kind, labels, samples
            continue
        side = "source" if labels["reporter"] == "source" else "destination"
        workload, ns = labels[f"{side}_workload"], labels[f"{side}_workload_namespace"]
        for k in range(pods):
            pod = {"instance": f"10.{len(workload) % 250}.{k}.{len(ns) % 250}:15020",
                   "kubernetes_namespace": ns, "kubernetes_pod_name": f"{workload}-pod{k}"}
            yield family, kind, {**labels, **pod}, [(sfx, extra, rate / pods) for sfx, extra, rate in samples]


def _label_text(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def openmetrics(traffic: list[EdgeTraffic], end: datetime, window_s: float, step_s: float = 15.0,
                history_s: float | None = None, pods: int = 1) -> str:
    """Istio metrics for ``traffic`` as OpenMetrics text, one sample every ``step_s`` seconds
    from ``end - history_s`` (default: the window plus a minute) up to ``end`` inclusive.

    Feed it to ``promtool tsdb create-blocks-from openmetrics``; query at ``end`` with a rate
    window of ``window_s``. Timestamps are seconds since the epoch, as OpenMetrics wants.

    With ``pods`` > 1 every reporting workload runs that many pods, each reporting its share
    of the traffic under the scrape labels Istio's sample Prometheus config adds (``instance``,
    ``kubernetes_namespace``, ``kubernetes_pod_name``): what Istio's recording rules sum away.

    The whole text of a big mesh is GBs (3.2 GB at 1,000 services): the demo server writes
    :func:`openmetrics_chunks` to files instead.
    """
    return "".join(openmetrics_chunks(traffic, end, window_s, step_s, history_s, pods))


def openmetrics_chunks(traffic: list[EdgeTraffic], end: datetime, window_s: float, step_s: float = 15.0,
                       history_s: float | None = None, pods: int = 1) -> Iterator[str]:
    """:func:`openmetrics`'s text in pieces (a family header, or one series' samples), made as
    they are consumed. OpenMetrics wants a family's series together, so the metrics are walked
    once per family (cheap: the label sets; the samples are written once) instead of holding
    every family's lines until the end."""
    history = window_s + 60.0 if history_s is None else history_s
    n = max(1, int(history // step_s))
    end_s = end.timestamp()
    times = [end_s - (n - k) * step_s for k in range(n + 1)]
    stamp = [(f"{t:.0f}" if t == int(t) else f"{t:.3f}") for t in times]
    # Counters start one step above zero so no rate() window begins at a reset.
    elapsed = [t - times[0] + step_s for t in times]
    families: dict[str, str] = {}  # in order of first appearance, as the text has always been
    for family, kind, _labels, _samples in _metrics(traffic):
        families.setdefault(family, kind)
    for family, kind in families.items():
        yield f"# TYPE {family} {kind}\n"
        for name, _kind, labels, samples in _per_pod(_metrics(traffic), pods):
            if name != family:
                continue
            fixed = [(f"{family}{suffix}{{{_label_text({**labels, **extra})}}} ", rate)
                     for suffix, extra, rate in samples]
            yield "".join(f"{head}{rate * dt!r} {ts}\n" for ts, dt in zip(stamp, elapsed, strict=True)
                          for head, rate in fixed)
    yield "# EOF\n"


def prometheus_source(traffic: list[EdgeTraffic], time: datetime, window_s: float,
                      history: bool = False) -> RawSource:
    """The RawSource the Prometheus collector would fetch at ``time`` from a Prometheus holding
    :func:`openmetrics` of ``traffic`` (no recording rules): same query keys, params and result
    JSON, quantiles computed with Prometheus's own histogram_quantile arithmetic.

    ``history``: also the hour of history "what changed" reads (steady: every point the instant
    answer). Off for the shipped classic bundles, recorded before those queries existed (and
    for generated meshes of thousands of edges, where an hour per edge is tens of MB)."""
    flat = _flat(traffic)
    ts = time.timestamp()
    ts_json: float | int = int(ts) if ts == int(ts) else ts
    window = format_duration(window_s)
    raw = RawSource(name="prometheus", kind="prometheus", meta={"url": "demo"})
    raw.add(rules_payload(time, window_s))
    for name, query in QUERIES.items():
        result = [{"metric": metric, "value": [ts_json, _value(v)]}
                  for metric, v in _evaluate(query, flat) if not query.positive or v > 0]
        raw.add(Payload(key=f"query:{name}", status=200, url="demo/api/v1/query",
                        body=json.dumps({"resultType": "vector", "result": result}),
                        params={"query": render(name, window), "time": ts}, meta={"phase": query.phase}))
    _add_history(raw, flat, time, window_s)
    if history:
        _add_onset_history(raw, flat, time, window_s)
    return raw


def _flat(traffic: list[EdgeTraffic]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every series of ``traffic`` (labels, rate) by metric name."""
    flat: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family, _kind, labels, samples in _metrics(traffic):
        for suffix, extra, rate in samples:
            flat.setdefault(family + suffix, []).append(({**labels, **extra}, rate))
    return flat


def graph_answers(traffic: list[EdgeTraffic], time: datetime, window_s: float) -> dict[str, Any]:
    """The answers (``data``, by query text) to the graph phase's queries of a scoped question
    (GRAPH_QUERIES), which :func:`prometheus_source` does not record: a mesh-wide bundle reads
    the full queries."""
    flat = _flat(traffic)
    ts = time.timestamp()
    ts_json: float | int = int(ts) if ts == int(ts) else ts
    window = format_duration(window_s)
    return {query.render(window): {"resultType": "vector", "result": [
        {"metric": metric, "value": [ts_json, _value(v)]}
        for metric, v in _evaluate(query, flat) if not query.positive or v > 0]}
        for query in GRAPH_QUERIES.values()}


def grouping(query: Query) -> tuple[str, ...]:
    """The labels ``query`` sums by (``le`` too for a quantile or a bucket query: the buckets are
    summed first)."""
    return ("le", *query.labels) if query.histogram else query.labels


def answer(query: Query, sums: dict[tuple[tuple[str, str], ...], float]) -> list[tuple[dict[str, str], float]]:
    """The server's answer from the rates summed by :func:`grouping`: the sums themselves, or
    histogram_quantile over each group's buckets (Prometheus's arithmetic, NaN included)."""
    if query.quantile is None:
        return [(dict(key), v) for key, v in sums.items()]
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for key, v in sums.items():
        le = float(dict(key)["le"])
        buckets.setdefault(tuple(kv for kv in key if kv[0] != "le"), []).append((le, v))
    return [(dict(key), histogram_quantile(query.quantile, b)) for key, b in buckets.items()]


def _evaluate(query: Query, flat: dict[str, list[tuple[dict[str, str], float]]],
              ) -> list[tuple[dict[str, str], float]]:
    """What the server answers to ``query`` when every series grows at a constant rate."""
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    group = grouping(query)
    for labels, rate in flat.get(query.metric(recorded=False), []):
        if not any(_selected(labels, fixed) for fixed in query.selectors):
            continue
        # Prometheus drops absent and empty labels from a grouping's result.
        key = tuple((k, labels[k]) for k in group if labels.get(k))
        sums[key] = sums.get(key, 0.0) + rate
    return answer(query, sums)


def rules_payload(time: datetime, window_s: float) -> Payload:
    """The recording-rules check as a server without Istio's rules answers it."""
    return Payload(key="rules", status=200, url="demo/api/v1/query", meta={"recorded": []},
                   body=json.dumps({"resultType": "vector", "result": []}),
                   params={"query": rules_query(format_duration(window_s)), "time": time.timestamp()})


def _value(v: float) -> str:
    # Prometheus prints sample values with Go's strconv 'f', -1 (NaN as "NaN"); any float text
    # parses back.
    return "NaN" if math.isnan(v) else repr(float(v))


_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _selected(labels: dict[str, str], selector: str) -> bool:
    """The tiny subset of PromQL matchers the queries use: ``a="b"``, ``a!="b"``, ``a=~"re"`` and
    ``a!~"re"``, separated by commas (a comma inside a quoted value is the value's)."""
    for m in _MATCHER.finditer(selector):
        name, op, value = m.groups()
        have = labels.get(name, "")
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
        if op == "!=" and have == value:
            return False
        if op == "=" and labels.get(name) != value:
            return False
    return True


def _add_history(raw: RawSource, flat: dict[str, list[tuple[dict[str, str], float]]], time: datetime,
                 window_s: float) -> None:
    """The collector's range queries over a steady demo: every point equals the instant answer."""
    step = series_step_s(window_s)
    end = time.timestamp()
    start = end - window_s
    stamps = [start + k * step for k in range(round(window_s / step) + 1)]
    for name, query in RANGE_QUERIES.items():
        result = [{"metric": metric, "values": [[int(t) if t == int(t) else t, _value(v)] for t in stamps]}
                  for metric, v in _evaluate(query, flat)]
        raw.add(Payload(key=f"range:{name}", status=200, url="demo/api/v1/query_range",
                        body=json.dumps({"resultType": "matrix", "result": result}),
                        params={"query": render_range(name, window_s), "start": start, "end": end, "step": step},
                        meta={"phase": query.phase}))


def _add_onset_history(raw: RawSource, flat: dict[str, list[tuple[dict[str, str], float]]], time: datetime,
                       window_s: float) -> None:
    """The history queries over a steady demo: the hour, every point the instant answer."""
    span = history_span_s(window_s)
    step = history_step_s(span)
    end = time.timestamp()
    stamps = [end - span + k * step for k in range(round(span / step) + 1)]
    for name, query in HISTORY_QUERIES.items():
        result = [{"metric": metric, "values": [[int(t) if t == int(t) else t, _value(v)] for t in stamps]}
                  for metric, v in _evaluate(query, flat)]
        raw.add(Payload(key=f"history:{name}", status=200, url="demo/api/v1/query_range",
                        body=json.dumps({"resultType": "matrix", "result": result}),
                        params={"query": render_history(name, span), "start": end - span, "end": end,
                                "step": step}, meta={"phase": query.phase}))
