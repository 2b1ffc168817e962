"""Istio standard metrics from Prometheus -> the edges of the service graph.

``fetch`` sends the fixed query set of :mod:`meshobs.collectors.promql` (five instant queries
for the whole mesh, at the evaluation time) through prometheus-api-client; ``normalize`` turns
the answers into Edges plus the Workloads and Services their labels imply.

How the two reporters are merged, per edge (source workload, destination service, destination
workload, protocol):

* Rate, responses (code x response flag) and latency come from ONE reporter, never the sum of
  both (that would double-count every request): the source proxy's series when there are any
  (the caller's experience, which includes retries' outcome, client-side timeouts and local
  503s), otherwise the destination proxy's (a caller without a sidecar, e.g. traffic from
  outside the mesh, only shows up there). The edge's ``reporter`` says which one was used,
  ``BOTH`` when both proxies saw the edge.
* Requests that never reached a destination exist only in source-reported series with
  ``destination_workload="unknown"``; they become an edge with ``destination_workload=None``.
* Security comes only from destination-reported series (``connection_security_policy`` is
  meaningful only there): plaintext if any destination-reported traffic arrived as ``none``,
  mutual TLS if all of it was ``mutual_tls``, unknown otherwise.
* Principals: the first known value from either reporter.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from meshobs.config import Config
from meshobs.durations import format_duration, parse_duration
from meshobs.model import (
    Edge,
    Latency,
    Mesh,
    MetricSeries,
    Reporter,
    ResponseStat,
    Security,
    Service,
    ServiceRef,
    SnapshotPart,
    SourceState,
    SourceStatus,
    Workload,
    WorkloadRef,
)
from meshobs.raw import Payload, RawSource, iso, utc_now

from .base import FetchContext, NormalizeContext
from .http import describe_error
from .promql import QUERIES, RANGE_QUERIES, histogram_quantile, render, render_range, series_step_s

KIND = "prometheus"
UNKNOWN = "unknown"
DEFAULT_TIMEOUT_S = 10.0


class PrometheusCollector:
    """Queries one Prometheus for the whole mesh with a constant number of queries."""

    kind = KIND

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, verify_tls: bool = True,
                 ca_file: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        session = requests.Session()
        session.verify = (ca_file or True) if verify_tls else False
        # No automatic retries: a failing Prometheus should be reported at once, not after
        # the library's default back-off (seconds per query).
        self.client = PrometheusConnect(url=self.url, headers=headers or None, session=session,  # type: ignore[arg-type]
                                        timeout=timeout_s,  # type: ignore[arg-type]
                                        retry=Retry(total=0, raise_on_status=False))

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """Run every query at ``ctx.time``; a failed query is a payload with ``error``."""
        raw = RawSource(name="prometheus", kind=KIND, meta={"url": self.url})
        ts = ctx.time.timestamp()
        window = format_duration(ctx.window_s)
        unreachable: str | None = None
        with raw.timed():
            for name in QUERIES:
                promql = render(name, window)
                if unreachable is not None:
                    # The server is down or hung: do not wait out the timeout once per query.
                    raw.add(Payload(key=f"query:{name}", url=f"{self.url}/api/v1/query",
                                    params={"query": promql, "time": ts},
                                    error=f"not sent: {unreachable}"))
                    continue
                payload = raw.add(self._query(name, promql, ts))
                if payload.meta.get("unreachable"):
                    unreachable = payload.error
            if unreachable is None:
                for name in RANGE_QUERIES:
                    raw.add(self._range(name, render_range(name, ctx.window_s), ctx))
        return [raw]

    def _range(self, name: str, promql: str, ctx: FetchContext) -> Payload:
        """One history query over the window; failures only cost the sparklines."""
        step = series_step_s(ctx.window_s)
        end = ctx.time
        start = datetime.fromtimestamp(end.timestamp() - ctx.window_s, tz=UTC)
        payload = Payload(key=f"range:{name}", url=f"{self.url}/api/v1/query_range",
                          params={"query": promql, "start": start.timestamp(), "end": end.timestamp(),
                                  "step": step}, fetched_at=iso(utc_now()))
        t0 = time.perf_counter()
        try:
            result = self.client.custom_query_range(promql, start_time=start, end_time=end, step=f"{step:g}s")
            payload.body = json.dumps({"resultType": "matrix", "result": result})
            payload.status = 200
        except PrometheusApiClientException as exc:
            payload.error = f"Prometheus at {self.url} answered {_http_reason(str(exc))} to range query {name}"
        except requests.RequestException as exc:
            payload.error = describe_error(exc, self.url, self.timeout_s)
        except (KeyError, TypeError, ValueError) as exc:
            payload.error = f"Prometheus at {self.url} answered range query {name} unexpectedly ({exc})"
        payload.elapsed_s = time.perf_counter() - t0
        return payload

    def _query(self, name: str, promql: str, ts: float) -> Payload:
        start, fetched_at = time.perf_counter(), iso(utc_now())
        payload = Payload(key=f"query:{name}", url=f"{self.url}/api/v1/query",
                          params={"query": promql, "time": ts}, fetched_at=fetched_at)
        try:
            result = self.client.custom_query(promql, params={"time": ts})
            payload.body = json.dumps({"resultType": "vector", "result": result})
            payload.status = 200
        except PrometheusApiClientException as exc:
            payload.error = f"Prometheus at {self.url} answered {_http_reason(str(exc))} to query {name}"
        except requests.exceptions.JSONDecodeError:
            payload.error = (f"Prometheus at {self.url} answered query {name} with a body that is "
                             f"not JSON: is sources.prometheus.url the Prometheus server?")
        except requests.RequestException as exc:
            reason = describe_error(exc, self.url, self.timeout_s)
            reason = reason.replace(self.url, f"Prometheus at {self.url}", 1)
            payload.error = f"{reason}: check sources.prometheus.url"
            payload.meta["unreachable"] = isinstance(exc, (requests.ConnectionError, requests.Timeout))
        except (KeyError, TypeError) as exc:
            payload.error = (f"Prometheus at {self.url} answered query {name} with an unexpected "
                             f"JSON shape (missing {exc}): is this a Prometheus query API?")
        payload.elapsed_s = time.perf_counter() - start
        return payload


def _http_reason(text: str) -> str:
    # The library's message is "HTTP Status Code 500 (b'...')": keep the status and a snippet.
    head, _, rest = text.partition(" (")
    return head.replace("HTTP Status Code", "HTTP") + (f" ({rest[:120]}" if rest else "")


def from_config(config: Config, prior: list[RawSource]) -> PrometheusCollector | None:
    """A collector for ``sources.prometheus``; None when that section is absent."""
    section = config.sources.get("prometheus")
    if section is None:
        return None
    timeout = section.get("timeout")
    return PrometheusCollector(
        section.get("url", "http://localhost:9090"),
        headers=section.get("headers"),
        verify_tls=section.get("verify_tls", True),
        ca_file=section.get("ca_file"),
        timeout_s=parse_duration(timeout) if timeout is not None else DEFAULT_TIMEOUT_S,
    )


# -- normalize -------------------------------------------------------------------------------

_EdgeKey = tuple[WorkloadRef, ServiceRef, WorkloadRef | None, str]


@dataclass
class _Side:
    """What one reporter said about one edge."""

    responses: dict[tuple[str, str], float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    tcp: dict[str, float] = field(default_factory=dict)
    security: dict[str, float] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)
    seen: bool = False


@dataclass
class _EdgeFacts:
    source_service: ServiceRef | None
    sides: dict[str, _Side] = field(default_factory=lambda: {"source": _Side(), "destination": _Side()})


def _matrix(payload: Payload) -> list[dict[str, Any]]:
    """The series of one range-query payload (``{"resultType": "matrix", "result": [...]}``)."""
    data = payload.json()
    if isinstance(data, dict) and "status" in data:
        data = data.get("data") or {}
    if isinstance(data, dict):
        if data.get("resultType", "matrix") != "matrix":
            raise ValueError(f"{payload.key}: expected a range result, got {data['resultType']}")
        data = data.get("result", [])
    if not isinstance(data, list) or not all(isinstance(s, dict) and "values" in s for s in data):
        raise ValueError(f"{payload.key}: expected a list of range series")
    return data


def _series(payload: Payload) -> list[dict[str, Any]]:
    """The result series of one query payload (body as fetched, or a full API envelope)."""
    data = payload.json()
    if isinstance(data, dict) and "status" in data:  # a full /api/v1/query response
        if data["status"] == "error":
            raise ValueError(f"{payload.key}: Prometheus error: {data.get('error', 'unknown')}")
        data = data.get("data") or {}
    if isinstance(data, dict):
        if data.get("resultType", "vector") != "vector":
            raise ValueError(f"{payload.key}: expected an instant vector, got {data['resultType']}")
        data = data.get("result", [])
    if not isinstance(data, list):
        raise ValueError(f"{payload.key}: expected a list of series, got {type(data).__name__}")
    for s in data:
        if not isinstance(s, dict) or "value" not in s:
            raise ValueError(f"{payload.key}: a series without an instant value (a range result?)")
    return data


def _key(m: dict[str, str], protocol: str) -> _EdgeKey:
    def get(label: str) -> str:
        return m.get(label) or UNKNOWN

    dst_wl = get("destination_workload")
    return (WorkloadRef(get("source_workload_namespace"), get("source_workload")),
            ServiceRef(get("destination_service_namespace"), get("destination_service_name")),
            None if dst_wl == UNKNOWN else WorkloadRef(get("destination_workload_namespace"), dst_wl),
            protocol)


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Query results -> Edges, Workloads, Services and the ``prometheus`` SourceStatus."""
    facts: dict[_EdgeKey, _EdgeFacts] = {}
    failed: list[str] = []
    revisions: dict[WorkloadRef, str] = {}

    def side(m: dict[str, str], protocol: str) -> _Side:
        key = _key(m, protocol)
        src_svc = m.get("source_canonical_service") or UNKNOWN
        if key not in facts:
            facts[key] = _EdgeFacts(None if src_svc == UNKNOWN
                                    else ServiceRef(key[0].namespace, src_svc))
        rev_src, rev_dst = m.get("source_canonical_revision"), m.get("destination_canonical_revision")
        if rev_src and rev_src not in (UNKNOWN, "latest"):
            revisions.setdefault(key[0], rev_src)
        if key[2] is not None and rev_dst and rev_dst not in (UNKNOWN, "latest"):
            revisions.setdefault(key[2], rev_dst)
        s = facts[key].sides["source" if m.get("reporter") == "source" else "destination"]
        s.seen = True
        for label in ("source_principal", "destination_principal"):
            if (v := m.get(label)) and v != UNKNOWN:
                s.principals.setdefault(label, v)
        return s

    for name in QUERIES:
        payload = raw.get(f"query:{name}")
        if payload is None:
            failed.append(f"{name} (not fetched)")
            continue
        if (why := payload.failure()) is not None:
            failed.append(f"{name}: {why}")
            continue
        for s in _series(payload):
            m, value = s["metric"], float(s["value"][1])
            if math.isnan(value):
                continue
            if name == "requests":
                sd = side(m, m.get("request_protocol") or "http")
                code = (m.get("response_code") or "0", m.get("response_flags") or "-")
                sd.responses[code] = sd.responses.get(code, 0.0) + value
                if m.get("reporter") == "destination" and (csp := m.get("connection_security_policy")):
                    sd.security[csp] = sd.security.get(csp, 0.0) + value
            elif name == "latency":
                sd = side(m, m.get("request_protocol") or "http")
                le = float(m.get("le", "nan"))
                sd.buckets[le] = sd.buckets.get(le, 0.0) + value
            else:
                sd = side(m, "tcp")
                sd.tcp[name] = sd.tcp.get(name, 0.0) + value
                if name == "tcp_opened" and m.get("reporter") == "destination" and (
                        csp := m.get("connection_security_policy")):
                    sd.security[csp] = sd.security.get(csp, 0.0) + value

    part = SnapshotPart()
    for key, f in facts.items():
        edge = _edge(key, f)
        if edge is not None:
            part.edges.append(edge)
    _nodes(part, revisions)
    history_problems = _history(raw, ctx, part)
    status = _status(raw, failed, len(part.edges), ctx)
    if history_problems and status.state is SourceState.OK:
        status = replace(status, message=f"{status.message}; no history: {history_problems[0]}")
    part.sources.append(status)
    return part


