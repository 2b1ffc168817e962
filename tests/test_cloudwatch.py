"""CloudWatch collector: a real moto server (PutMetricData -> ListMetrics + GetMetricData -> Edges),
recorded real responses, partial failure and unreachable endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from meshobs.collectors import cloudwatch as cw
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.config import validate
from meshobs.model import Mesh, ServiceRef, SourceState, WorkloadRef
from meshobs.raw import Payload, RawSource
from tests.support.loopback import unused_port
from tests.support.moto_server import aws_env, cli_outputs, moto_endpoint  # noqa: F401

WINDOW = 300.0


def _dims(mesh: str, node: str, service: str, target: str) -> list[dict[str, str]]:
    return [{"Name": "Mesh", "Value": mesh}, {"Name": "VirtualNode", "Value": node},
            {"Name": "TargetVirtualService", "Value": service}, {"Name": "TargetVirtualNode", "Value": target}]


def _fetch(section: dict[str, Any], now: datetime) -> RawSource:
    config = validate({"sources": {"cloudwatch": section}})
    collector = cw.from_config(config, [])
    assert collector is not None
    (raw,) = collector.fetch(FetchContext(time=now, window_s=WINDOW, config=config))
    return raw


@pytest.mark.moto
def test_put_metric_data_becomes_edges(moto_endpoint: str, aws_env: dict[str, str]) -> None:  # noqa: F811
    now = datetime.now(UTC).replace(microsecond=0)
    client = boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name="us-east-1")
    ns = "MeshobsTest/edges"
    at = now - timedelta(seconds=60)
    dims = _dims("shop", "front", "cart.shop.svc.cluster.local", "cart-v1")
    data = [("envoy.appmesh.RequestCountPerTarget", 300.0), ("envoy.appmesh.HTTPCode_Target_2XX_Count", 240.0),
            ("envoy.appmesh.HTTPCode_Target_4XX_Count", 30.0), ("envoy.appmesh.HTTPCode_Target_5XX_Count", 30.0),
            ("envoy.appmesh.TargetResponseTime", 40.0)]
    client.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": n, "Dimensions": dims, "Value": v, "Timestamp": at} for n, v in data])
    # Raw Envoy cluster stats with stats tags: a second edge found through the cluster name.
    raw_dims = [{"Name": "appmesh.mesh", "Value": "shop"}, {"Name": "appmesh.virtual_node", "Value": "cart-v1"},
                {"Name": "envoy.cluster_name", "Value": "cds_egress_shop_db-v1_tcp_5432"}]
    client.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "envoy_cluster_upstream_rq_total", "Dimensions": raw_dims, "Value": 60.0, "Timestamp": at},
        {"MetricName": "unrelated", "Dimensions": [{"Name": "Host", "Value": "x"}], "Value": 1.0, "Timestamp": at}])
    # Once more: ListMetrics must not yield the same metric twice in the queries.
    client.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "envoy.appmesh.RequestCountPerTarget", "Dimensions": dims, "Value": 0.0, "Timestamp": at}])

    raw = _fetch({"endpoint_url": moto_endpoint, "region": "us-east-1", "namespace": ns, "max_attempts": 1}, now)
    keys = [p.key for p in raw.payloads]
    assert keys[0] == "ListMetrics/0" and "GetMetricData/0" in keys
    queries = raw.get("GetMetricData/0").params["MetricDataQueries"]  # type: ignore[union-attr]
    names = [q["MetricStat"]["Metric"]["MetricName"] for q in queries]
    assert "unrelated" not in names and len(names) == len(set(
        (n, json.dumps(q["MetricStat"]["Metric"]["Dimensions"]), q["MetricStat"]["Stat"])
        for n, q in zip(names, queries)))
    assert all("Credential" not in p.url and "testing" not in json.dumps(p.params) for p in raw.payloads)

    part = cw.normalize(raw, NormalizeContext(now, WINDOW))
    edges = {(e.source, e.destination): e for e in part.edges}
    front = edges[(WorkloadRef("shop", "front"), ServiceRef("shop", "cart.shop.svc.cluster.local"))]
    assert front.mesh is Mesh.APPMESH and front.destination_workload == WorkloadRef("shop", "cart-v1")
    assert front.request_rate == pytest.approx(300.0 / WINDOW)
    assert front.error_ratio == pytest.approx(0.1)  # 5xx only; 4xx are not errors
    assert front.rate_by_code_class() == pytest.approx({"2xx": 0.8, "4xx": 0.1, "5xx": 0.1})
    assert front.rate_by_flag() == {"-": pytest.approx(1.0)}
    assert front.latency is not None and front.latency.p50 == pytest.approx(40.0)
    db = edges[(WorkloadRef("shop", "cart-v1"), ServiceRef("shop", "db-v1"))]
    assert db.request_rate == pytest.approx(60.0 / WINDOW)
    assert WorkloadRef("shop", "front") in {w.ref for w in part.workloads}
    # moto has no extended statistics: the percentile call fails, the counts survive, and the
    # status says the latency is an Average.
    (status,) = part.sources
    assert status.state is SourceState.OK and "partial" in status.message and "Average" in status.message


@pytest.mark.moto
def test_empty_namespace_is_no_data(moto_endpoint: str, aws_env: dict[str, str]) -> None:  # noqa: F811
    now = datetime.now(UTC)
    raw = _fetch({"endpoint_url": moto_endpoint, "region": "us-east-1", "namespace": "Nothing/Here"}, now)
    part = cw.normalize(raw, NormalizeContext(now, WINDOW))
    assert part.edges == [] and part.sources[0].state is SourceState.NO_DATA


def test_unreachable_endpoint_is_an_error_not_a_crash(aws_env: dict[str, str]) -> None:  # noqa: F811
    now = datetime.now(UTC)
    url = f"http://127.0.0.1:{unused_port()}"
    raw = _fetch({"endpoint_url": url, "region": "us-east-1", "max_attempts": 1, "timeout": "2s"}, now)
    (payload,) = raw.payloads
    assert payload.error and url in payload.error
    part = cw.normalize(raw, NormalizeContext(now, WINDOW))
    assert part.sources[0].state is SourceState.ERROR


def test_missing_region_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    raw = _fetch({}, datetime.now(UTC))
    assert raw.error and "sources.cloudwatch.region" in raw.error


def _recorded_raw(body: dict[str, Any], queries: list[dict[str, Any]]) -> RawSource:
    return RawSource("cloudwatch", "cloudwatch", payloads=[
        Payload("GetMetricData/0", body=json.dumps(body), status=200, params={"MetricDataQueries": queries})])


def test_recorded_get_metric_data_response_parses(corpus: Path) -> None:
    """The AWS CLI's real GetMetricData output, mapped onto App Mesh queries with the same ids."""
    body = cli_outputs(corpus / "cloudwatch/aws-cli/get-metric-data.rst")[1]
    metric = {"Namespace": "AppMeshEnvoy", "MetricName": "envoy.appmesh.RequestCountPerTarget",
              "Dimensions": _dims("app1", "vnA", "serviceB", "vnServiceBv1")}
    queries = cw.build_queries([metric], WINDOW)
    assert [q["Id"] for q in queries] == ["m0"]
    body["MetricDataResults"][0]["Id"] = "m0"
    part = cw.normalize(_recorded_raw(body, queries), NormalizeContext(datetime.now(UTC), WINDOW))
    (edge,) = part.edges
    assert edge.request_rate == pytest.approx(542.38 / WINDOW)


