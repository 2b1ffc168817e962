"""X-Ray traces for the services the question is about: a service filter for the diagnosed
service, then its neighbourhood with what is left of the limit; a refused filter, the limit
and the phases said and tested (moto, and a stand-in that honours filters)."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from meshobs.collectors import xray
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.xray_fetch import service_filter, xray_names
from meshobs.config import validate
from meshobs.model import ServiceRef, SourceState, WorkloadRef
from meshobs.raw import RawSource
from tests.support.moto_server import aws_env, moto_endpoint  # noqa: F401
from tests.support.xray_filtering import FilteringXRay

WINDOW = 300.0
NOW = time.time()
AT = datetime.fromtimestamp(NOW + 1, UTC)
# a freight mesh on App Mesh: dispatch calls routing and fleet; 60 other services' traffic too
DISPATCH = ServiceRef("freight", "dispatch")
SCOPE = Scope(target=DISPATCH, services=frozenset({DISPATCH, ServiceRef("freight", "routing"),
                                                   ServiceRef("freight", "fleet")}),
              workloads=frozenset({WorkloadRef("freight", "dispatch"), WorkloadRef("freight", "routing")}))


def _segment(trace_id: str, node: str, start: float) -> dict[str, Any]:
    return {"id": secrets.token_hex(8), "trace_id": trace_id, "name": f"freight/{node}",
            "origin": "AWS::AppMesh::Proxy", "start_time": start, "end_time": start + 0.05,
            "http": {"request": {"method": "GET", "url": f"http://{node}.freight/"}, "response": {"status": 200}},
            "aws": {"app_mesh": {"mesh_name": "freight", "virtual_node_name": node}}}


def _traces(per_node: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for node, count in per_node.items():
        for _ in range(count):
            trace_id = f"1-{int(NOW):08x}-{secrets.token_hex(12)}"
            out[trace_id] = [_segment(trace_id, node, NOW - 5)]
    return out


def _fetch(section: dict[str, Any], scope: Scope | None = None, phase: str = "all",
           prior: list[RawSource] | None = None) -> RawSource:
    config = validate({"sources": {"xray": {"region": "us-east-1", "max_attempts": 1, **section}}})
    collector = xray.from_config(config, prior or [])
    assert collector is not None
    (raw,) = collector.fetch(FetchContext(time=AT, window_s=WINDOW, config=config, scope=scope, phase=phase))
    return raw


def _services_of(raw: RawSource) -> set[str]:
    part = xray.normalize(raw, NormalizeContext(AT, WINDOW))
    return {s.service for t in part.traces for s in t.spans}


def test_names_and_filter_expression() -> None:
    known = ["freight/dispatch", "freight/routing_freight", "freight/fleet-v2", "client"]
    assert xray_names(DISPATCH, known) == ["freight/dispatch"]
    # the App Mesh controller names the virtual node <name>_<namespace>
    assert xray_names(ServiceRef("freight", "routing"), known) == ["freight/routing_freight"]
    assert xray_names(ServiceRef("freight", "ledger"), known) == ["freight/ledger"]  # asked for as App Mesh names it
    assert service_filter(["freight/dispatch", 'bad"name', "freight/routing"]) == \
        'service("freight/dispatch") OR service("freight/routing")'


def test_the_diagnosed_service_first_then_the_neighbourhood(aws_env: dict[str, str]) -> None:  # noqa: F811
    nodes = ["freight/dispatch", "freight/routing", "freight/fleet"] + [f"freight/svc-{i:02d}" for i in range(60)]
    traces = _traces({"dispatch": 4, "routing": 3, "fleet": 3} | {f"svc-{i:02d}": 2 for i in range(60)})
    with FilteringXRay(traces, nodes, page=3) as srv:
        raw = _fetch({"endpoint_url": srv.url, "limit": 8}, SCOPE)
        filters = srv.filters
    assert filters[0] == 'service("freight/dispatch")'
    assert filters[-1] == 'service("freight/fleet") OR service("freight/routing")'
    # 4 of the target's traces, then 4 more of the neighbours': nothing of the 60 others
    assert _services_of(raw) == {"dispatch", "routing", "fleet"}
    part = xray.normalize(raw, NormalizeContext(AT, WINDOW))
    assert len(part.traces) == 8 and part.sources[0].state is SourceState.OK
    message = part.sources[0].message
    assert "freight/dispatch first" in message and "more traces matched" in message


def test_a_group_filter_narrows_the_service_filter(aws_env: dict[str, str]) -> None:  # noqa: F811
    traces = _traces({"dispatch": 2})
    with FilteringXRay(traces, ["freight/dispatch"]) as srv:
        _fetch({"endpoint_url": srv.url, "filter": 'http.status = 500'}, SCOPE)
        assert srv.filters[0] == '(http.status = 500) AND (service("freight/dispatch"))'


def test_mesh_wide_keeps_the_latest_traces_and_no_service_filter(aws_env: dict[str, str]) -> None:  # noqa: F811
    with FilteringXRay(_traces({"dispatch": 2, "fleet": 2}), ["freight/dispatch", "freight/fleet"]) as srv:
        raw = _fetch({"endpoint_url": srv.url})
        assert srv.filters == [None]
    assert _services_of(raw) == {"dispatch", "fleet"}
    assert xray.normalize(raw, NormalizeContext(AT, WINDOW)).sources[0].message == ""


def test_phases_graph_then_scoped(aws_env: dict[str, str]) -> None:  # noqa: F811
    with FilteringXRay(_traces({"dispatch": 2, "fleet": 2}), ["freight/dispatch_freight", "freight/fleet"]) as srv:
        graph = _fetch({"endpoint_url": srv.url}, SCOPE, phase="graph")
        assert [p.key for p in graph.payloads] == ["GetServiceGraph/0"] and srv.filters == []
        scoped = _fetch({"endpoint_url": srv.url}, SCOPE, phase="scoped", prior=[graph])
        # the graph phase's node names are used: dispatch is named as the App Mesh controller names it
        assert srv.filters[0] == 'service("freight/dispatch_freight")'
    assert not any(p.key.startswith("GetServiceGraph/") for p in scoped.payloads)


@pytest.mark.moto
def test_moto_refuses_filters_and_the_search_says_so(moto_endpoint: str,  # noqa: F811
                                                     aws_env: dict[str, str]) -> None:  # noqa: F811
    client = boto3.client("xray", endpoint_url=moto_endpoint, region_name="us-east-1")
    for docs in _traces({"dispatch": 2, "ledger": 1}).values():
        client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    raw = _fetch({"endpoint_url": moto_endpoint, "limit": 50}, SCOPE)
    refused = next(p for p in raw.payloads if p.key == "GetTraceSummaries/0")
    assert refused.params["FilterExpression"] == 'service("freight/dispatch")'
    assert refused.meta["filter_refused"] and refused.failure()
    part = xray.normalize(raw, NormalizeContext(AT, WINDOW))
    assert part.sources[0].state is SourceState.OK
    assert "refused the service filter" in part.sources[0].message
    assert {"dispatch", "ledger"} <= {s.service for t in part.traces for s in t.spans}
