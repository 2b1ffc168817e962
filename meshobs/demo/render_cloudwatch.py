"""CloudWatch's view of demo traffic: the App Mesh metrics extension as the CloudWatch agent
publishes it, rendered as the very ListMetrics / GetMetricData payloads the collector fetches.

App Mesh mapping of an ``EdgeTraffic``: mesh = ``mesh`` (default: the destination namespace),
``VirtualNode`` = source workload, ``TargetVirtualService`` = destination service,
``TargetVirtualNode`` = destination workload (absent when the request reached no destination).
Requests that got no response (code ``0``: UH, UF ...) count as 5XX, which is what Envoy answers
the application with. ``TargetResponseTime`` percentiles come from the edge's latency profile.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from meshobs.collectors.cloudwatch import DEFAULT_NAMESPACE, MAX_QUERIES, PERCENTILES, build_queries
from meshobs.raw import Payload, RawSource, iso

from .traffic import EdgeTraffic

PREFIX = "envoy.appmesh."


def _dims(edge: EdgeTraffic, mesh: str, gateways: Collection[str] = ()) -> list[dict[str, str]]:
    source = "VirtualGateway" if edge.source_workload in gateways else "VirtualNode"
    dims = [{"Name": "Mesh", "Value": mesh}, {"Name": source, "Value": edge.source_workload},
            {"Name": "TargetVirtualService", "Value": edge.destination_service}]
    if edge.destination_workload:
        dims.append({"Name": "TargetVirtualNode", "Value": edge.destination_workload})
    return dims


def edge_values(edge: EdgeTraffic, window_s: float) -> dict[tuple[str, str], float]:
    """(metric name without prefix, statistic) -> value over the window for one edge."""
    total = edge.rps * window_s
    out: dict[tuple[str, str], float] = {("RequestCountPerTarget", "Sum"): total}
    for code, _flags, fraction in edge.responses:
        cls = "5" if code == "0" or not code[:1].isdigit() else code[0]
        key = (f"HTTPCode_Target_{cls}XX_Count", "Sum")
        out[key] = out.get(key, 0.0) + total * fraction
    p = edge.latency
    out.update({(("TargetResponseTime"), "p50"): p.p50_ms, ("TargetResponseTime", "p90"): p.quantile(0.9),
                ("TargetResponseTime", "p99"): p.p99_ms,
                ("TargetResponseTime", "Average"): p.p50_ms * pow(2.718281828459045, p.sigma ** 2 / 2)})
    return out


def cloudwatch_source(edges: Iterable[EdgeTraffic], time: datetime, window_s: float, *,
                      mesh: str | None = None, namespace: str = DEFAULT_NAMESPACE,
                      gateways: Collection[str] = ()) -> RawSource:
    """The RawSource the CloudWatch collector would have fetched for this traffic (HTTP/gRPC edges).

    ``gateways``: source workloads that are App Mesh virtual gateways (dimension VirtualGateway)."""
    metrics: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    for edge in edges:
        if edge.protocol == "tcp" or edge.rps <= 0:
            continue
        dims = _dims(edge, mesh or edge.destination_namespace, gateways)
        for (name, stat), value in edge_values(edge, window_s).items():
            metric = {"Namespace": namespace, "MetricName": PREFIX + name, "Dimensions": dims}
            if stat in ("Sum", "p50"):  # one ListMetrics entry per metric, not per statistic
                metrics.append(metric)
            values[json.dumps([metric, stat], sort_keys=True)] = value
    start = time - timedelta(seconds=window_s)
    raw = RawSource(name="cloudwatch", kind="cloudwatch", meta={"namespace": namespace, "demo": True})
    raw.add(Payload("ListMetrics/0", body=json.dumps({"Metrics": metrics}, sort_keys=True), status=200,
                    params={"Namespace": namespace}, fetched_at=iso(time)))
    queries = build_queries(metrics, window_s)
    plain = [q for q in queries if q["MetricStat"]["Stat"] not in PERCENTILES]
    n = 0
    for group in (plain, [q for q in queries if q not in plain]):
        for first in range(0, len(group), MAX_QUERIES):
            batch = group[first:first + MAX_QUERIES]
            results = []
            for q in batch:
                key = json.dumps([q["MetricStat"]["Metric"], q["MetricStat"]["Stat"]], sort_keys=True)
                found = values.get(key)
                results.append({"Id": q["Id"], "Label": f"{q['MetricStat']['Metric']['MetricName']} "
                                f"{q['MetricStat']['Stat']}", "StatusCode": "Complete",
                                "Timestamps": [iso(start)] if found is not None else [],
                                "Values": [round(found, 6)] if found is not None else []})
            params = {"MetricDataQueries": batch, "StartTime": iso(start), "EndTime": iso(time),
                      "ScanBy": "TimestampDescending"}
            raw.add(Payload(f"GetMetricData/{n}", body=json.dumps({"MetricDataResults": results, "Messages": []}),
                            status=200, params=params, fetched_at=iso(time)))
            n += 1
    return raw