def _history(raw: RawSource, ctx: NormalizeContext, part: SnapshotPart) -> list[str]:
    """Range-query payloads -> MetricSeries per service (request_rate, error_ratio, p99_ms).

    Missing history (an older bundle, a failed range query) is not an error of the source:
    the instant numbers are intact. Returns what went wrong, for the status message.
    """
    problems: list[str] = []
    matrices: dict[str, list[dict[str, Any]]] = {}
    for name in RANGE_QUERIES:
        payload = raw.get(f"range:{name}")
        if payload is None:
            continue
        if (why := payload.failure()) is not None:
            problems.append(f"range query {name}: {why}")
            continue
        try:
            matrices[name] = _matrix(payload)
        except ValueError as exc:
            problems.append(str(exc))
    if "requests" not in matrices:
        return problems
    step = series_step_s(ctx.window_s)
    start_ts = ctx.time.timestamp() - ctx.window_s
    n = round(ctx.window_s / step) + 1
    start = datetime.fromtimestamp(start_ts, tz=UTC)

    def index(t: float) -> int | None:
        i = round((t - start_ts) / step)
        return i if 0 <= i < n else None

    def service(m: dict[str, str]) -> ServiceRef | None:
        name, ns = m.get("destination_service_name"), m.get("destination_service_namespace")
        return ServiceRef(ns, name) if name and ns and UNKNOWN not in (name, ns) else None

    def grid(rows: list[dict[str, Any]]) -> dict[ServiceRef, list[float | None]]:
        out: dict[ServiceRef, list[float | None]] = {}
        for s in rows:
            ref = service(s["metric"])
            if ref is None:
                continue
            values = out.setdefault(ref, [None] * n)
            for t, v in s.get("values", []):
                i, x = index(float(t)), float(v)
                if i is not None and not math.isnan(x):
                    values[i] = (values[i] or 0.0) + x
        return out

    requests_by_svc = grid(matrices["requests"])
    errors_by_svc = grid(matrices.get("errors", []))
    buckets: dict[ServiceRef, list[dict[float, float]]] = {}
    for s in matrices.get("latency", []):
        ref = service(s["metric"])
        if ref is None:
            continue
        per_step = buckets.setdefault(ref, [{} for _ in range(n)])
        le = float(s["metric"].get("le", "nan"))
        for t, v in s.get("values", []):
            i = index(float(t))
            if i is not None:
                per_step[i][le] = per_step[i].get(le, 0.0) + float(v)
    for ref, rates in sorted(requests_by_svc.items()):
        errs = errors_by_svc.get(ref, [None] * n)
        ratio = tuple(None if r is None else ((e or 0.0) / r if r > 0 else 0.0) for r, e in zip(rates, errs))
        part.series.append(MetricSeries(ref, "request_rate", start, step, tuple(rates)))
        part.series.append(MetricSeries(ref, "error_ratio", start, step, ratio))
        if ref in buckets:
            p99 = tuple(_finite(histogram_quantile(0.99, b.items())) if b else None for b in buckets[ref])
            part.series.append(MetricSeries(ref, "p99_ms", start, step, p99))
    return problems


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def _edge(key: _EdgeKey, f: _EdgeFacts) -> Edge | None:
    src, dst = f.sides["source"], f.sides["destination"]
    # Histograms series exist even at zero rate: a side "saw" the edge only if it counted
    # requests or bytes.
    src_active = bool(src.responses or src.tcp)
    dst_active = bool(dst.responses or dst.tcp)
    if not (src_active or dst_active):
        return None
    chosen = src if src_active else dst
    reporter = Reporter.BOTH if src_active and dst_active else (
        Reporter.SOURCE if src_active else Reporter.DESTINATION)
    responses = tuple(ResponseStat(code, flags, rate)
                      for (code, flags), rate in sorted(chosen.responses.items()))
    latency = None
    # The chosen reporter's histogram; the other's when the chosen one recorded nothing.
    for sd in (chosen, dst if chosen is src else src):
        q = [histogram_quantile(p, sd.buckets.items()) for p in (0.5, 0.9, 0.99)]
        if not any(math.isnan(v) for v in q):
            latency = Latency(p50=q[0], p90=q[1], p99=q[2])
            break
    security = Security.UNKNOWN
    if dst.security.get("none", 0.0) > 0:
        security = Security.PLAINTEXT
    elif dst.security.get("mutual_tls", 0.0) > 0:
        security = Security.MUTUAL_TLS
    principals = {**dst.principals, **src.principals} if src_active else {**src.principals, **dst.principals}
    return Edge(
        source=key[0], destination=key[1], destination_workload=key[2],
        source_service=f.source_service, protocol=key[3], mesh=Mesh.ISTIO,
        request_rate=sum(r.rate for r in responses), responses=responses, latency=latency,
        security=security, reporter=reporter,
        tcp_sent_bytes_rate=chosen.tcp.get("tcp_sent") if key[3] == "tcp" else None,
        tcp_received_bytes_rate=chosen.tcp.get("tcp_received") if key[3] == "tcp" else None,
        tcp_connections_opened_rate=chosen.tcp.get("tcp_opened") if key[3] == "tcp" else None,
        source_principal=principals.get("source_principal"),
        destination_principal=principals.get("destination_principal"),
    )


