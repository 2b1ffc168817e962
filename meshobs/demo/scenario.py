"""Declarative demo scenarios: the e-commerce mesh, healthy and with one known fault each.

A :class:`Scenario` is the ground truth every renderer reads: the workloads and their pods, the
traffic (``EdgeTraffic``), the live Istio config, the Git (intended) config, and the few ways a
proxy's state departs from what the config implies (ejected hosts, drifted route weights, a
certificate that was not rotated). Renderers turn it into the raw payloads of each source.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .state import IstiodSpec, PodState, ProxyState
from .traffic import EdgeTraffic, LatencyProfile

if TYPE_CHECKING:
    from .expect import Expectation

NAMESPACE = "shop"
TIME = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
WINDOW_S = 300.0
GATEWAY_NS = "istio-system"
GATEWAY = "istio-ingressgateway"
PORT = 8080


@dataclass(frozen=True)
class WorkloadSpec:
    """One Deployment: ``service`` is the Kubernetes Service (and ``app`` label) it backs."""

    namespace: str
    name: str
    service: str
    version: str
    replicas: int = 1
    service_account: str = "default"
    port: int = PORT
    gateway: bool = False  # an Istio ingress gateway (router proxy) rather than a sidecar
    sidecar: bool = True  # False: no proxy in the pod (an ambient namespace, an uninjected pod)
    kind: str = "Deployment"  # Deployment | StatefulSet | Job (a batch job's pods)
    # Other Services selecting this workload's pods (``app: <service>``): a second Service for
    # an admin or metrics port, a headless twin. Callers address them by their own names.
    other_services: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertSpec:
    """A workload certificate's validity relative to the scenario time, in hours."""

    issued_h_ago: float
    lifetime_h: float = 24.0


@dataclass(frozen=True)
class SlowSpan:
    """An application span under a service's inbound span (e.g. a database query)."""

    name: str
    latency: LatencyProfile
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass
class Scenario:
    """Everything a demo mesh is generated from."""

    name: str
    description: str
    cause: str  # the known root cause, in words (for people and for tests)
    workloads: list[WorkloadSpec]
    edges: list[EdgeTraffic]
    config: list[dict[str, Any]] = field(default_factory=list)  # live Istio resources
    intended: list[dict[str, Any]] | None = None  # Git manifests; None = same as live
    # Caller workload -> destination service whose hosts that caller's Envoy has ejected.
    ejected: dict[str, set[str]] = field(default_factory=dict)
    # Caller workload -> service -> [(subset, weight)] the caller's Envoy routes by, when it
    # differs from the VirtualService (the effective layer drifted from the live one).
    route_overrides: dict[str, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)
    certs: dict[str, CertSpec] = field(default_factory=dict)  # workload -> cert; default rotated
    app_spans: dict[str, SlowSpan] = field(default_factory=dict)  # service -> app span
    time: datetime = TIME
    window_s: float = WINDOW_S
    seed: int = 7
    traces: int = 60
    # Kubernetes services whose workloads run App Mesh's Envoy (the rest run Istio's sidecar),
    # and the appmesh.k8s.aws/v1beta2 resources that configure them (see scenario_appmesh).
    appmesh: frozenset[str] = frozenset()
    appmesh_config: list[dict[str, Any]] = field(default_factory=list)
    # App Mesh names as the controller makes them: "node:<k8s name>" -> the VirtualNode's (or
    # VirtualGateway's) awsName (``<name>_<namespace>``), "service:<k8s name>" -> the
    # VirtualService's awsName (``<svc>.<ns>.svc.cluster.local``). Empty: awsName == k8s name.
    appmesh_aws_names: dict[str, str] = field(default_factory=dict)
    # -- what the authoring API (meshobs.demo.author) adds; the defaults render as before -----
    # Render the signals real meshes have beyond the classic demo's (per-route RDS stats, RBAC
    # and retry counters, config_dump versions per xDS type, istiod, resource timestamps...).
    # The shipped classic bundles stay byte-identical because they leave this False.
    rich: bool = False
    # Bundles hold what a live run records of the proxies (meshobs.demo.envoy_admin), not every
    # admin endpoint's full answer: generated meshes, whose bundles are read at scale.
    recorded: bool = False
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # replaces the default
    pod_states: dict[str, PodState] = field(default_factory=dict)  # workload -> state
    proxy_states: dict[str, ProxyState] = field(default_factory=dict)  # workload -> state
    istiod: IstiodSpec | None = None
    mesh_config: dict[str, Any] | None = None  # the ``mesh`` of ConfigMap istio-system/istio
    objects: list[dict[str, Any]] = field(default_factory=list)  # other Kubernetes objects
    expect: Expectation | None = None
    ingress_host: str = "shop.example.com:8080"  # the :authority ingress traces carry
    history_s: float = 3600.0  # how much Prometheus history a live demo backfills
    metrics_end_s_ago: float = 0.0  # Prometheus has no sample younger than this

    def aws_name(self, kind: str, name: str) -> str:
        """The App Mesh awsName of a VirtualNode/VirtualGateway (``node``) or VirtualService
        (``service``) named ``name`` in Kubernetes."""
        return self.appmesh_aws_names.get(f"{kind}:{name}", name)

    def on_appmesh(self, w: WorkloadSpec) -> bool:
        """Does this workload run App Mesh's Envoy (rather than Istio's sidecar)?"""
        return w.service in self.appmesh

    @property
    def mesh_mode(self) -> str:
        """The ``mesh:`` config value of the demo: istio, appmesh or auto (both)."""
        kinds = {self.on_appmesh(w) for w in self.workloads}
        return "auto" if len(kinds) > 1 else ("appmesh" if True in kinds else "istio")

    @property
    def namespaces(self) -> list[str]:
        return sorted({w.namespace for w in self.workloads})

    def workload(self, name: str, namespace: str | None = None) -> WorkloadSpec:
        for w in self.workloads:
            if w.name == name and (namespace is None or w.namespace == namespace):
                return w
        raise KeyError(f"scenario {self.name}: no workload {name}")

    def services(self) -> list[tuple[str, str]]:
        """(namespace, service) pairs, sorted; the gateway is a service too."""
        return sorted({(w.namespace, s) for w in self.workloads for s in (w.service, *w.other_services)})

    def backing(self, namespace: str, service: str) -> WorkloadSpec:
        """The first workload the Service ``namespace/service`` selects."""
        return next(w for w in self.workloads if w.namespace == namespace
                    and (w.service == service or service in w.other_services))

    def intended_config(self) -> list[dict[str, Any]]:
        return self.intended if self.intended is not None else self.config


