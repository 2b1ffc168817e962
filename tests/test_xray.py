"""X-Ray collector: a real moto server (PutTraceSegments -> GetTraceSummaries / BatchGetTraces ->
spans on virtual nodes), recorded real responses (GetServiceGraph, BatchGetTraces) and throttling
over a real loopback HTTP endpoint."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from meshobs.collectors import xray
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.config import validate
from meshobs.model import UNKNOWN_WORKLOAD, ServiceRef, SourceState, WorkloadRef
from meshobs.raw import Payload, RawSource
from tests.support.moto_server import ThrottlingServer, aws_env, cli_outputs, moto_endpoint  # noqa: F401

WINDOW = 300.0


def _fetch(section: dict[str, Any], now: datetime) -> RawSource:
    config = validate({"sources": {"xray": section}})
    collector = xray.from_config(config, [])
    assert collector is not None
    (raw,) = collector.fetch(FetchContext(time=now, window_s=WINDOW, config=config))
    return raw


def _appmesh_trace(now: float, fault: bool) -> tuple[str, list[str]]:
    trace_id = f"1-{int(now):08x}-{secrets.token_hex(12)}"
    front_id, egress_id, cart_id = (secrets.token_hex(8) for _ in range(3))
    front = {"id": front_id, "trace_id": trace_id, "name": "shop/front", "origin": "AWS::AppMesh::Proxy",
             "start_time": now - 0.5, "end_time": now - 0.1,
             "http": {"request": {"method": "GET", "url": "http://front.shop/"}, "response": {"status": 200}},
             "aws": {"app_mesh": {"mesh_name": "shop", "virtual_node_name": "front"}},
             "subsegments": [{"id": egress_id, "name": "cart.shop.svc.cluster.local", "namespace": "remote",
                              "start_time": now - 0.45, "end_time": now - 0.15,
                              "http": {"response": {"status": 503 if fault else 200}}, "fault": fault}]}
    cart = {"id": cart_id, "trace_id": trace_id, "parent_id": egress_id, "name": "shop/cart-v1",
            "origin": "AWS::AppMesh::Proxy", "start_time": now - 0.44, "end_time": now - 0.16,
            "http": {"response": {"status": 503 if fault else 200}}, "fault": fault}
    return trace_id, [json.dumps(front), json.dumps(cart)]


@pytest.mark.moto
def test_put_trace_segments_become_spans_on_virtual_nodes(moto_endpoint: str,  # noqa: F811
                                                           aws_env: dict[str, str]) -> None:  # noqa: F811
    now = time.time()
    client = boto3.client("xray", endpoint_url=moto_endpoint, region_name="us-east-1")
    ids = {}
    for fault in (False, True):
        trace_id, docs = _appmesh_trace(now, fault)
        ids[trace_id] = fault
        assert client.put_trace_segments(TraceSegmentDocuments=docs)["UnprocessedTraceSegments"] == []
    raw = _fetch({"endpoint_url": moto_endpoint, "region": "us-east-1", "limit": 7, "max_attempts": 1},
                 datetime.fromtimestamp(now + 1, UTC))
    keys = [p.key for p in raw.payloads]
    assert keys[0] == "GetServiceGraph/0" and "GetTraceSummaries/0" in keys and "BatchGetTraces/0" in keys
    for p in raw.payloads:
        if p.key.startswith("BatchGetTraces/"):
            assert len(p.params["TraceIds"]) <= 5
    part = xray.normalize(raw, NormalizeContext(datetime.fromtimestamp(now + 1, UTC), WINDOW))
    traces = {t.trace_id: t for t in part.traces}
    assert set(ids) <= set(traces)
    for trace_id, fault in ids.items():
        spans = {s.operation: s for s in traces[trace_id].spans}
        front, egress = spans["GET http://front.shop/"], spans["cart.shop.svc.cluster.local"]
        cart = next(s for s in traces[trace_id].spans if s.service == "cart-v1")
        assert front.workload == WorkloadRef("shop", "front") and front.service == "front"
        assert egress.parent_id == front.span_id and egress.kind == "client" and egress.service == "front"
        assert cart.parent_id == egress.span_id and cart.workload == WorkloadRef("shop", "cart-v1")
        assert front.duration_us == pytest.approx(400_000, abs=2)
        assert cart.status == ("error" if fault else "ok")
        assert cart.attributes["http.response.status"] == (503 if fault else 200)
    assert {WorkloadRef("shop", "front"), WorkloadRef("shop", "cart-v1")} <= {w.ref for w in part.workloads}
    assert part.sources[0].state is SourceState.OK


def test_recorded_service_graph(corpus: Path) -> None:
    body = cli_outputs(corpus / "xray/aws-cli/get-service-graph.rst")[0]
    # The page truncates the graph: add the target node the edge points at.
    body["Services"].append({"ReferenceId": 1, "Name": "scorekeep/game-v1", "Type": "AWS::AppMesh::Proxy",
                             "Edges": []})
    raw = RawSource("xray", "xray", payloads=[Payload("GetServiceGraph/0", body=json.dumps(body), status=200)])
    part = xray.normalize(raw, NormalizeContext(datetime.now(UTC), WINDOW))
    (edge,) = part.edges
    assert edge.source == WorkloadRef("xray", "Scorekeep")
    assert edge.destination == ServiceRef("scorekeep", "game-v1")
    assert edge.destination_workload == WorkloadRef("scorekeep", "game-v1")
    assert edge.request_rate == pytest.approx(14 / 54.0)  # TotalCount over the edge's 54 s
    assert edge.error_ratio == 0.0
    assert edge.latency is not None
    # 14 requests; the 7th and 8th fastest are 5 ms and 6 ms; the slowest 38 ms.
    assert edge.latency.p50 == pytest.approx(5.0) and edge.latency.p99 == pytest.approx(38.0)


def test_error_fault_and_throttle_statistics() -> None:
    stats = {"OkCount": 80, "ErrorStatistics": {"ThrottleCount": 5, "OtherCount": 5, "TotalCount": 10},
             "FaultStatistics": {"OtherCount": 10, "TotalCount": 10}, "TotalCount": 100, "TotalResponseTime": 5.0}
    graph = {"Services": [
        {"ReferenceId": 0, "Name": "client", "Type": "client", "Edges": [{"ReferenceId": 1, "SummaryStatistics":
                                                                          dict(stats)}]},
        {"ReferenceId": 1, "Name": "m/a", "Edges": [{"ReferenceId": 2, "SummaryStatistics": stats}]},
        {"ReferenceId": 2, "Name": "m/b", "Edges": []}]}
    raw = RawSource("xray", "xray", payloads=[Payload("GetServiceGraph/0", body=json.dumps(graph), status=200)])
    part = xray.normalize(raw, NormalizeContext(datetime.now(UTC), 100.0))
    edges = {e.source: e for e in part.edges}
    assert UNKNOWN_WORKLOAD in edges
    edge = edges[WorkloadRef("m", "a")]
    assert edge.request_rate == pytest.approx(1.0)
    assert edge.rate_by_code_class() == pytest.approx({"2xx": 0.8, "4xx": 0.1, "5xx": 0.1})
    assert edge.rate_by_code()["429"] == pytest.approx(0.05)
    assert edge.error_ratio == pytest.approx(0.1)
    assert edge.latency is not None and edge.latency.p50 == pytest.approx(50.0)  # mean: 5 s / 100
    assert "mean" in part.sources[0].message


def test_recorded_batch_get_traces(corpus: Path) -> None:
    body = cli_outputs(corpus / "xray/aws-cli/batch-traces-get.rst")[0]
    raw = RawSource("xray", "xray", payloads=[Payload("BatchGetTraces/0", body=json.dumps(body), status=200,
                                                      params={"TraceIds": ["1-5d82881a-0a9126e92a73e971eed891b9"]})])
    part = xray.normalize(raw, NormalizeContext(datetime.now(UTC), WINDOW))
    (trace,) = part.traces
    spans = {s.span_id: s for s in trace.spans}
    assert set(spans) == {"54aff5735b12dd28", "2d6900034ccfe558", "0f278b6334c34e6b"}
    root, sub, inferred = spans["54aff5735b12dd28"], spans["2d6900034ccfe558"], spans["0f278b6334c34e6b"]
    assert root.parent_id is None and sub.parent_id == root.span_id and inferred.parent_id == sub.span_id
    assert root.start_us == 1568835610432000 and root.duration_us == 232000
    assert sub.service == "Scorekeep" and root.workload is None and root.status == "ok"
    assert trace.roots == (root,)


def test_malformed_segment_document_costs_that_trace() -> None:
    body = {"Traces": [{"Id": "1-x", "Segments": [{"Id": "a", "Document": "{not json"}]}]}
    raw = RawSource("xray", "xray", payloads=[Payload("BatchGetTraces/0", body=json.dumps(body), status=200)])
    part = xray.normalize(raw, NormalizeContext(datetime.now(UTC), WINDOW))
    (status,) = part.sources
    assert not part.traces and len(status.problems) == 1 and "1-x" in status.problems[0]


GRAPH = json.dumps({"Services": [{"ReferenceId": 0, "Name": "m/a", "Edges": [{"ReferenceId": 1,
                    "SummaryStatistics": {"OkCount": 30, "TotalCount": 30, "TotalResponseTime": 0.3}}]},
                                 {"ReferenceId": 1, "Name": "m/b", "Edges": []}], "TraceSummaries": []})


def test_throttling_is_retried_over_http(aws_env: dict[str, str]) -> None:  # noqa: F811
    with ThrottlingServer(GRAPH, throttles=1) as server:
        raw = _fetch({"endpoint_url": server.url, "region": "us-east-1", "max_attempts": 3, "limit": 0,
                      "retry_mode": "adaptive"}, datetime.now(UTC))
    graph = raw.get("GetServiceGraph/0")
    assert graph is not None and graph.ok and graph.meta["retry_attempts"] == 1
    assert server.requests == 2
    part = xray.normalize(raw, NormalizeContext(datetime.now(UTC), WINDOW))
    assert part.edges[0].request_rate == pytest.approx(30 / WINDOW)


def test_throttling_beyond_retries_is_reported(aws_env: dict[str, str]) -> None:  # noqa: F811
    with ThrottlingServer(GRAPH, throttles=100) as server:
        raw = _fetch({"endpoint_url": server.url, "region": "us-east-1", "max_attempts": 2, "limit": 0,
                      "retry_mode": "standard"}, datetime.now(UTC))
    graph = raw.get("GetServiceGraph/0")
    assert graph is not None and graph.error and "ThrottlingException" in graph.error
    assert graph.meta["error_code"] == "ThrottlingException"
    part = xray.normalize(raw, NormalizeContext(datetime.now(UTC), WINDOW))
    assert part.sources[0].state is SourceState.ERROR and part.edges == []
