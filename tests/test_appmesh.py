"""App Mesh collector: the API path against a real moto server, exported JSON, and the
discontinued API reported as a clear "could not check"."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from meshobs.collectors import appmesh
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.config import validate
from meshobs.model import Layer, Mesh, SourceState, thaw
from tests.support.loopback import unused_port
from tests.support.moto_server import aws_env, cli_outputs, moto_endpoint  # noqa: F401


def _run(section: dict[str, Any]) -> tuple[Any, Any]:
    config = validate({"sources": {"appmesh": section}})
    collector = appmesh.from_config(config, [])
    assert collector is not None
    now = datetime.now(UTC)
    (raw,) = collector.fetch(FetchContext(time=now, window_s=300, config=config))
    return raw, appmesh.normalize(raw, NormalizeContext(now, 300))


@pytest.mark.moto
def test_api_meshes_nodes_routers_routes(moto_endpoint: str, aws_env: dict[str, str]) -> None:  # noqa: F811
    mesh = f"shop-{secrets.token_hex(3)}"
    client = boto3.client("appmesh", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_mesh(meshName=mesh)
    listener = {"portMapping": {"port": 8080, "protocol": "http"},
                "healthCheck": {"protocol": "http", "path": "/ping", "healthyThreshold": 2, "unhealthyThreshold": 3,
                                "timeoutMillis": 2000, "intervalMillis": 5000},
                "tls": {"mode": "PERMISSIVE", "certificate": {"file": {"certificateChain": "/c", "privateKey": "/k"}}}}
    client.create_virtual_node(meshName=mesh, virtualNodeName="front", spec={
        "listeners": [listener], "serviceDiscovery": {"dns": {"hostname": "front.shop.svc.cluster.local"}},
        "backends": [{"virtualService": {"virtualServiceName": "cart.shop.svc.cluster.local",
                                         "clientPolicy": {"tls": {"enforce": True, "validation": {
                                             "trust": {"file": {"certificateChain": "/ca"}}}}}}}]})
    for node in ("cart-v1", "cart-v2"):
        client.create_virtual_node(meshName=mesh, virtualNodeName=node, spec={"listeners": [listener]})
    client.create_virtual_router(meshName=mesh, virtualRouterName="cart", spec={
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]})
    client.create_route(meshName=mesh, virtualRouterName="cart", routeName="split", spec={"httpRoute": {
        "match": {"prefix": "/"},
        "action": {"weightedTargets": [{"virtualNode": "cart-v1", "weight": 3},
                                       {"virtualNode": "cart-v2", "weight": 1}]},
        "retryPolicy": {"maxRetries": 2, "perRetryTimeout": {"unit": "ms", "value": 250},
                        "httpRetryEvents": ["server-error"]},
        "timeout": {"perRequest": {"unit": "s", "value": 3}}}})

    raw, part = _run({"endpoint_url": moto_endpoint, "region": "us-east-1", "mesh": mesh, "max_attempts": 1})
    keys = [p.key for p in raw.payloads]
    assert f"DescribeVirtualNode/{mesh}/front" in keys and f"DescribeRoute/{mesh}/cart/split" in keys
    found = {(c.kind, c.name): c for c in part.config}
    assert ("Mesh", mesh) in found and ("VirtualRouter", "cart") in found
    assert all(c.mesh is Mesh.APPMESH and c.layer is Layer.LIVE for c in part.config)
    front = thaw(found[("VirtualNode", "front")].spec["meshobs"])
    assert front["listener_tls"] == "PERMISSIVE" and front["client_tls_enforced"] is True
    assert front["backends"][0]["virtual_service"] == "cart.shop.svc.cluster.local"
    assert front["health_checks"][0]["unhealthy_threshold"] == 3
    route = thaw(found[("Route", "cart/split")].spec["meshobs"])["routes"][0]
    assert [(t["virtual_node"], t["weight_fraction"]) for t in route["targets"]] == [("cart-v1", 0.75),
                                                                                     ("cart-v2", 0.25)]
    assert route["retry"]["max_retries"] == 2 and route["retry"]["per_retry_timeout_ms"] == 250.0
    assert route["timeout"]["request_ms"] == 3000.0
    # moto does not implement virtual services: reported for this source, the rest still read.
    (status,) = part.sources
    assert status.state is SourceState.OK
    if any(p.error for p in raw.payloads):
        assert status.message.startswith("partial") and "ListVirtualServices" in status.message


def test_discontinued_api_is_could_not_check(aws_env: dict[str, str]) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{unused_port()}"
    raw, part = _run({"endpoint_url": url, "region": "us-east-1", "max_attempts": 1, "timeout": "2s"})
    assert len(raw.payloads) == 1  # the first failure stops the walk
    (status,) = part.sources
    assert status.state is SourceState.ERROR
    assert "could not check" in status.message and "2026-09-30" in status.message
    assert "sources.appmesh.exported" in status.message


def test_exported_json_and_manifests(tmp_path: Path, corpus: Path, aws_env: dict[str, str]) -> None:  # noqa: F811
    route = tmp_path / "route.json"
    route.write_text(json.dumps(cli_outputs(corpus / "appmesh-config/aws-cli/describe-route.rst")[0]))
    manifest = corpus / "appmesh-config/aws-app-mesh-examples/djapp__meshed_app.yaml"
    missing = tmp_path / "missing.json"
    raw, part = _run({"exported": [str(route), str(manifest), str(missing)]})
    assert [p.key for p in raw.payloads] == [f"exported:{route}", f"exported:{manifest}", f"exported:{missing}"]
    kinds = sorted({c.kind for c in part.config})
    assert kinds == ["Mesh", "Route", "VirtualNode", "VirtualRouter", "VirtualService"]
    assert all(c.layer is Layer.INTENDED for c in part.config)
    (status,) = part.sources
    assert status.state is SourceState.OK and "missing.json" in status.message


def test_exported_template_without_environment_is_reported(tmp_path: Path, corpus: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    template = corpus / "appmesh-config/aws-app-mesh-examples/howto-k8s-connection-pools__manifest.yaml.template"
    for var in ("APP_NAMESPACE", "MESH_NAME", "COLOR_APP_IMAGE"):
        monkeypatch.delenv(var, raising=False)
    _, part = _run({"exported": [str(template)]})
    (status,) = part.sources
    assert status.state is SourceState.ERROR and "${APP_NAMESPACE}" in status.message
    for var in ("APP_NAMESPACE", "MESH_NAME", "COLOR_APP_IMAGE"):
        monkeypatch.setenv(var, var.lower())
    _, part = _run({"exported": [str(template)]})
    assert part.sources[0].state is SourceState.OK
    assert {c.namespace for c in part.config if c.kind == "VirtualNode"} == {"app_namespace"}


def test_api_not_used_for_exported_only() -> None:
    config = validate({"sources": {"appmesh": {"exported": ["x.json"]}}})
    collector = appmesh.from_config(config, [])
    assert collector is not None and collector.use_api is False
    config = validate({"sources": {"appmesh": {"mesh": "shop"}}})
    assert appmesh.from_config(config, []).use_api is True  # type: ignore[union-attr]
    assert appmesh.from_config(validate({"sources": {}}), []) is None