# ---------------------------------------------------------------------------------------------
# The e-commerce application


def _workloads() -> list[WorkloadSpec]:
    ns = NAMESPACE
    return [
        WorkloadSpec(GATEWAY_NS, GATEWAY, GATEWAY, "latest", 1,
                     "istio-ingressgateway-service-account", 8080, gateway=True),
        WorkloadSpec(ns, "frontend-v1", "frontend", "v1", 2, "frontend"),
        WorkloadSpec(ns, "product-v1", "product-service", "v1", 2, "product-service"),
        WorkloadSpec(ns, "product-v2", "product-service", "v2", 1, "product-service"),
        WorkloadSpec(ns, "cart-v1", "cart-service", "v1", 2, "cart-service"),
        WorkloadSpec(ns, "database-v1", "database-service", "v1", 2, "database-service"),
    ]


def _edge(src: WorkloadSpec, dst: WorkloadSpec, rps: float, p50: float, p99: float,
          responses: tuple[tuple[str, str, float], ...] = (("200", "-", 1.0),),
          mtls: bool = True) -> EdgeTraffic:
    return EdgeTraffic(
        source_namespace=src.namespace, source_workload=src.name, source_service=src.service,
        source_version=src.version, destination_namespace=dst.namespace,
        destination_service=dst.service, destination_workload=dst.name,
        destination_version=dst.version, rps=rps, responses=responses,
        latency=LatencyProfile(p50, p99), mtls=mtls,
        source_service_account=src.service_account,
        destination_service_account=dst.service_account)


def _healthy_edges(wl: dict[str, WorkloadSpec]) -> dict[str, EdgeTraffic]:
    """The baseline traffic, keyed by a short edge name so scenarios can replace one edge."""
    return {
        "gw->frontend": _edge(wl[GATEWAY], wl["frontend-v1"], 40.0, 28.0, 140.0),
        "frontend->product-v1": _edge(wl["frontend-v1"], wl["product-v1"], 32.4, 12.0, 60.0),
        "frontend->product-v2": _edge(wl["frontend-v1"], wl["product-v2"], 3.6, 13.0, 65.0),
        "frontend->cart": _edge(wl["frontend-v1"], wl["cart-v1"], 12.0, 15.0, 80.0),
        "product-v1->database": _edge(wl["product-v1"], wl["database-v1"], 16.2, 4.0, 25.0),
        "product-v2->database": _edge(wl["product-v2"], wl["database-v1"], 1.8, 4.0, 25.0),
        "cart->database": _edge(wl["cart-v1"], wl["database-v1"], 12.0, 5.0, 30.0),
    }


