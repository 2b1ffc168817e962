"""Build small MeshSnapshots by hand for check and engine tests.

    mesh = MeshBuilder()
    mesh.service("cart-service").service("database-service")
    mesh.call("cart-service", "database-service", rps=10, responses=[("503", "UH", 0.5), ("200", "-", 0.5)])
    snap = mesh.build()

Every service gets one workload ``<name>-v1`` (or the ``versions`` given) with pods that have a
ready LIVE sidecar and current xDS, and every configured source reports ok, so a fresh builder
is a healthy mesh; tests then break one thing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from meshobs.model import (
    Edge,
    Latency,
    Mesh,
    MeshSnapshot,
    Pod,
    Proxy,
    ResponseStat,
    Service,
    ServiceRef,
    SourceState,
    SourceStatus,
    UpstreamCluster,
    Workload,
    WorkloadRef,
    XdsResource,
    frozen_map,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SOURCES = {"kubernetes": "kubernetes", "prometheus": "prometheus", "envoy": "envoy"}


class MeshBuilder:
    def __init__(self, time: datetime = T0, namespace: str = "default") -> None:
        self.time = time
        self.ns = namespace
        self.services: dict[str, Service] = {}
        self.workloads: dict[str, Workload] = {}
        self.pods: dict[str, Pod] = {}
        self.proxies: dict[str, Proxy] = {}
        self.edges: list[Edge] = []
        self.sources: dict[str, SourceStatus] = {
            k: SourceStatus(k, SourceState.OK, kind=v) for k, v in SOURCES.items()}

    # -- nodes -----------------------------------------------------------------------------
    def service(self, name: str, versions: tuple[str, ...] = ("v1",), pods: int = 2,
                sidecar: bool = True) -> MeshBuilder:
        ref = ServiceRef(self.ns, name)
        base = name.removesuffix("-service")
        wrefs = []
        for v in versions:
            wref = WorkloadRef(self.ns, f"{base}-{v}")
            wrefs.append(wref)
            self.workloads[wref.name] = Workload(wref, Mesh.ISTIO, (ref,), app=base, version=v,
                                                 service_account=base, meshed=sidecar)
            for i in range(pods):
                pod = f"{wref.name}-{i}"
                self.pods[pod] = Pod(self.ns, pod, wref, has_sidecar=sidecar,
                                     sidecar_injection_expected=True, ready=True,
                                     sidecar_ready=True if sidecar else None, phase="Running",
                                     service_account=base)
                if sidecar:
                    xds = tuple(XdsResource(t, "v42", self.time - timedelta(seconds=60))
                                for t in ("cds", "lds", "rds"))
                    self.proxies[pod] = Proxy(f"{pod}.{self.ns}", pod, self.ns, wref, ready=True,
                                              state="LIVE", uptime_s=86400.0, xds=xds,
                                              control_plane_connected=True)
        self.services[name] = Service(ref, Mesh.ISTIO, hosts=(f"{name}.{self.ns}.svc.cluster.local",),
                                      workloads=tuple(wrefs))
        return self

    def pod(self, name: str, **changes: Any) -> MeshBuilder:
        self.pods[name] = replace(self.pods[name], **changes)
        return self

    def proxy(self, pod: str, **changes: Any) -> MeshBuilder:
        self.proxies[pod] = replace(self.proxies[pod], **changes)
        return self

    def proxies_of(self, service: str) -> list[str]:
        wl = {w.ref for w in self.workloads.values() if ServiceRef(self.ns, service) in w.services}
        return [k for k, p in self.proxies.items() if p.workload in wl]

    def cluster(self, caller: str, callee: str, **fields: Any) -> MeshBuilder:
        """Give every proxy of ``caller`` an outbound cluster for ``callee``."""
        host = f"{callee}.{self.ns}.svc.cluster.local"
        for pod in self.proxies_of(caller):
            c = UpstreamCluster(f"outbound|80||{host}", service_host=host, port=80, **fields)
            p = self.proxies[pod]
            self.proxies[pod] = replace(p, clusters=(*p.clusters, c))
        return self

    # -- traffic ---------------------------------------------------------------------------
    def call(self, src: str, dst: str, rps: float = 10.0,
             responses: list[tuple[str, str, float]] | None = None, p99: float | None = 50.0,
             reached: bool = True, version: str = "v1") -> MeshBuilder:
        """``src`` service calls ``dst`` at ``rps``; responses are (code, flags, fraction)."""
        src_wl = next(w for w in self.workloads.values() if ServiceRef(self.ns, src) in w.services)
        dst_base = dst.removesuffix("-service")
        stats = tuple(ResponseStat(c, f, round(rps * frac, 6))
                      for c, f, frac in (responses or [("200", "-", 1.0)]))
        self.edges.append(Edge(
            source=src_wl.ref, destination=ServiceRef(self.ns, dst),
            destination_workload=WorkloadRef(self.ns, f"{dst_base}-{version}") if reached else None,
            source_service=ServiceRef(self.ns, src), mesh=Mesh.ISTIO, request_rate=rps,
            responses=stats, latency=Latency(p50=p99 / 5, p99=p99) if p99 is not None else None))
        return self

    def source(self, name: str, state: SourceState, message: str = "", kind: str | None = None) -> MeshBuilder:
        self.sources[name] = SourceStatus(name, state, message, kind=kind or name)
        return self

    def without(self, *names: str) -> MeshBuilder:
        for n in names:
            self.sources.pop(n, None)
        return self

    def build(self) -> MeshSnapshot:
        kinds = {s.kind for s in self.sources.values() if s.ok}
        return MeshSnapshot(
            time=self.time, window_s=300.0,
            services=tuple(self.services.values()), workloads=tuple(self.workloads.values()),
            pods=tuple(self.pods.values()) if "kubernetes" in kinds else (),
            proxies=tuple(self.proxies.values()) if "envoy" in kinds else (),
            edges=tuple(self.edges) if "prometheus" in kinds else (),
            sources=tuple(self.sources.values()), origin="test")


def flags(**kv: int) -> Any:
    return frozen_map(kv)


def busier(snapshot: MeshSnapshot, factor: float) -> MeshSnapshot:
    """The same mesh with every edge ``factor`` times as busy: a refresh in which every row's
    numbers change."""
    edges = tuple(replace(e, request_rate=e.request_rate * factor,
                          responses=tuple(replace(r, rate=r.rate * factor) for r in e.responses))
                  for e in snapshot.edges)
    return replace(snapshot, edges=edges)