def _nodes(part: SnapshotPart, revisions: dict[WorkloadRef, str]) -> None:
    """Workloads and Services implied by the edges' labels (canonical service -> workload)."""
    services: dict[ServiceRef, set[WorkloadRef]] = {}
    workloads: dict[WorkloadRef, set[ServiceRef]] = {}
    for e in part.edges:
        if not e.destination.is_unknown:
            services.setdefault(e.destination, set())
        if e.destination_workload is not None and not e.destination.is_unknown:
            services[e.destination].add(e.destination_workload)
            workloads.setdefault(e.destination_workload, set()).add(e.destination)
        if not e.source.is_unknown:
            owned = workloads.setdefault(e.source, set())
            if e.source_service is not None:
                owned.add(e.source_service)
    part.services.extend(Service(ref=ref, mesh=Mesh.ISTIO, workloads=tuple(sorted(wls)),
                                 hosts=(f"{ref.name}.{ref.namespace}.svc.cluster.local",))
                         for ref, wls in sorted(services.items()))
    part.workloads.extend(Workload(ref=ref, mesh=Mesh.ISTIO, services=tuple(sorted(svcs)),
                                   version=revisions.get(ref), meshed=True)
                          for ref, svcs in sorted(workloads.items()))


def _status(raw: RawSource, failed: list[str], n_edges: int, ctx: NormalizeContext) -> SourceStatus:
    url = raw.meta.get("url", "")
    if failed:
        answered = len(QUERIES) - len(failed)
        if answered == 0:
            message = f"{raw.name}: no query answered: {failed[0].split(': ', 1)[-1]}"
        else:
            message = (f"{raw.name}: " + "; ".join(f"query {f}" for f in failed)
                       + f"; kept the {answered} queries that answered")
        return SourceStatus(raw.name, SourceState.ERROR, message, raw.duration_s, KIND)
    if n_edges == 0:
        window = format_duration(ctx.window_s)
        return SourceStatus(raw.name, SourceState.NO_DATA,
                            f"no istio_requests_total series in the last {window} at {url or 'Prometheus'}: "
                            f"is Prometheus scraping the sidecars?", raw.duration_s, KIND)
    return SourceStatus(raw.name, SourceState.OK, f"{n_edges} edges", raw.duration_s, KIND)
