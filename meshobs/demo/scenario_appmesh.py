"""The App Mesh flavours of the e-commerce demo: all on App Mesh, and a migration half-way.

Identities line up with the Istio side on purpose, as a team migrating would set them: the mesh
is named after the namespace (``shop``), each virtual node after its Deployment (``awsName``
``cart-v1``) and each virtual service after its Kubernetes Service (``cart-service``). So
CloudWatch's ``WorkloadRef(mesh, node)`` / ``ServiceRef(mesh, virtual service)`` are the very
refs Kubernetes and Prometheus give the same pods, and a mixed mesh is one graph.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from .scenario import (
    GATEWAY,
    NAMESPACE,
    Scenario,
    WorkloadSpec,
    _ecommerce,
    _healthy,
)
from .traffic import EdgeTraffic

API = "appmesh.k8s.aws/v1beta2"
MESH = NAMESPACE  # the mesh is named after the namespace, so identities line up
APPMESH_GATEWAY = "shop-gateway"
# Route weights per service and version (the Istio demo's VirtualService split).
WEIGHTS = {"product-service": {"v1": 90, "v2": 10}}
ROUTE_POLICY = {
    "product-service": {"retryPolicy": {"maxRetries": 2, "perRetryTimeout": {"value": 3, "unit": "s"},
                                        "httpRetryEvents": ["server-error", "gateway-error"]},
                        "timeout": {"perRequest": {"value": 10, "unit": "s"}}},
    "cart-service": {"retryPolicy": {"maxRetries": 3, "perRetryTimeout": {"value": 1, "unit": "s"},
                                     "httpRetryEvents": ["server-error"]},
                     "timeout": {"perRequest": {"value": 5, "unit": "s"}}},
}


def _meta(kind: str, name: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": API, "kind": kind, "metadata": meta}


def _mesh_ref() -> dict[str, str]:
    return {"name": MESH, "uid": "5f1f0e6a-2c1d-4a8e-9d7b-6d3f0c1e2a90"}


def _listener(port: int, *, health: bool = True, outlier: bool = True,
              tls_mode: str | None = None) -> dict[str, Any]:
    listener: dict[str, Any] = {"portMapping": {"port": port, "protocol": "http"}}
    if health:
        listener["healthCheck"] = {"protocol": "http", "path": "/healthz", "port": port,
                                   "healthyThreshold": 2, "unhealthyThreshold": 3,
                                   "timeoutMillis": 2000, "intervalMillis": 5000}
    if outlier:
        listener["outlierDetection"] = {"maxServerErrors": 5, "interval": {"value": 10, "unit": "s"},
                                        "baseEjectionDuration": {"value": 30, "unit": "s"},
                                        "maxEjectionPercent": 100}
    if tls_mode:
        listener["tls"] = {"mode": tls_mode, "certificate": {"sds": {"secretName": "spiffe://shop"}}}
    return listener


def _client_tls() -> dict[str, Any]:
    return {"clientPolicy": {"tls": {"enforce": True, "certificate": {"sds": {"secretName": "spiffe://shop"}},
                                     "validation": {"trust": {"sds": {"secretName": "spiffe://shop-bundle"}}}}}}


def appmesh_crds(scenario: Scenario, *, tls: bool = False) -> list[dict[str, Any]]:
    """Mesh, one VirtualNode per App Mesh workload (listeners with health checks and outlier
    detection, backends = the services it calls, DNS discovery), and per App Mesh service a
    VirtualRouter with one weighted route plus the VirtualService it provides; the gateway
    (when on App Mesh) as VirtualGateway + GatewayRoute. ``tls``: every listener STRICT and
    every caller (nodes and the gateway) enforcing client TLS, with SDS certificates."""
    mesh = _meta("Mesh", MESH, None)
    mesh["spec"] = {"awsName": MESH, "namespaceSelector": {"matchLabels": {"mesh": MESH}},
                    "egressFilter": {"type": "DROP_ALL"}}
    out = [mesh]
    members = [w for w in scenario.workloads if scenario.on_appmesh(w)]
    for w in members:
        if w.gateway:
            continue
        called = sorted({e.destination_service for e in scenario.edges
                         if e.source_workload == w.name and e.source_namespace == w.namespace
                         and e.destination_service in scenario.appmesh})
        node = _meta("VirtualNode", w.name, w.namespace)
        node["spec"] = {
            "awsName": w.name, "meshRef": _mesh_ref(),
            "podSelector": {"matchLabels": {"app": w.service, "version": w.version}},
            "listeners": [_listener(w.port, tls_mode="STRICT" if tls else None)],
            "backends": [{"virtualService": {"virtualServiceRef": {"name": svc}}} for svc in called],
            "serviceDiscovery": {"dns": {"hostname": f"{w.service}.{w.namespace}.svc.cluster.local"}},
        }
        if tls:
            node["spec"]["backendDefaults"] = _client_tls()
        out.append(node)
    for svc in sorted({w.service for w in members if not w.gateway}):
        nodes = [w for w in members if w.service == svc]
        weights = WEIGHTS.get(svc, {})
        route: dict[str, Any] = {
            "match": {"prefix": "/"},
            "action": {"weightedTargets": [{"virtualNodeRef": {"name": w.name},
                                            "weight": weights.get(w.version, 100 // len(nodes)), "port": w.port}
                                           for w in nodes]},
            **copy.deepcopy(ROUTE_POLICY.get(svc, {}))}
        router = _meta("VirtualRouter", f"{svc}-router", nodes[0].namespace)
        router["spec"] = {"awsName": f"{svc}-router", "meshRef": _mesh_ref(),
                          "listeners": [{"portMapping": {"port": nodes[0].port, "protocol": "http"}}],
                          "routes": [{"name": f"{svc}-route", "httpRoute": route}]}
        service = _meta("VirtualService", svc, nodes[0].namespace)
        service["spec"] = {"awsName": svc, "meshRef": _mesh_ref(),
                           "provider": {"virtualRouter": {"virtualRouterRef": {"name": f"{svc}-router"}}}}
        out.extend([router, service])
    for w in members:
        if not w.gateway:
            continue
        gateway = _meta("VirtualGateway", w.name, w.namespace)
        gateway["spec"] = {"awsName": w.name, "meshRef": _mesh_ref(),
                           "podSelector": {"matchLabels": {"app": w.service}},
                           "listeners": [{"portMapping": {"port": w.port, "protocol": "http"}}]}
        if tls:
            gateway["spec"]["backendDefaults"] = _client_tls()
        targets = sorted({e.destination_service for e in scenario.edges if e.source_workload == w.name})
        out.append(gateway)
        for svc in targets:
            groute = _meta("GatewayRoute", f"{svc}-route", w.namespace)
            groute["spec"] = {"awsName": f"{svc}-route", "meshRef": _mesh_ref(),
                              "virtualGatewayRef": {"name": w.name},
                              "httpRoute": {"match": {"prefix": "/"}, "action": {"target": {
                                  "virtualService": {"virtualServiceRef": {"name": svc}}}}}}
            out.append(groute)
    return out


def _regateway(edges: list[EdgeTraffic], gateway: WorkloadSpec) -> list[EdgeTraffic]:
    """The Istio ingress gateway's edges, now leaving the App Mesh virtual gateway."""
    return [replace(e, source_namespace=gateway.namespace, source_workload=gateway.name,
                    source_service=gateway.service, source_version=gateway.version,
                    source_service_account=gateway.service_account, mtls=False)
            if e.source_workload == GATEWAY else replace(e, mtls=False) for e in edges]


