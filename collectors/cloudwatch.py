"""CloudWatch: App Mesh Envoy metrics (as the CloudWatch agent publishes them) -> Edges.

fetch: ``ListMetrics`` over the configured namespace (every page, payloads ``ListMetrics/<n>``),
then ``GetMetricData`` for the App Mesh metrics it found, at most 500 queries per call, each call
following ``NextToken`` (payloads ``GetMetricData/<n>``; ``params.MetricDataQueries`` keeps the
query ids so normalize can map results back without the ListMetrics pages). Throttling is
retried by botocore (``retry_mode`` standard or adaptive, ``max_attempts``).

normalize: one Edge per (mesh, source virtual node or gateway, target virtual service, target
virtual node). Identities: ``WorkloadRef(namespace=<mesh>, name=<virtualNode>)`` and
``ServiceRef(<mesh>, <virtual service name>)``; an edge with only a target virtual node (raw
Envoy cluster stats) gets ``ServiceRef(<mesh>, <target node>)``. Responses are per status class
(``2xx`` .. ``5xx``) with flags ``-``: Envoy response flags do not reach CloudWatch. Latency
(TargetResponseTime, ms) uses the p50/p90/p99 extended statistics when CloudWatch has them;
otherwise the Average is put in ``p50`` and the source status says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from meshobs.config import Config
from meshobs.model import (
    UNKNOWN_WORKLOAD,
    Edge,
    Latency,
    Mesh,
    Reporter,
    ResponseStat,
    ServiceRef,
    SnapshotPart,
    SourceState,
    SourceStatus,
    Workload,
    WorkloadRef,
)
from meshobs.raw import Payload, RawSource, iso
from meshobs.shape import as_list

from . import aws
from .appmesh_names import parse_cluster_name
from .base import FetchContext, NormalizeContext

KIND = "cloudwatch"
PHASE = "graph"  # the App Mesh graph: all of it comes in the graph phase (meshobs.collect)
DEFAULT_NAMESPACE = "AppMeshEnvoy"
MAX_QUERIES = 500  # GetMetricData's limit per call
MAX_PAGES = 200  # a bound on pagination loops, whatever the server answers
PERCENTILES = ("p50", "p90", "p99")

# Metric-extension names (with the envoy.appmesh. / envoy_appmesh_ prefix stripped).
CODE_METRICS = {f"HTTPCode_Target_{c}XX_Count": f"{c}xx" for c in "2345"}
COUNT_METRICS = {"RequestCountPerTarget", "RequestCount", "GrpcRequestCount", "TargetProcessedBytes",
                 "ProcessedBytes", "NewConnectionCount", *CODE_METRICS}
LATENCY_METRIC = "TargetResponseTime"
# Raw Envoy cluster stats (Prometheus-style names via the agent's EMF processor, or StatsD dots).
RAW_RQ_XX = "envoy_cluster_upstream_rq_xx"
RAW_COUNTERS = {"envoy_cluster_upstream_rq_total", RAW_RQ_XX, "envoy_cluster_upstream_rq_pending_overflow",
                "envoy_cluster_upstream_cx_connect_fail", "envoy_cluster_upstream_rq_timeout"}
_PREFIXES = ("envoy.appmesh.", "envoy_appmesh_", "appmesh.", "appmesh_")
# Dimension aliases: the extension's names and the Envoy stats tags.
DIM_MESH = ("Mesh", "appmesh.mesh", "appmesh_mesh")
DIM_NODE = ("VirtualNode", "appmesh.virtual_node", "appmesh_virtual_node")
DIM_GATEWAY = ("VirtualGateway", "appmesh.virtual_gateway", "appmesh_virtual_gateway")
DIM_TARGET_SERVICE = ("TargetVirtualService",)
DIM_TARGET_NODE = ("TargetVirtualNode",)
DIM_CLUSTER = ("envoy.cluster_name", "envoy_cluster_name", "cluster_name", "ClusterName")
DIM_CODE_CLASS = ("envoy.response_code_class", "envoy_response_code_class", "response_code_class")


def metric_name(name: str) -> str:
    """The metric's name without the agent's App Mesh prefix."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name.replace(".", "_") if name.startswith("envoy.cluster.") else name


