"""App Mesh configuration checks on hand-built snapshots (API-shaped JSON) and on the demo with
one thing changed; the scope rules that keep Istio-only checks from passing on App Mesh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from meshobs.checks.appmesh import client_tls, resilience, split_mismatch, undeclared_backend
from meshobs.checks.base import CouldNotCheck, Settings
from meshobs.checks.scope import not_applicable
from meshobs.collect import build_snapshot
from meshobs.collectors.appmesh_config import from_document
from meshobs.demo.build import render_bundle
from meshobs.demo.scenario import Scenario, builtin_scenario
from meshobs.demo.scenario_appmesh import appmesh_crds
from meshobs.engine import diagnose
from meshobs.model import (
    Edge,
    Mesh,
    MeshSnapshot,
    ResponseStat,
    Service,
    ServiceRef,
    Workload,
    WorkloadRef,
)

MESH = "prod"
T = datetime(2026, 11, 20, 12, tzinfo=UTC)


# -- hand-built: App Mesh API describe-* bodies (namespace = mesh name) --------------------------

def _node(name: str, backends: list[str], *, tls: str | None = None, client: dict[str, Any] | None = None,
          health: bool = True, outlier: bool = True) -> dict[str, Any]:
    listener: dict[str, Any] = {"portMapping": {"port": 8080, "protocol": "http"}}
    if tls:
        listener["tls"] = {"mode": tls, "certificate": {"file": {"certificateChain": "/c", "privateKey": "/k"}}}
    if health:
        listener["healthCheck"] = {"protocol": "http", "path": "/", "healthyThreshold": 2,
                                   "unhealthyThreshold": 2, "timeoutMillis": 2000, "intervalMillis": 5000}
    if outlier:
        listener["outlierDetection"] = {"maxServerErrors": 5, "interval": {"value": 10, "unit": "s"},
                                        "baseEjectionDuration": {"value": 30, "unit": "s"},
                                        "maxEjectionPercent": 50}
    backend_list = []
    for b in backends:
        vs: dict[str, Any] = {"virtualServiceName": b}
        if client is not None:
            vs["clientPolicy"] = {"tls": client}
        backend_list.append({"virtualService": vs})
    return {"virtualNode": {"meshName": MESH, "virtualNodeName": name, "status": {"status": "ACTIVE"},
                            "spec": {"listeners": [listener], "backends": backend_list,
                                     "serviceDiscovery": {"dns": {"hostname": f"{name}.local"}}}}}


def _service(name: str, router: str) -> dict[str, Any]:
    return {"virtualService": {"meshName": MESH, "virtualServiceName": name,
                               "spec": {"provider": {"virtualRouter": {"virtualRouterName": router}}}}}


def _route(router: str, weights: dict[str, int]) -> dict[str, Any]:
    return {"route": {"meshName": MESH, "virtualRouterName": router, "routeName": "split", "spec": {
        "httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": [
            {"virtualNode": n, "weight": w} for n, w in weights.items()]}}}}}


def _edge(src: str, dst: str, node: str, rps: float, error_ratio: float = 0.0) -> Edge:
    responses = [ResponseStat("2xx", "-", rps * (1 - error_ratio))]
    if error_ratio:
        responses.append(ResponseStat("5xx", "-", rps * error_ratio))
    return Edge(source=WorkloadRef(MESH, src), destination=ServiceRef(MESH, dst),
                destination_workload=WorkloadRef(MESH, node), mesh=Mesh.APPMESH, request_rate=rps,
                responses=tuple(responses))


def _snapshot(docs: list[dict[str, Any]], edges: list[Edge],
              services: dict[str, list[str]]) -> MeshSnapshot:
    config = [r for d in docs for r in from_document(d, origin="describe.json")]
    return MeshSnapshot(
        time=T, window_s=300.0, config=tuple(config), edges=tuple(edges),
        services=tuple(Service(ServiceRef(MESH, s), mesh=Mesh.APPMESH,
                               workloads=tuple(WorkloadRef(MESH, n) for n in nodes))
                       for s, nodes in services.items()),
        workloads=tuple(Workload(WorkloadRef(MESH, n), mesh=Mesh.APPMESH, services=(ServiceRef(MESH, s),))
                        for s, nodes in services.items() for n in nodes))


SERVICES = {"web": ["web-v1"], "api": ["api-v1", "api-v2"]}


def _run(fn: Callable[..., Any], snapshot: MeshSnapshot, service: str) -> set[tuple[str, str]]:
    return {(f.code, f.subject) for f in fn(snapshot, ServiceRef(MESH, service), Settings())}


def test_split_mismatch_on_route_weights_vs_observed() -> None:
    docs = [_node("web-v1", ["api"]), _node("api-v1", []), _node("api-v2", []), _service("api", "api-router"),
            _route("api-router", {"api-v1": 90, "api-v2": 10})]
    drifted = [_edge("web-v1", "api", "api-v1", 5.0), _edge("web-v1", "api", "api-v2", 5.0)]
    found = list(split_mismatch(_snapshot(docs, drifted, SERVICES), ServiceRef(MESH, "api"), Settings()))
    assert [(f.code, f.subject) for f in found] == [("MSH0208", "Service prod/api")]
    assert found[0].evidence["observed_percent"] == {"api-v1": 50.0, "api-v2": 50.0}
    assert found[0].evidence["configured_percent"] == {"api-v1": 90.0, "api-v2": 10.0}
    assert found[0].fields["virtual_router"] == "api-router"
    as_configured = [_edge("web-v1", "api", "api-v1", 9.0), _edge("web-v1", "api", "api-v2", 1.0)]
    assert _run(split_mismatch, _snapshot(docs, as_configured, SERVICES), "api") == set()
    tiny = [_edge("web-v1", "api", "api-v1", 0.1), _edge("web-v1", "api", "api-v2", 0.1)]  # 60 requests
    with pytest.raises(CouldNotCheck, match="60 requests"):  # too few to judge: never a pass
        _run(split_mismatch, _snapshot(docs, tiny, SERVICES), "api")


def test_undeclared_backend_only_for_virtual_services_missing_from_backends() -> None:
    edges = [_edge("web-v1", "api", "api-v1", 4.0, 0.5)]
    docs = [_node("web-v1", []), _node("api-v1", []), _service("api", "api-router"),
            _route("api-router", {"api-v1": 1})]
    found = list(undeclared_backend(_snapshot(docs, edges, SERVICES), ServiceRef(MESH, "web"), Settings()))
    assert [(f.code, f.subject) for f in found] == [("MSH0209", "VirtualNode prod/web-v1")]
    assert found[0].evidence["error_rps"] == 2.0 and found[0].fields["destination"] == "prod/api"
    declared = [_node("web-v1", ["api"]), *docs[1:]]
    assert _run(undeclared_backend, _snapshot(declared, edges, SERVICES), "web") == set()
    # A destination that is no App Mesh virtual service (no VirtualService) is not judged.
    assert _run(undeclared_backend, _snapshot([_node("web-v1", []), _node("api-v1", [])], edges, SERVICES),
                "web") == set()


@pytest.mark.parametrize(("client", "listener", "fires"), [
    ({"enforce": True, "validation": {}}, None, True),  # client insists, listener plaintext
    ({"enforce": True, "validation": {}}, "DISABLED", True),
    (None, "STRICT", True),  # listener insists, client plaintext
    ({"enforce": True, "validation": {}}, "STRICT", False),
    (None, "PERMISSIVE", False),
    (None, None, False),
])
def test_client_tls_vs_listener_tls(client: dict[str, Any] | None, listener: str | None, fires: bool) -> None:
    docs = [_node("web-v1", ["api"], client=client), _node("api-v1", [], tls=listener), _service("api", "r"),
            _route("r", {"api-v1": 1})]
    edges = [_edge("web-v1", "api", "api-v1", 2.0, 1.0)]
    found = _run(client_tls, _snapshot(docs, edges, SERVICES), "api")
    assert found == ({("MSH0210", "VirtualNode prod/web-v1 -> prod/api-v1")} if fires else set())


def test_resilience_only_where_requests_fail() -> None:
    docs = [_node("web-v1", ["api"]), _node("api-v1", [], health=False, outlier=False), _service("api", "r")]
    failing = _snapshot(docs, [_edge("web-v1", "api", "api-v1", 10.0, 0.2)], SERVICES)
    assert _run(resilience, failing, "api") == {("MSH0211", "VirtualNode prod/api-v1"),
                                                ("MSH0212", "VirtualNode prod/api-v1")}
    healthy = _snapshot(docs, [_edge("web-v1", "api", "api-v1", 10.0)], SERVICES)
    assert _run(resilience, healthy, "api") == set()
    configured = [docs[0], _node("api-v1", []), docs[2]]
    assert _run(resilience, _snapshot(configured, [_edge("web-v1", "api", "api-v1", 10.0, 0.2)], SERVICES),
                "api") == set()


# -- the demo with one change ----------------------------------------------------------------------

def _demo(change: Callable[[Scenario], None]) -> MeshSnapshot:
    scenario = builtin_scenario("ecommerce-appmesh")
    change(scenario)
    return build_snapshot(render_bundle(scenario), origin="demo:test")


def _crd(scenario: Scenario, kind: str, name: str) -> dict[str, Any]:
    return next(r for r in scenario.appmesh_config if r["kind"] == kind and r["metadata"]["name"] == name)


def _shop(snapshot: MeshSnapshot, fn: Callable[..., Any], service: str) -> set[tuple[str, str]]:
    return {(f.code, f.subject) for f in fn(snapshot, ServiceRef("shop", service), Settings())}


def test_demo_is_clean_for_the_appmesh_checks_except_where_it_should_not_be() -> None:
    snapshot = build_snapshot(render_bundle(builtin_scenario("ecommerce-appmesh")))
    for service in ("frontend", "product-service", "cart-service", "database-service"):
        for fn in (split_mismatch, undeclared_backend, client_tls, resilience):
            assert _shop(snapshot, fn, service) == set(), (fn.__name__, service)


def test_demo_with_an_undeclared_backend_and_missing_resilience() -> None:
    def change(s: Scenario) -> None:
        frontend = _crd(s, "VirtualNode", "frontend-v1")
        frontend["spec"]["backends"] = [b for b in frontend["spec"]["backends"]
                                        if b["virtualService"]["virtualServiceRef"]["name"] != "cart-service"]
        cart = _crd(s, "VirtualNode", "cart-v1")["spec"]["listeners"][0]
        del cart["healthCheck"], cart["outlierDetection"]

    snapshot = _demo(change)
    assert _shop(snapshot, undeclared_backend, "frontend") == {("MSH0209", "VirtualNode shop/frontend-v1")}
    assert _shop(snapshot, resilience, "cart-service") == {("MSH0211", "VirtualNode shop/cart-v1"),
                                                           ("MSH0212", "VirtualNode shop/cart-v1")}
    report = diagnose(snapshot, ServiceRef("shop", "frontend"))
    assert ("MSH0209", "VirtualNode shop/frontend-v1") in {(f.code, f.subject) for f in report.findings}


def test_demo_with_a_drifted_split_and_a_strict_listener() -> None:
    from dataclasses import replace

    def change(s: Scenario) -> None:
        s.edges = [replace(e, rps=18.0) if e.source_workload == "frontend-v1"
                   and e.destination_service == "product-service" else e for e in s.edges]
        s.appmesh_config = appmesh_crds(s)
        db = _crd(s, "VirtualNode", "database-v1")["spec"]["listeners"][0]
        db["tls"] = {"mode": "STRICT", "certificate": {"sds": {"secretName": "db"}}}

    snapshot = _demo(change)
    assert _shop(snapshot, split_mismatch, "product-service") == {("MSH0208", "Service shop/product-service")}
    assert _shop(snapshot, client_tls, "database-service") == {
        ("MSH0210", "VirtualNode shop/cart-v1 -> shop/database-v1"),
        ("MSH0210", "VirtualNode shop/product-v1 -> shop/database-v1"),
        ("MSH0210", "VirtualNode shop/product-v2 -> shop/database-v1")}


# -- scope ----------------------------------------------------------------------------------------

def test_scope_skips_istio_checks_on_appmesh_and_appmesh_checks_on_istio() -> None:
    snapshot = build_snapshot(render_bundle(builtin_scenario("migration")))
    cart, frontend = ServiceRef("shop", "cart-service"), ServiceRef("shop", "frontend")
    for check_id in ("config.split_mismatch", "certs.mtls_conflict", "certs.plaintext_edge"):
        reason = not_applicable(check_id, snapshot, cart)
        assert reason is not None and reason.startswith("could not check"), check_id
        assert not_applicable(check_id, snapshot, frontend) is None
    for check_id in ("appmesh.split_mismatch", "appmesh.client_tls"):
        assert (not_applicable(check_id, snapshot, frontend) or "").startswith("not applicable")
        assert not_applicable(check_id, snapshot, cart) is None
    # Checks whose signal App Mesh has (traffic, proxies, traces; drift compares App Mesh routers
    # with Envoy as it compares VirtualServices) run on both.
    for check_id in ("traffic.error_rate", "traffic.endpoints", "proxy.not_ready", "traces.slow_hop",
                     "config.weight_drift", "config.policy_drift", "config.intended_drift"):
        assert not_applicable(check_id, snapshot, cart) is None


def test_unknown_mesh_leaves_every_check_to_run() -> None:
    snapshot = MeshSnapshot(time=T, window_s=300.0, services=(Service(ServiceRef("x", "y")),))
    assert not_applicable("config.split_mismatch", snapshot, ServiceRef("x", "y")) is None
    assert not_applicable("appmesh.client_tls", snapshot, ServiceRef("x", "y")) is None


def test_demo_crds_are_not_shared_between_scenarios() -> None:
    # The demo CRDs are data: mutating one scenario must not leak into the next one.
    a = builtin_scenario("ecommerce-appmesh")
    _crd(a, "VirtualNode", "cart-v1")["spec"]["backends"] = []
    b = builtin_scenario("ecommerce-appmesh")
    assert _crd(b, "VirtualNode", "cart-v1")["spec"]["backends"]
