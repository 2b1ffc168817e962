"""Hand-built snapshots for the configuration, certificate and slow-hop check tests.

A small shop: product-service (v1, v2), cart-service (v1), database-service (v1), frontend
(v1) in namespace ``shop``, with real-shaped Istio specs wrapped in ConfigResource.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from meshobs.checks.base import Finding, Settings
from meshobs.checks.registry import ALL
from meshobs.engine.runner import run_checks
from meshobs.model import (
    Cert,
    CertRole,
    ConfigResource,
    Edge,
    HttpRoute,
    Layer,
    Mesh,
    MeshSnapshot,
    Pod,
    Proxy,
    ResponseStat,
    RouteDestination,
    Security,
    Service,
    ServiceRef,
    Span,
    Trace,
    Workload,
    WorkloadRef,
    freeze,
)

NS = "shop"
TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOW = 300.0
WORKLOADS = {  # name -> (service, version)
    "frontend-v1": ("frontend", "v1"),
    "product-v1": ("product-service", "v1"),
    "product-v2": ("product-service", "v2"),
    "cart-v1": ("cart-service", "v1"),
    "database-v1": ("database-service", "v1"),
}


def svc(name: str) -> ServiceRef:
    return ServiceRef(NS, name)


def wl(name: str) -> WorkloadRef:
    return WorkloadRef(NS, name)


def resource(doc: dict[str, Any], layer: Layer = Layer.LIVE, origin: str = "test") -> ConfigResource:
    meta = doc.get("metadata") or {}
    return ConfigResource(kind=doc["kind"], namespace=meta.get("namespace", NS), name=meta["name"],
                          spec=freeze(doc.get("spec") or {}), layer=layer, api_version=doc.get("apiVersion", ""),
                          mesh=Mesh.ISTIO, origin=origin)


def vs(name: str, http: list[dict[str, Any]], hosts: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": kw.pop("namespace", NS)},
            "spec": {"hosts": hosts or [name], "http": http, **kw}}


def dr(name: str, host: str, subsets: dict[str, dict[str, str]] | None = None, tls: str | None = None,
       namespace: str = NS, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"host": host, **spec}
    if subsets:
        body["subsets"] = [{"name": k, "labels": v} for k, v in subsets.items()]
    if tls:
        body["trafficPolicy"] = {"tls": {"mode": tls}}
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def pa(name: str, mode: str, namespace: str = NS, selector: dict[str, str] | None = None,
       port_level: dict[int, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if port_level:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in port_level.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def split_route(weights: dict[str, int], host: str = "product-service", **kw: Any) -> dict[str, Any]:
    return {"route": [{"destination": {"host": host, "subset": s}, "weight": w} for s, w in weights.items()], **kw}


def healthy_config() -> list[dict[str, Any]]:
    return [
        vs("product-service", [split_route({"v1": 90, "v2": 10}, timeout="10s",
                                           retries={"attempts": 2, "perTryTimeout": "3s"})]),
        dr("product-service", "product-service", {"v1": {"version": "v1"}, "v2": {"version": "v2"}},
           tls="ISTIO_MUTUAL"),
        dr("database-service", "database-service", tls="ISTIO_MUTUAL"),
        pa("default", "PERMISSIVE"),
    ]


def cluster(service: str, subset: str = "", port: int = 8080) -> str:
    return f"outbound|{port}|{subset}|{service}.{NS}.svc.cluster.local"


# What Istio writes into Envoy's retry_on when a VirtualService's retries leave retryOn unset.
ISTIO_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def envoy_route(weights: dict[str, int], service: str = "product-service", timeout_s: float | None = 10.0,
                retry_attempts: int | None = 2, per_try_timeout_s: float | None = 3.0,
                name: str | None = None, retry_on: str | None = ISTIO_RETRY_ON) -> HttpRoute:
    host = f"{service}.{NS}.svc.cluster.local"
    return HttpRoute(route_config="8080", virtual_host=f"{host}:8080", domains=(host, service), name=name,
                     match=freeze({"prefix": "/"}),
                     destinations=tuple(RouteDestination(cluster(service, s), w) for s, w in weights.items()),
                     timeout_s=timeout_s, retry_attempts=retry_attempts, per_try_timeout_s=per_try_timeout_s,
                     retry_on=retry_on if retry_attempts else None)


def edge(src: str, dst_workload: str, rate: float, security: Security = Security.MUTUAL_TLS,
         responses: tuple[tuple[str, str, float], ...] = (("200", "-", 1.0),)) -> Edge:
    service = WORKLOADS[dst_workload][0]
    return Edge(source=wl(src), destination=svc(service), destination_workload=wl(dst_workload),
                source_service=svc(WORKLOADS[src][0]), mesh=Mesh.ISTIO, request_rate=rate,
                responses=tuple(ResponseStat(c, f, rate * share) for c, f, share in responses),
                security=security)


def healthy_edges() -> list[Edge]:
    return [edge("frontend-v1", "product-v1", 32.4), edge("frontend-v1", "product-v2", 3.6),
            edge("frontend-v1", "cart-v1", 12.0), edge("cart-v1", "database-v1", 12.0),
            edge("product-v1", "database-v1", 16.2)]


def workload_cert(workload: str, issued_h_ago: float = 2.0, lifetime_h: float = 24.0,
                  spiffe: str | None = None, serial: str | None = None) -> Cert:
    nb = TIME - timedelta(hours=issued_h_ago)
    sa = WORKLOADS[workload][0]
    return Cert(serial=serial or f"{workload}-serial", subject="", issuer="O=cluster.local", not_before=nb,
                not_after=nb + timedelta(hours=lifetime_h), role=CertRole.WORKLOAD,
                sans=(spiffe or f"spiffe://cluster.local/ns/{NS}/sa/{sa}",),
                proxy_id=f"{workload}-0.{NS}", workload=wl(workload))


def root_cert(days_left: float, serial: str = "root-1", proxy: str = "cart-v1") -> Cert:
    return Cert(serial=serial, subject="O=cluster.local", issuer="O=cluster.local",
                not_before=TIME - timedelta(days=300), not_after=TIME + timedelta(days=days_left),
                role=CertRole.ROOT, proxy_id=f"{proxy}-0.{NS}")


def snapshot(config: Iterable[dict[str, Any] | ConfigResource] | None = None, edges: list[Edge] | None = None,
             routes: dict[str, list[HttpRoute]] | None = None, certs: list[Cert] | None = None,
             traces: list[Trace] | None = None, workloads: dict[str, tuple[str, str]] | None = None,
             service_accounts: dict[str, str] | None = None, with_pods: bool = True) -> MeshSnapshot:
    """The shop mesh; ``routes`` maps a workload to its proxy's Envoy routes."""
    wls = workloads if workloads is not None else WORKLOADS
    accounts = service_accounts or {}
    workload_objs = [Workload(ref=wl(n), mesh=Mesh.ISTIO, services=(svc(s),), app=s, version=v,
                              labels=freeze({"app": s, "version": v}), service_account=accounts.get(n, s),
                              meshed=True) for n, (s, v) in wls.items()]
    services = [Service(ref=svc(s), mesh=Mesh.ISTIO, ports=(8080,), selector=freeze({"app": s}),
                        workloads=tuple(wl(n) for n, (s2, _) in wls.items() if s2 == s))
                for s in sorted({s for s, _ in wls.values()})]
    pods = [Pod(namespace=NS, name=f"{n}-0", workload=wl(n), labels=freeze({"app": s, "version": v}),
                has_sidecar=True, ready=True, sidecar_ready=True, phase="Running",
                service_account=accounts.get(n, s)) for n, (s, v) in wls.items()] if with_pods else []
    proxies = [Proxy(id=f"{n}-0.{NS}", pod=f"{n}-0", namespace=NS, workload=wl(n), ready=True, state="LIVE",
                     routes=tuple((routes or {}).get(n, ()))) for n in wls]
    cfg = [c if isinstance(c, ConfigResource) else resource(c)
           for c in (config if config is not None else healthy_config())]
    return MeshSnapshot(time=TIME, window_s=WINDOW, services=tuple(services), workloads=tuple(workload_objs),
                        pods=tuple(pods), edges=tuple(edges if edges is not None else healthy_edges()),
                        proxies=tuple(proxies), certs=tuple(certs or ()), config=tuple(cfg),
                        traces=tuple(traces or ()), origin="test")