def ecommerce_appmesh(*, tls: bool = False) -> Scenario:
    """The ``ecommerce`` fault on App Mesh: cart-v1's Envoys ejected both database endpoints
    (``tls``: with TLS between every virtual node, see :func:`appmesh_crds`)."""
    base = _ecommerce()
    gateway = WorkloadSpec(NAMESPACE, APPMESH_GATEWAY, APPMESH_GATEWAY, "v1", 1, APPMESH_GATEWAY, 8080,
                           gateway=True)
    workloads = [gateway if w.name == GATEWAY else w for w in base.workloads]
    scenario = replace(
        base, name="ecommerce-appmesh",
        description="E-commerce shop on AWS App Mesh: cart-service answers 503 because its Envoys "
                    "ejected database-service",
        cause="outlier detection (database-v1's listener) on cart-v1's Envoys ejected both "
              "database-service endpoints (cds_egress_shop_database-v1_http_8080 membership_healthy "
              "0/2): cart-service -> database-service fails with 5XX, so cart-service answers 503 "
              "to frontend; CloudWatch shows the 5XX, the Envoy admin API the ejection",
        workloads=workloads, edges=_regateway(base.edges, gateway), config=[], intended=None,
        appmesh=frozenset(w.service for w in workloads))
    scenario.appmesh_config = appmesh_crds(scenario, tls=tls)
    return scenario


MIGRATED = frozenset({"cart-service", "database-service"})


def migration() -> Scenario:
    """One mesh, half migrated: frontend and product-service still on Istio (Prometheus, Jaeger,
    istio-proxy), cart-service and database-service on App Mesh (CloudWatch, X-Ray, envoy)."""
    base = _healthy()
    edges = [replace(e, destination_istio=False, mtls=False) if e.destination_service in MIGRATED
             else e for e in base.edges]
    config = [r for r in base.config
              if not (r["kind"] in ("VirtualService", "DestinationRule")
                      and r["metadata"]["name"] in MIGRATED)]
    scenario = replace(
        base, name="migration",
        description="Migration in progress: frontend and product-service on Istio, cart-service and "
                    "database-service on App Mesh, one graph",
        cause="no fault: the calls from Istio workloads into App Mesh services (frontend -> "
              "cart-service, product-service -> database-service) appear once, from Prometheus",
        edges=edges, config=config, intended=None, appmesh=MIGRATED)
    scenario.appmesh_config = appmesh_crds(scenario)
    return scenario