def _meta(kind: str, api: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}}


def _fqdn(service: str, namespace: str = NAMESPACE) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def _base_config() -> list[dict[str, Any]]:
    """The live Istio resources of the healthy shop."""
    net = "networking.istio.io/v1"
    gateway = _meta("Gateway", net, "shop-gateway")
    gateway["spec"] = {"selector": {"istio": "ingressgateway"},
                       "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                                    "hosts": ["shop.example.com"]}]}
    vs_front = _meta("VirtualService", net, "frontend")
    vs_front["spec"] = {"hosts": ["shop.example.com"], "gateways": ["shop-gateway"],
                        "http": [{"route": [{"destination": {"host": "frontend", "port": {"number": PORT}}}],
                                  "timeout": "15s"}]}
    vs_product = _meta("VirtualService", net, "product-service")
    vs_product["spec"] = {"hosts": ["product-service"], "http": [
        {"name": "canary-header", "match": [{"headers": {"canary": {"exact": "true"}}}],
         "route": [{"destination": {"host": "product-service", "subset": "v2"}}]},
        {"name": "canary-split",
         "route": [{"destination": {"host": "product-service", "subset": "v1"}, "weight": 90},
                   {"destination": {"host": "product-service", "subset": "v2"}, "weight": 10}],
         "timeout": "10s",
         "retries": {"attempts": 2, "perTryTimeout": "3s", "retryOn": "connect-failure,refused-stream,503"}},
    ]}
    vs_cart = _meta("VirtualService", net, "cart-service")
    vs_cart["spec"] = {"hosts": ["cart-service"], "http": [
        {"name": "default", "route": [{"destination": {"host": "cart-service", "subset": "v1"}}],
         "timeout": "5s", "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"}}]}
    dr_product = _meta("DestinationRule", net, "product-service")
    dr_product["spec"] = {"host": "product-service",
                          "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                          "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                      {"name": "v2", "labels": {"version": "v2"}}]}
    dr_cart = _meta("DestinationRule", net, "cart-service")
    dr_cart["spec"] = {"host": "cart-service", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                       "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}
    dr_db = _meta("DestinationRule", net, "database-service")
    dr_db["spec"] = {"host": "database-service", "trafficPolicy": {
        "tls": {"mode": "ISTIO_MUTUAL"},
        "connectionPool": {"tcp": {"maxConnections": 100},
                           "http": {"http1MaxPendingRequests": 64, "maxRequestsPerConnection": 10}},
        "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s",
                             "maxEjectionPercent": 100}}}
    pa = _meta("PeerAuthentication", "security.istio.io/v1", "default")
    pa["spec"] = {"mtls": {"mode": "PERMISSIVE"}}
    return [gateway, vs_front, vs_product, vs_cart, dr_product, dr_cart, dr_db, pa]


