"""App Mesh named the way the App Mesh controller names things, with a failing edge."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..author import Mesh
from ..expect import Expectation
from ..scenario import Scenario, WorkloadSpec

MESH = "bookstore-mesh"  # not the namespace's name
NS = "books"
API = "appmesh.k8s.aws/v1beta2"
MESH_UID = "9c3e1d2a-6b7f-4e21-8d5c-0a1b2c3d4e5f"


def _res(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": NS},
            "spec": {"meshRef": {"name": MESH, "uid": MESH_UID}, **spec}}


def _node(w: WorkloadSpec, backends: list[str]) -> dict[str, Any]:
    return _res("VirtualNode", w.name, {
        # The controller's webhook defaults awsName to <name>_<namespace> and stores it.
        "awsName": f"{w.name}_{NS}",
        "podSelector": {"matchLabels": {"app": w.service, "version": w.version}},
        "listeners": [{"portMapping": {"port": w.port, "protocol": "http"},
                       "healthCheck": {"protocol": "http", "path": "/ping", "healthyThreshold": 2,
                                       "unhealthyThreshold": 2, "timeoutMillis": 2000, "intervalMillis": 5000}}],
        "backends": [{"virtualService": {"virtualServiceRef": {"name": b}}} for b in backends],
        "serviceDiscovery": {"dns": {"hostname": f"{w.service}.{NS}.svc.cluster.local"}}})


def appmesh_controller_names() -> Scenario:
    """A bookstore on App Mesh: virtual nodes ``<name>_books``, virtual services
    ``<svc>.books.svc.cluster.local``, mesh ``bookstore-mesh``; catalog-v2 (20% canary) answers
    5xx to 38% of frontend's calls."""
    m = Mesh("appmesh-controller-names",
             "App Mesh (controller naming): catalog-v2 answers 5xx to 38% of frontend's calls",
             "on mesh bookstore-mesh (namespace books), virtual node catalog-v2_books (the 20% canary "
             "behind virtual router catalog-router) answers 5xx to 38% of frontend_books's requests "
             "(CloudWatch HTTPCode_Target_5XX_Count on TargetVirtualNode catalog-v2_books, X-Ray faults on "
             "bookstore-mesh/catalog-v2_books); frontend answers 500 in turn. Every App Mesh name differs "
             "from the Kubernetes one: diagnose frontend must map them")
    m.control_plane(None)
    gateway = WorkloadSpec(NS, "books-gateway", "books-gateway", "v1", 1, "books-gateway", 8088, gateway=True)
    m.namespace(NS, injection=False)
    m.workloads.append(gateway)
    front = m.workload(NS, "frontend", replicas=2, name="frontend")
    c1 = m.workload(NS, "catalog", "v1", replicas=2)
    c2 = m.workload(NS, "catalog", "v2")
    reviews = m.workload(NS, "reviews", "v1", name="reviews")
    m.call(gateway, front, 30.0, 40.0, 180.0, ("500", "-", 0.076))
    m.call(front, c1, 24.0, 12.0, 50.0)
    m.call(front, c2, 6.0, 14.0, 60.0, ("503", "-", 0.38))
    m.call(front, reviews, 30.0, 8.0, 35.0)
    crds: list[dict[str, Any]] = [{"apiVersion": API, "kind": "Mesh", "metadata": {"name": MESH},
                                   "spec": {"awsName": MESH, "namespaceSelector": {"matchLabels": {"mesh": MESH}},
                                            "egressFilter": {"type": "DROP_ALL"}}}]
    crds += [_node(front, ["catalog", "reviews"]), _node(c1, []), _node(c2, []), _node(reviews, [])]
    crds.append(_res("VirtualRouter", "catalog-router", {
        "awsName": f"catalog-router_{NS}",
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "routes": [{"name": "catalog-route", "httpRoute": {
            "match": {"prefix": "/"},
            "action": {"weightedTargets": [{"virtualNodeRef": {"name": c1.name}, "weight": 80, "port": 8080},
                                           {"virtualNodeRef": {"name": c2.name}, "weight": 20, "port": 8080}]},
            "retryPolicy": {"maxRetries": 1, "perRetryTimeout": {"value": 2, "unit": "s"},
                            "httpRetryEvents": ["gateway-error"]}}}]}))
    for svc, provider in (("catalog", {"virtualRouter": {"virtualRouterRef": {"name": "catalog-router"}}}),
                          ("reviews", {"virtualNode": {"virtualNodeRef": {"name": reviews.name}}}),
                          ("frontend", {"virtualNode": {"virtualNodeRef": {"name": front.name}}})):
        crds.append(_res("VirtualService", svc, {"awsName": f"{svc}.{NS}.svc.cluster.local", "provider": provider}))
    crds.append(_res("VirtualGateway", gateway.name, {
        "awsName": f"{gateway.name}_{NS}", "podSelector": {"matchLabels": {"app": gateway.service}},
        "listeners": [{"portMapping": {"port": 8088, "protocol": "http"}}]}))
    crds.append(_res("GatewayRoute", "frontend-route", {
        "awsName": f"frontend-route_{NS}", "virtualGatewayRef": {"name": gateway.name},
        "httpRoute": {"match": {"prefix": "/"},
                      "action": {"target": {"virtualService": {"virtualServiceRef": {"name": "frontend"}}}}}}))
    names = {f"node:{w.name}": f"{w.name}_{NS}" for w in (gateway, front, c1, c2, reviews)}
    names.update({f"service:{s}": f"{s}.{NS}.svc.cluster.local" for s in ("catalog", "reviews", "frontend")})
    scenario = m.build(Expectation("callee-failing", target=f"{NS}/frontend",
                                   subjects=(f"Service {NS}/catalog", f"Workload {NS}/catalog-v2",
                                             f"VirtualNode {NS}/catalog-v2"), symptom_ok=True))
    return replace(scenario, rich=False, appmesh=frozenset(w.service for w in m.workloads),
                   appmesh_config=crds, appmesh_aws_names=names, namespace_labels={})
