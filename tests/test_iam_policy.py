"""config/iam-policy.json grants exactly the AWS calls a run makes: every operation the three
AWS collectors perform against a real moto server (recorded from botocore's events) is allowed,
on a resource it applies to, and the policy allows nothing they never call."""

from __future__ import annotations

import fnmatch
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from meshobs.collect import collect
from meshobs.collectors import aws
from meshobs.config import validate
from tests.support.moto_server import aws_env, moto_endpoint  # noqa: F401
from tests.test_xray import _appmesh_trace

REPO = Path(__file__).resolve().parents[1]
# Calls on the account rather than on a mesh: IAM authorises them against "*" only.
ACCOUNT_LEVEL = {"appmesh:ListMeshes"}
# moto keeps one backend per region: a region no other test uses keeps their traces, meshes and
# metrics (some of them deliberately malformed) out of this run.
REGION = "ap-southeast-2"


def _policy() -> list[dict[str, Any]]:
    doc = json.loads((REPO / "config/iam-policy.json").read_text())
    return [s for s in doc["Statement"] if s["Effect"] == "Allow"]


def _allowed_on(action: str) -> list[str]:
    return [r for s in _policy() for a in s["Action"] if fnmatch.fnmatchcase(action, a)
            for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]


def _seed(endpoint: str, mesh: str) -> None:
    am = boto3.client("appmesh", endpoint_url=endpoint, region_name=REGION)
    am.create_mesh(meshName=mesh)
    listener = {"portMapping": {"port": 8080, "protocol": "http"}}
    am.create_virtual_node(meshName=mesh, virtualNodeName="cart-v1", spec={"listeners": [listener]})
    am.create_virtual_router(meshName=mesh, virtualRouterName="cart", spec={"listeners": [listener]})
    am.create_route(meshName=mesh, virtualRouterName="cart", routeName="all", spec={"httpRoute": {
        "match": {"prefix": "/"}, "action": {"weightedTargets": [{"virtualNode": "cart-v1", "weight": 1}]}}})
    xr = boto3.client("xray", endpoint_url=endpoint, region_name=REGION)
    _trace_id, docs = _appmesh_trace(time.time(), fault=True)
    xr.put_trace_segments(TraceSegmentDocuments=docs)
    cw = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=REGION)
    dims = [{"Name": "Mesh", "Value": mesh}, {"Name": "VirtualNode", "Value": "front"},
            {"Name": "TargetVirtualService", "Value": "cart.shop.svc.cluster.local"},
            {"Name": "TargetVirtualNode", "Value": "cart-v1"}]
    cw.put_metric_data(Namespace="MeshobsIam", MetricData=[
        {"MetricName": n, "Dimensions": dims, "Value": 5.0, "Timestamp": datetime.now(UTC)}
        for n in ("envoy.appmesh.RequestCountPerTarget", "envoy.appmesh.TargetResponseTime")])


@pytest.mark.moto
def test_the_policy_allows_exactly_the_calls_a_run_makes(moto_endpoint: str, aws_env: dict[str, str],  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    mesh, group = f"iam-{secrets.token_hex(3)}", f"iam-{secrets.token_hex(3)}"
    _seed(moto_endpoint, mesh)  # the group is not created: moto has no groups, GetGroup is still called
    made: list[str] = []

    def recording(service: str, section: Any, **kwargs: Any) -> Any:
        client = real(service, section, **kwargs)
        prefix = client.meta.service_model.service_name  # the IAM prefix of these three services
        client.meta.events.register("before-call.*.*", lambda model, **_: made.append(f"{prefix}:{model.name}"))
        return client

    real = aws.make_client
    monkeypatch.setattr(aws, "make_client", recording)
    common = {"endpoint_url": moto_endpoint, "region": REGION, "max_attempts": 1}
    # No mesh named: the collector lists the meshes (ListMeshes), then reads every one.
    config = validate({"sources": {"cloudwatch": {**common, "namespace": "MeshobsIam"},
                                   "xray": {**common, "group": group, "limit": 5},
                                   "appmesh": {**common, "api": True}}})
    bundle = collect(config, at=datetime.now(UTC))

    calls = set(made)
    xray_raw = next(r for r in bundle.sources if r.kind == "xray")
    found_traces = any(p.key.startswith("GetTraceSummaries/") and p.body and json.loads(p.body).get("TraceSummaries")
                       for p in xray_raw.payloads)
    granted = {a for s in _policy() for a in s["Action"]}
    assert not [a for a in granted if "*" in a], "name each action: wildcards grant calls meshobs never makes"
    assert calls - granted == set(), "calls the policy does not allow"
    # The moto server models no virtual services or gateways (their List calls fail there), so
    # the Describe calls that follow a listing are reached only on a real mesh; everything else
    # granted must have been called.
    unmodelled = {"appmesh:DescribeVirtualService", "appmesh:DescribeVirtualGateway",
                  "appmesh:ListGatewayRoutes", "appmesh:DescribeGatewayRoute"}
    if not found_traces:  # seen once in a loaded full run: the search found nothing, so no fetch
        unmodelled |= {"xray:BatchGetTraces"}
    assert granted - calls - unmodelled == set(), "the policy grants calls a run never makes"
    assert found_traces <= ("xray:BatchGetTraces" in calls)
    assert {"appmesh:ListVirtualServices", "appmesh:ListVirtualGateways"} <= calls
    for action in calls:
        resources = _allowed_on(action)
        if action in ACCOUNT_LEVEL:
            assert "*" in resources, f"{action} is authorised on '*' only, not on mesh ARNs"
        else:
            assert resources, action