def test_one_failing_query_is_reported_partially() -> None:
    metrics = [{"Namespace": "N", "MetricName": "HTTPCode_Target_2XX_Count", "Dimensions": _dims("m", "a", "s", "b")},
               {"Namespace": "N", "MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": _dims("m", "a", "s", "b")}]
    queries = cw.build_queries(metrics, WINDOW)
    body = {"MetricDataResults": [
        {"Id": "m0", "Label": "ok", "Timestamps": ["2026-11-21T10:00:00Z"], "Values": [600.0],
         "StatusCode": "Complete"},
        {"Id": "m1", "Label": "bad", "Timestamps": [], "Values": [], "StatusCode": "InternalError",
         "Messages": [{"Code": "InternalError", "Value": "query failed"}]}], "Messages": []}
    part = cw.normalize(_recorded_raw(body, queries), NormalizeContext(datetime.now(UTC), WINDOW))
    (edge,) = part.edges
    assert edge.request_rate == pytest.approx(2.0)
    (status,) = part.sources
    assert status.state is SourceState.OK and "InternalError" in status.message and "partial" in status.message
    # The 5xx count is not known, not zero: the metric is named as an item that could not be read.
    assert len(status.problems) == 1 and "HTTPCode_Target_5XX_Count" in status.problems[0]