def _find(config: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for r in config:
        if r["kind"] == kind and r["metadata"]["name"] == name:
            return r
    raise KeyError(f"{kind} {name}")


def _scenario(name: str, description: str, cause: str, **changes: Any) -> Scenario:
    wl = {w.name: w for w in _workloads()}
    edges = _healthy_edges(wl)
    edges.update(changes.pop("edges", {}))
    config = _base_config()
    edit = changes.pop("edit_config", None)
    if edit is not None:
        edit(config, wl)
    return Scenario(name=name, description=description, cause=cause, workloads=list(wl.values()),
                    edges=list(edges.values()), config=config, **changes)


def _ecommerce() -> Scenario:
    wl = {w.name: w for w in _workloads()}
    return _scenario(
        "ecommerce",
        "E-commerce shop: cart-service answers 503 because its proxies ejected database-service",
        "outlier detection on cart-v1's proxies ejected both database-service endpoints "
        "(membership_healthy 0/2): cart-service -> database-service fails with 503 UH, so "
        "cart-service answers 503 to frontend",
        edges={
            "cart->database": _edge(wl["cart-v1"], wl["database-v1"], 12.0, 5.0, 30.0,
                                    (("200", "-", 0.55), ("503", "UH", 0.45))),
            "frontend->cart": _edge(wl["frontend-v1"], wl["cart-v1"], 12.0, 9.0, 80.0,
                                    (("200", "-", 0.55), ("503", "-", 0.45))),
            "gw->frontend": _edge(wl[GATEWAY], wl["frontend-v1"], 40.0, 28.0, 140.0,
                                  (("200", "-", 0.865), ("500", "-", 0.135))),
        },
        ejected={"cart-v1": {"database-service"}},
    )


def _canary_errors() -> Scenario:
    wl = {w.name: w for w in _workloads()}
    return _scenario(
        "canary-errors",
        "Canary release: product-v2 answers 10% of its requests with 500 (v1 is fine)",
        "product-v2 (the 10% canary of product-service) returns 500 on 10% of requests; "
        "product-v1 serves without errors",
        edges={"frontend->product-v2": _edge(wl["frontend-v1"], wl["product-v2"], 3.6, 14.0, 70.0,
                                             (("200", "-", 0.9), ("500", "-", 0.1)))},
    )


def _cert_expiry() -> Scenario:
    return _scenario(
        "cert-expiry",
        "Certificate rotation stuck: cart-v1's workload certificate expires in 2 hours",
        "cart-v1's 24 h workload certificate was issued 22 h ago and not rotated; it expires "
        "2 h after the scenario time (every other workload's certificate is fresh)",
        certs={"cart-v1": CertSpec(issued_h_ago=22.0)},
    )


def _mtls_edit(config: list[dict[str, Any]], _wl: dict[str, WorkloadSpec]) -> None:
    strict = _meta("PeerAuthentication", "security.istio.io/v1", "database-service")
    strict["spec"] = {"selector": {"matchLabels": {"app": "database-service"}}, "mtls": {"mode": "STRICT"}}
    from_cart = _meta("DestinationRule", "networking.istio.io/v1", "database-service-from-cart")
    from_cart["spec"] = {"host": "database-service",
                         "workloadSelector": {"matchLabels": {"app": "cart-service"}},
                         "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    _find(config, "DestinationRule", "cart-service")["spec"]["trafficPolicy"]["tls"]["mode"] = "DISABLE"
    config.extend([strict, from_cart])


def _mtls_mismatch() -> Scenario:
    wl = {w.name: w for w in _workloads()}
    return _scenario(
        "mtls-mismatch",
        "mTLS mismatch: cart-service sends plaintext to database-service, which requires STRICT mTLS",
        "PeerAuthentication database-service is STRICT while DestinationRule "
        "database-service-from-cart (cart's side) sets tls.mode DISABLE: cart-service -> "
        "database-service fails with 503 UC; frontend -> cart-service travels in plaintext "
        "(DestinationRule cart-service tls DISABLE, connection_security_policy none)",
        edges={
            "cart->database": _edge(wl["cart-v1"], wl["database-v1"], 12.0, 1.5, 6.0,
                                    (("503", "UC", 1.0),), mtls=False),
            "frontend->cart": _edge(wl["frontend-v1"], wl["cart-v1"], 12.0, 4.0, 20.0,
                                    (("503", "-", 1.0),), mtls=False),
            "gw->frontend": _edge(wl[GATEWAY], wl["frontend-v1"], 40.0, 28.0, 140.0,
                                  (("200", "-", 0.7), ("500", "-", 0.3))),
        },
        edit_config=_mtls_edit,
    )


def _weight_drift() -> Scenario:
    wl = {w.name: w for w in _workloads()}
    scenario = _scenario(
        "weight-drift",
        "Config drift: product-service is split 90/10 in the VirtualService but 50/50 in Envoy",
        "frontend-v1's proxies route product-service 50/50 (stale RDS) although VirtualService "
        "product-service says 90/10, and the observed split is 50/50; separately the live "
        "VirtualService cart-service has retries.attempts 10, hand-edited from Git's 3",
        edges={"frontend->product-v1": _edge(wl["frontend-v1"], wl["product-v1"], 18.0, 12.0, 60.0),
               "frontend->product-v2": _edge(wl["frontend-v1"], wl["product-v2"], 18.0, 13.0, 65.0),
               "product-v1->database": _edge(wl["product-v1"], wl["database-v1"], 9.0, 4.0, 25.0),
               "product-v2->database": _edge(wl["product-v2"], wl["database-v1"], 9.0, 4.0, 25.0)},
        route_overrides={"frontend-v1": {"product-service": [("v1", 50), ("v2", 50)]}},
    )
    scenario.intended = copy.deepcopy(scenario.config)
    _find(scenario.config, "VirtualService", "cart-service")["spec"]["http"][0]["retries"]["attempts"] = 10
    return scenario


def _slow_db() -> Scenario:
    wl = {w.name: w for w in _workloads()}
    return _scenario(
        "slow-db",
        "Slow database: database-service's SELECT queries dominate the critical path (p99 ~900 ms)",
        "database-service's query span (SELECT) takes up to ~900 ms at p99; product-service and "
        "cart-service are slow only because they wait for it",
        edges={
            "product-v1->database": _edge(wl["product-v1"], wl["database-v1"], 16.2, 180.0, 900.0),
            "product-v2->database": _edge(wl["product-v2"], wl["database-v1"], 1.8, 180.0, 900.0),
            "cart->database": _edge(wl["cart-v1"], wl["database-v1"], 12.0, 180.0, 900.0),
            "frontend->product-v1": _edge(wl["frontend-v1"], wl["product-v1"], 32.4, 195.0, 930.0),
            "frontend->product-v2": _edge(wl["frontend-v1"], wl["product-v2"], 3.6, 196.0, 935.0),
            "frontend->cart": _edge(wl["frontend-v1"], wl["cart-v1"], 12.0, 198.0, 940.0),
            "gw->frontend": _edge(wl[GATEWAY], wl["frontend-v1"], 40.0, 230.0, 1000.0),
        },
        app_spans={"database-service": SlowSpan("SELECT", LatencyProfile(175.0, 890.0),
                                                (("db.system", "postgresql"),
                                                 ("db.statement", "SELECT * FROM items WHERE id = $1")))},
    )


def _healthy() -> Scenario:
    return _scenario("healthy", "Healthy shop: every request succeeds, no faults anywhere",
                     "no fault: every check must pass")


_DB_SPAN = SlowSpan("SELECT", LatencyProfile(3.0, 18.0),
                    (("db.system", "postgresql"), ("db.statement", "SELECT * FROM items WHERE id = $1")))

def _ecommerce_appmesh() -> Scenario:
    from .scenario_appmesh import ecommerce_appmesh

    return ecommerce_appmesh()


def _migration() -> Scenario:
    from .scenario_appmesh import migration

    return migration()


BUILTIN = {
    "ecommerce": _ecommerce,
    "healthy": _healthy,
    "canary-errors": _canary_errors,
    "cert-expiry": _cert_expiry,
    "mtls-mismatch": _mtls_mismatch,
    "weight-drift": _weight_drift,
    "slow-db": _slow_db,
    "ecommerce-appmesh": _ecommerce_appmesh,
    "migration": _migration,
}


def builtin_scenario(name: str) -> Scenario:
    """A built-in scenario by name (``KeyError`` for an unknown name)."""
    scenario = BUILTIN[name]()
    scenario.app_spans.setdefault("database-service", _DB_SPAN)
    return scenario


def generate_scenario(n_services: int, seed: int = 1) -> Scenario:
    """A large generated mesh (from :func:`meshobs.demo.scale.generated_traffic`), healthy config.

    Every workload seen in the traffic gets one replica; services with several versions get a
    DestinationRule with one subset per version.
    """
    from .scale import generated_traffic

    edges = generated_traffic(n_services, seed)
    seen: dict[tuple[str, str], WorkloadSpec] = {}
    for e in edges:
        for ns, name, svc, ver, sa in ((e.source_namespace, e.source_workload, e.source_service,
                                        e.source_version, e.source_service_account),
                                       (e.destination_namespace, e.destination_workload or "",
                                        e.destination_service, e.destination_version,
                                        e.destination_service_account)):
            if name and (ns, name) not in seen:
                seen[(ns, name)] = WorkloadSpec(ns, name, svc, ver, 1, sa,
                                                gateway=name == GATEWAY)
    versions: dict[tuple[str, str], set[str]] = {}
    for w in seen.values():
        if not w.gateway:
            versions.setdefault((w.namespace, w.service), set()).add(w.version)
    config = []
    for (ns, svc), vers in sorted(versions.items()):
        if len(vers) > 1:
            dr = _meta("DestinationRule", "networking.istio.io/v1", svc, ns)
            dr["spec"] = {"host": svc, "subsets": [{"name": v, "labels": {"version": v}} for v in sorted(vers)]}
            config.append(dr)
    return Scenario(name=f"generated-{n_services}",
                    description=f"Generated mesh of {n_services} services (seed {seed})",
                    cause="generated traffic: a few edges carry 5xx (see the EdgeTraffic list)",
                    workloads=sorted(seen.values(), key=lambda w: (w.namespace, w.name)),
                    edges=edges, config=config, seed=seed, traces=40, recorded=True)


def with_edges(scenario: Scenario, edges: list[EdgeTraffic]) -> Scenario:
    """A copy of ``scenario`` with other traffic (for tests that tweak one edge)."""
    return replace(scenario, edges=list(edges))