def is_appmesh_metric(metric: Mapping[str, Any]) -> bool:
    """A ListMetrics entry meshobs reads: a known name carrying an App Mesh identity dimension."""
    name = metric_name(str(metric.get("MetricName", "")))
    dims = {d.get("Name") for d in metric.get("Dimensions") or []}
    known = name in COUNT_METRICS or name == LATENCY_METRIC or name in RAW_COUNTERS
    return known and bool(dims & set(DIM_MESH + DIM_NODE + DIM_GATEWAY))


def period_for(window_s: float) -> int:
    """The query period: the whole window, rounded up to a minute (CloudWatch's rule above 60 s)."""
    return max(60, math.ceil(window_s / 60.0) * 60)


def build_queries(metrics: Iterable[Mapping[str, Any]], window_s: float) -> list[dict[str, Any]]:
    """GetMetricData queries for the metrics (deduplicated): Sum for counters, p50/p90/p99 and
    Average for TargetResponseTime. Ids are ``m<n>`` (CloudWatch wants ``^[a-z][A-Za-z0-9_]*$``)."""
    seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    queries: list[dict[str, Any]] = []
    period = period_for(window_s)
    for metric in metrics:
        # Keep ListMetrics' dimension order in the query (some implementations match the list
        # as given); sort only for the deduplication key.
        dims = tuple((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or [])
        key = (str(metric.get("Namespace", "")), str(metric["MetricName"]), tuple(sorted(dims)))
        if key in seen:
            continue
        seen.add(key)
        stats = (*PERCENTILES, "Average") if metric_name(key[1]) == LATENCY_METRIC else ("Sum",)
        for stat in stats:
            queries.append({
                "Id": f"m{len(queries)}",
                "MetricStat": {"Metric": {"Namespace": key[0], "MetricName": key[1],
                                          "Dimensions": [{"Name": n, "Value": v} for n, v in dims]},
                               "Period": period, "Stat": stat},
                "ReturnData": True,
            })
    return queries


@dataclass
class CloudWatchCollector:
    """Fetches App Mesh metrics from one CloudWatch namespace."""

    section: dict[str, Any]
    kind: str = KIND
    namespace: str = DEFAULT_NAMESPACE
    meta: dict[str, Any] = field(default_factory=dict)

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        raw = RawSource(name=KIND, kind=KIND, meta={"namespace": self.namespace, **self.meta})
        with raw.timed():
            try:
                client = aws.make_client("cloudwatch", self.section)
            except aws.AwsSetupError as exc:
                raw.error = str(exc)
                return [raw]
            metrics = self._list_metrics(client, raw)
            if metrics is not None:
                queries = build_queries(metrics, ctx.window_s)
                # Percentiles go in calls of their own: an endpoint that rejects extended
                # statistics then costs the latency percentiles only, not the counts.
                plain = [q for q in queries if q["MetricStat"]["Stat"] not in PERCENTILES]
                self._get_metric_data(client, raw, plain, ctx)
                self._get_metric_data(client, raw, [q for q in queries if q not in plain], ctx)
        return [raw]

    def _list_metrics(self, client: Any, raw: RawSource) -> list[dict[str, Any]] | None:
        params: dict[str, Any] = {"Namespace": self.namespace}
        found: list[dict[str, Any]] = []
        for payload, body in aws.pages(client, "list_metrics", "ListMetrics", params, service="cloudwatch",
                                       max_pages=MAX_PAGES):
            raw.add(payload)
            if body is None:
                return None
            found.extend(m for m in body.get("Metrics") or [] if is_appmesh_metric(m))
        return found

    def _get_metric_data(self, client: Any, raw: RawSource, queries: list[dict[str, Any]],
                         ctx: FetchContext) -> None:
        start = ctx.time - timedelta(seconds=ctx.window_s)
        n = sum(1 for p in raw.payloads if p.key.startswith("GetMetricData/"))
        for first in range(0, len(queries), MAX_QUERIES):
            batch = queries[first:first + MAX_QUERIES]
            params: dict[str, Any] = {"MetricDataQueries": batch, "StartTime": iso(start),
                                      "EndTime": iso(ctx.time), "ScanBy": "TimestampDescending"}
            for payload, _body in aws.pages(client, "get_metric_data", "GetMetricData", params,
                                            service="cloudwatch", first=n, max_pages=MAX_PAGES):
                raw.add(payload)
                n += 1


def from_config(config: Config, prior: list[RawSource]) -> CloudWatchCollector | None:
    """A collector when ``sources.cloudwatch`` is configured."""
    section = config.sources.get("cloudwatch")
    if section is None:
        return None
    return CloudWatchCollector(section=dict(section or {}),
                               namespace=str((section or {}).get("namespace") or DEFAULT_NAMESPACE))


# -- normalize ---------------------------------------------------------------------------------

def _dim(dims: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
        if dims.get(n):
            return dims[n]
    return None


@dataclass
class _EdgeAcc:
    counts: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    latency: dict[str, float] = field(default_factory=dict)


_EdgeKey = tuple[str, str, str | None, str | None]  # mesh, source node, target service, target node


def _edge_key(name: str, dims: Mapping[str, str]) -> tuple[_EdgeKey | None, str | None]:
    """(edge key, response class or None) of one metric; key None for inbound/node-only metrics."""
    mesh = _dim(dims, DIM_MESH) or ""
    source = _dim(dims, DIM_NODE) or _dim(dims, DIM_GATEWAY) or ""
    target_service = _dim(dims, DIM_TARGET_SERVICE)
    target_node = _dim(dims, DIM_TARGET_NODE)
    code_class = CODE_METRICS.get(name)
    if name in RAW_COUNTERS:
        cluster = parse_cluster_name(_dim(dims, DIM_CLUSTER) or "", [mesh] if mesh else [])
        if cluster is None or cluster.direction != "egress":
            return None, None
        mesh, target_node = mesh or cluster.mesh, cluster.virtual_node
        if name == RAW_RQ_XX:
            cls = _dim(dims, DIM_CODE_CLASS) or ""
            code_class = f"{cls[0]}xx" if cls[:1].isdigit() else None
    if not source or not (target_service or target_node):
        return None, None
    return (mesh, source, target_service, target_node), code_class


def _queries_by_id(payload: Payload) -> dict[str, Mapping[str, Any]]:
    return {str(q.get("Id")): q for q in as_list(payload.params.get("MetricDataQueries")) if isinstance(q, Mapping)}


def _metric_of(payload: Payload, result: Any, queries: Mapping[str, Mapping[str, Any]]
               ) -> tuple[str, str, dict[str, str], list[float]]:
    """(query id, metric name, dimensions, values) of one MetricDataResults entry, its shape
    checked (ValueError naming the field)."""
    if not isinstance(result, Mapping):
        raise ValueError(f"expected a result object, got {type(result).__name__}")
    qid = str(result.get("Id"))
    query = queries.get(qid)
    if query is None:
        raise ValueError(f"result {qid!r} matches no query of the request")
    stat_spec = query.get("MetricStat")
    metric = stat_spec.get("Metric") if isinstance(stat_spec, Mapping) else None
    if not isinstance(metric, Mapping) or not isinstance(metric.get("MetricName"), str):
        raise ValueError(f"query {qid}: MetricStat.Metric.MetricName missing")
    dims = {str(d["Name"]): str(d["Value"]) for d in as_list(metric.get("Dimensions"))
            if isinstance(d, Mapping) and "Name" in d and "Value" in d}
    raw_values = result.get("Values") or []
    if not isinstance(raw_values, list):
        raise ValueError(f"query {qid}: Values: expected a list, got {type(raw_values).__name__}")
    values = []
    for v in raw_values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"query {qid}: Values: {v!r} is not a finite number")
        values.append(float(v))
    return qid, metric_name(metric["MetricName"]), dims, values


def _described(name: str, dims: Mapping[str, str]) -> str:
    where = " ".join(f"{k}={v}" for k, v in sorted(dims.items()))
    return f"{name} {{{where}}}" if where else name


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """GetMetricData payloads -> Edges, Workloads and the source status (pure).

    A result CloudWatch could not compute (StatusCode InternalError, Forbidden...) is not read
    as zero: its metric is named in the source's problems (MSH0003), so a missing 5xx count is
    "could not check", not "no errors". A malformed result costs that result only.
    """
    window = ctx.window_s if ctx.window_s > 0 else 300.0
    problems: list[str] = []
    items: list[str] = []
    edges: dict[_EdgeKey, _EdgeAcc] = defaultdict(_EdgeAcc)
    nodes: set[tuple[str, str]] = set()
    n_results = 0
    for payload in raw.payloads:
        if payload.failure():
            problems.append(f"{payload.key}: {payload.failure()}")
            continue
        if not payload.key.startswith("GetMetricData/"):
            continue
        body = payload.json()
        if not isinstance(body, Mapping):
            raise ValueError(f"{payload.key}: expected a GetMetricData response object, got {type(body).__name__}")
        for message in as_list(body.get("Messages")):
            if isinstance(message, Mapping):
                problems.append(f"{payload.key}: {message.get('Code', '')} {message.get('Value', '')}".strip())
        queries = _queries_by_id(payload)
        results = body.get("MetricDataResults") or []
        for i, result in enumerate(results if isinstance(results, list) else []):
            try:
                qid, name, dims, values = _metric_of(payload, result, queries)
            except ValueError as exc:
                items.append(f"{payload.key} MetricDataResults[{i}]: {exc}")
                continue
            status = str(result.get("StatusCode", "Complete"))
            for message in as_list(result.get("Messages")):
                if isinstance(message, Mapping):
                    problems.append(f"{payload.key} query {qid}: {message.get('Code', '')} "
                                    f"{message.get('Value', '')}".strip())
            if status not in ("Complete", "PartialData"):
                items.append(f"{payload.key} query {qid} ({_described(name, dims)}): status {status}; "
                             "its numbers are not known")
                problems.append(f"{payload.key} query {qid}: status {status}")
                continue
            stat_spec = queries[qid]["MetricStat"]
            mesh, node = _dim(dims, DIM_MESH), _dim(dims, DIM_NODE) or _dim(dims, DIM_GATEWAY)
            if mesh and node:
                nodes.add((mesh, node))
            if _dim(dims, DIM_TARGET_NODE) and mesh:
                nodes.add((mesh, str(_dim(dims, DIM_TARGET_NODE))))
            key, code_class = _edge_key(name, dims)
            if key is None or not values:
                continue
            n_results += 1
            acc = edges[key]
            stat = str(stat_spec.get("Stat"))
            if name == LATENCY_METRIC:
                # Newest first (ScanBy TimestampDescending); over one window there is one point.
                acc.latency[stat] = values[0]
            elif code_class is not None:
                acc.counts[code_class] += sum(values)
            elif name in ("RequestCountPerTarget", "envoy_cluster_upstream_rq_total"):
                acc.counts["total"] += sum(values)
            elif name == "envoy_cluster_upstream_rq_pending_overflow":
                acc.counts["overflow"] += sum(values)
    part = SnapshotPart()
    average_only = False
    for (mesh, source, target_service, target_node), acc in sorted(edges.items(), key=lambda kv: str(kv[0])):
        classes = {c: v for c, v in acc.counts.items() if c.endswith("xx") and v > 0}
        total = max(acc.counts.get("total", 0.0), sum(classes.values()))
        responses = [ResponseStat(c, "-", v / window) for c, v in sorted(classes.items())]
        unclassified = total - sum(classes.values())
        if unclassified > 1e-9:
            responses.append(ResponseStat("unknown", "-", unclassified / window))
        latency = None
        if any(p in acc.latency for p in PERCENTILES):
            latency = Latency(acc.latency.get("p50"), acc.latency.get("p90"), acc.latency.get("p99"))
        elif "Average" in acc.latency:
            latency, average_only = Latency(p50=acc.latency["Average"]), True
        part.edges.append(Edge(
            source=WorkloadRef(mesh, source) if source else UNKNOWN_WORKLOAD,
            destination=ServiceRef(mesh, target_service or str(target_node)),
            destination_workload=WorkloadRef(mesh, target_node) if target_node else None,
            mesh=Mesh.APPMESH, request_rate=total / window, responses=tuple(responses),
            latency=latency, reporter=Reporter.SOURCE,
        ))
    part.workloads = [Workload(ref=WorkloadRef(m, n), mesh=Mesh.APPMESH, meshed=True) for m, n in sorted(nodes)]
    notes = []
    if average_only:
        notes.append("latency is TargetResponseTime's Average, shown as p50 (no percentiles published)")
    if problems:
        state = SourceState.ERROR if n_results == 0 else SourceState.OK
        message = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        if n_results:
            message = f"partial: {message}"
    else:
        state = SourceState.OK if part.edges or part.workloads else SourceState.NO_DATA
        message = "" if state is SourceState.OK else \
            f"no App Mesh metrics in CloudWatch namespace {raw.meta.get('namespace', '?')!r}: check " \
            f"sources.cloudwatch.namespace (the CloudWatch agent's metrics namespace)"
    message = "; ".join(x for x in (message, *notes) if x)
    part.sources.append(SourceStatus(raw.name, state, message, raw.duration_s, KIND, problems=tuple(items)))
    return part