def test_percentiles_preferred_over_average() -> None:
    metric = {"Namespace": "N", "MetricName": "TargetResponseTime", "Dimensions": _dims("m", "a", "s", "b")}
    queries = cw.build_queries([metric, metric], WINDOW)
    assert [q["MetricStat"]["Stat"] for q in queries] == ["p50", "p90", "p99", "Average"]
    values = {"p50": 12.0, "p90": 30.0, "p99": 95.0, "Average": 20.0}
    body = {"MetricDataResults": [{"Id": q["Id"], "Values": [values[q["MetricStat"]["Stat"]]],
                                   "StatusCode": "Complete"} for q in queries]}
    part = cw.normalize(_recorded_raw(body, queries), NormalizeContext(datetime.now(UTC), WINDOW))
    (edge,) = part.edges
    assert edge.latency is not None and (edge.latency.p50, edge.latency.p99) == (12.0, 95.0)
    assert "Average" not in part.sources[0].message


def test_result_without_query_costs_that_result() -> None:
    raw = _recorded_raw({"MetricDataResults": [{"Id": "zz", "Values": [1.0]}]}, [])
    part = cw.normalize(raw, NormalizeContext(datetime.now(UTC), WINDOW))
    (status,) = part.sources
    assert not part.edges and len(status.problems) == 1 and "'zz'" in status.problems[0]


@pytest.mark.moto
def test_many_metrics_paginate_and_batch(moto_endpoint: str, aws_env: dict[str, str]) -> None:  # noqa: F811
    """520 edges: ListMetrics pages are followed and GetMetricData is split at 500 queries."""
    now = datetime.now(UTC).replace(microsecond=0)
    client = boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name="us-east-1")
    ns = "MeshobsTest/many"
    at = now - timedelta(seconds=60)
    for first in range(0, 520, 260):
        client.put_metric_data(Namespace=ns, MetricData=[
            {"MetricName": "RequestCountPerTarget", "Dimensions": _dims("big", f"n{i}", "svc", "t"),
             "Value": float(i), "Timestamp": at} for i in range(first, first + 260)])
    raw = _fetch({"endpoint_url": moto_endpoint, "region": "us-east-1", "namespace": ns, "max_attempts": 1}, now)
    data = [p for p in raw.payloads if p.key.startswith("GetMetricData/")]
    assert [len(p.params["MetricDataQueries"]) for p in data] == [500, 20]
    # boto3's paginator followed moto's pages; each page records the token that asked for it.
    listed = [p for p in raw.payloads if p.key.startswith("ListMetrics/")]
    assert [p.key for p in listed] == [f"ListMetrics/{n}" for n in range(len(listed))] and len(listed) >= 2
    assert "NextToken" not in listed[0].params and all("NextToken" in p.params for p in listed[1:])
    part = cw.normalize(raw, NormalizeContext(now, WINDOW))
    assert len(part.edges) == 520
    assert sum(e.request_rate for e in part.edges) == pytest.approx(sum(range(520)) / WINDOW)
    assert cw.period_for(WINDOW) == 300 and cw.period_for(90) == 120