def run(snapshot: MeshSnapshot, service: ServiceRef, prefixes: tuple[str, ...] = ("config.", "certs.", "traces."),
        settings: Settings | None = None) -> list[Finding]:
    """Run every check and analyzer of this helper's families for one service, as the engine
    does: service checks on the service, analyzer findings that touch it."""
    chosen = sorted((c for c in ALL if c.id.startswith(prefixes)), key=lambda c: c.id)
    results, findings = run_checks(snapshot, service, settings or Settings(), chosen)
    broken = [r for r in results if r.status == "error"]
    assert not broken, f"a check raised: {broken}"
    return findings


def pairs(findings: Iterable[Finding], min_severity: str = "info") -> set[tuple[str, str]]:
    rank = {"info": 1, "warning": 2, "error": 3}
    return {(f.code, f.subject) for f in findings if rank[f.severity.value] >= rank[min_severity]}


_ids = itertools.count()


def trace(spans: list[tuple[str, str | None, str, str, int, int]], trace_id: str | None = None) -> Trace:
    """spans: (span_id, parent_id, service, operation, start_ms, end_ms)."""
    tid = trace_id or f"trace-{next(_ids)}"
    base = int(TIME.timestamp() * 1_000_000)
    return Trace(tid, tuple(Span(trace_id=tid, span_id=s, parent_id=p, service=service, operation=op,
                                 start_us=base + a * 1000, duration_us=(b - a) * 1000)
                            for s, p, service, op, a, b in spans))


def with_workloads(snap: MeshSnapshot, **changes: Any) -> MeshSnapshot:
    return replace(snap, **changes)
