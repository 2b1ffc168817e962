"""MeshSnapshot: everything meshobs knows about a mesh at one evaluation time."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from .cert import Cert
from .config import ConfigResource, Layer
from .controlplane import ControlPlane, InjectionWebhook, IstiodReplica, XdsReject, XdsSync
from .history import History
from .proxy import Proxy
from .refs import Mesh, ServiceRef, WorkloadRef
from .series import MetricSeries
from .source import SourceStatus
from .topology import Pod, Service, Workload
from .trace import Trace
from .traffic import Edge

T = TypeVar("T")
_ABSENT = object()  # a derived value not built yet


@dataclass(frozen=True, slots=True)
class _Index:
    services: dict[ServiceRef, Service]
    services_by_name: dict[str, list[Service]]
    workloads: dict[WorkloadRef, Workload]
    edges_in: dict[ServiceRef, list[Edge]]
    edges_out: dict[WorkloadRef, list[Edge]]
    workloads_of: dict[ServiceRef, list[WorkloadRef]]
    proxies_of: dict[WorkloadRef, list[Proxy]]
    pods_of: dict[WorkloadRef, list[Pod]]
    certs_of: dict[str, list[Cert]]
    edges_by_source_service: dict[ServiceRef, list[Edge]]
    series: dict[tuple[ServiceRef, str], MetricSeries]
    traces_by_service: dict[str, list[Trace]]
    sources: dict[str, SourceStatus]


@dataclass(frozen=True)
class MeshSnapshot:
    """The normalised mesh. Immutable; lookups are indexed once on construction.

    ``time`` is the evaluation time (a bundle replays at the time it was recorded) and
    ``window_s`` the rate window the edges were computed over.
    """

    time: datetime
    window_s: float
    services: tuple[Service, ...] = ()
    workloads: tuple[Workload, ...] = ()
    pods: tuple[Pod, ...] = ()
    edges: tuple[Edge, ...] = ()
    proxies: tuple[Proxy, ...] = ()
    certs: tuple[Cert, ...] = ()
    config: tuple[ConfigResource, ...] = ()
    traces: tuple[Trace, ...] = ()
    sources: tuple[SourceStatus, ...] = ()
    origin: str = ""  # "live", a bundle path, or "demo:NAME"
    series: tuple[MetricSeries, ...] = ()
    history: History | None = None  # the longer metric history "what changed" reads
    control_plane: ControlPlane = field(default_factory=ControlPlane)
    _index: _Index = field(init=False, repr=False, compare=False)
    _derived: dict[str, object] = field(init=False, repr=False, compare=False)
    _derived_lock: threading.RLock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", self._build_index())
        object.__setattr__(self, "_derived", {})
        # Re-entrant: one derived index may be built from another.
        object.__setattr__(self, "_derived_lock", threading.RLock())

    def derived(self, key: str, build: Callable[[MeshSnapshot], T]) -> T:
        """An index computed from this snapshot alone, built once (thread-safe) and kept with it.

        Checks use it for mesh-wide lookups (VirtualServices by host ...) so ``--all`` does not
        rebuild them per service. The snapshot's data never changes, so neither does the value.
        """
        # Built once and never replaced: a value already there is read without the lock (a dict
        # read is atomic), which --all asks for ~90 times per service.
        found = self._derived.get(key, _ABSENT)
        if found is not _ABSENT:
            return found  # type: ignore[return-value]
        with self._derived_lock:
            if key not in self._derived:
                self._derived[key] = build(self)
            return self._derived[key]  # type: ignore[return-value]

    def _build_index(self) -> _Index:
        services = {s.ref: s for s in self.services}
        by_name: dict[str, list[Service]] = defaultdict(list)
        for s in self.services:
            by_name[s.name].append(s)
        edges_in: dict[ServiceRef, list[Edge]] = defaultdict(list)
        edges_out: dict[WorkloadRef, list[Edge]] = defaultdict(list)
        for e in self.edges:
            edges_in[e.destination].append(e)
            edges_out[e.source].append(e)
        workloads_of: dict[ServiceRef, list[WorkloadRef]] = defaultdict(list)
        for w in self.workloads:
            for sref in w.services:
                workloads_of[sref].append(w.ref)
        for s in self.services:
            for wref in s.workloads:
                if wref not in workloads_of[s.ref]:
                    workloads_of[s.ref].append(wref)
        proxies_of: dict[WorkloadRef, list[Proxy]] = defaultdict(list)
        for p in self.proxies:
            if p.workload is not None:
                proxies_of[p.workload].append(p)
        pods_of: dict[WorkloadRef, list[Pod]] = defaultdict(list)
        for pod in self.pods:
            if pod.workload is not None:
                pods_of[pod.workload].append(pod)
        certs_of: dict[str, list[Cert]] = defaultdict(list)
        for c in self.certs:
            if c.proxy_id is not None:
                certs_of[c.proxy_id].append(c)
        by_source_service: dict[ServiceRef, list[Edge]] = defaultdict(list)
        for e in self.edges:
            if e.source_service is not None:
                by_source_service[e.source_service].append(e)
        traces_by_service: dict[str, list[Trace]] = defaultdict(list)
        for tr in self.traces:
            for name in tr.services:
                traces_by_service[name].append(tr)
        return _Index(
            services, dict(by_name), {w.ref: w for w in self.workloads}, dict(edges_in),
            dict(edges_out), dict(workloads_of), dict(proxies_of), dict(pods_of), dict(certs_of),
            dict(by_source_service), {(s.service, s.metric): s for s in self.series},
            dict(traces_by_service), {s.name: s for s in self.sources},
        )

    # -- lookups ---------------------------------------------------------------------------
    def service(self, ref: ServiceRef) -> Service | None:
        return self._index.services.get(ref)

    def find_services(self, name: str, namespace: str | None = None) -> list[Service]:
        """Services called ``name``, optionally in one namespace.

        Accepts what people type: ``cart-service``, ``shop/cart-service``, ``cart-service.shop``,
        the FQDN, in any case (Kubernetes names are lower case).
        """
        name = name.strip().lower()
        if "/" in name or name.endswith(".svc.cluster.local") or name.count(".") == 1:
            ref = ServiceRef.parse(name)
            found = self.service(ref)
            return [found] if found and (namespace is None or found.namespace == namespace) else []
        return [s for s in self._index.services_by_name.get(name, [])
                if namespace is None or s.namespace == namespace]

    def workload(self, ref: WorkloadRef) -> Workload | None:
        return self._index.workloads.get(ref)

    def workloads_of(self, service: ServiceRef) -> list[Workload]:
        refs = self._index.workloads_of.get(service, [])
        return [w for r in refs if (w := self._index.workloads.get(r)) is not None]

    def services_of(self, workload: WorkloadRef) -> list[ServiceRef]:
        w = self.workload(workload)
        return list(w.services) if w else []

    def edges_into(self, service: ServiceRef) -> list[Edge]:
        """Edges whose destination is ``service`` (its callers)."""
        return list(self._index.edges_in.get(service, []))

    def served_edges(self, service: ServiceRef) -> list[Edge]:
        """Edges into ``service`` that reached one of its workloads: the calls it served, which
        the checks judge it by (the others never reached a destination: NOT_REACHED)."""
        return [e for e in self._index.edges_in.get(service, []) if e.destination_workload is not None]

    def edges_from_workload(self, workload: WorkloadRef) -> list[Edge]:
        return list(self._index.edges_out.get(workload, []))

    def edges_from(self, service: ServiceRef) -> list[Edge]:
        """Edges leaving any workload of ``service`` (its callees)."""
        own = self._index.workloads_of.get(service, [])
        out: list[Edge] = []
        for w in own:
            out.extend(self._index.edges_out.get(w, []))
        # Edges whose source workload is unknown to Kubernetes still carry source_service.
        out.extend(e for e in self._index.edges_by_source_service.get(service, []) if e.source not in own)
        return out

    def callers(self, service: ServiceRef) -> list[ServiceRef]:
        """Services that call ``service`` (in-neighbours), deduplicated, in a stable order."""
        seen: dict[ServiceRef, None] = {}
        for e in self.edges_into(service):
            src = self.caller_of(e)
            if src is not None:
                seen[src] = None
        return sorted(seen)

    def callees(self, service: ServiceRef) -> list[ServiceRef]:
        """Services that ``service`` calls (out-neighbours)."""
        return sorted({e.destination for e in self.edges_from(service)})

    def caller_of(self, edge: Edge) -> ServiceRef | None:
        """The service an edge's calls come from (its source workload's, when the metrics did
        not name one); None when unknown."""
        return edge.source_service or self._service_of_workload(edge.source)

    def _service_of_workload(self, ref: WorkloadRef) -> ServiceRef | None:
        w = self.workload(ref)
        return w.services[0] if w and w.services else None

    def proxies_of(self, workload: WorkloadRef) -> list[Proxy]:
        return list(self._index.proxies_of.get(workload, []))

    def pods_of(self, workload: WorkloadRef) -> list[Pod]:
        return list(self._index.pods_of.get(workload, []))

    def certs_of(self, proxy_id: str) -> list[Cert]:
        return list(self._index.certs_of.get(proxy_id, []))

    def config_of(self, kind: str | None = None, layer: Layer | None = None) -> list[ConfigResource]:
        """The configuration resources of ``kind`` and ``layer`` (None: any), in their order.
        By kind through an index built on first use: the analyzers ask for some 40 kinds, each a
        scan of every resource before (x0.96 of the whole-mesh analysis at 5,000 services,
        benchmarks/results/mends-s30.md)."""
        pool = self.config if kind is None else self.derived("config_by_kind", _config_by_kind).get(kind, ())
        return [c for c in pool if layer is None or c.layer == layer]

    def source(self, name: str) -> SourceStatus | None:
        return self._index.sources.get(name)

    def sources_of_kind(self, kind: str) -> list[SourceStatus]:
        return [s for s in self.sources if s.kind == kind]

    @property
    def meshes(self) -> frozenset[Mesh]:
        return frozenset(s.mesh for s in self.services if s.mesh is not Mesh.UNKNOWN)

    def series_of(self, service: ServiceRef, metric: str) -> MetricSeries | None:
        return self._index.series.get((service, metric))

    def traces_through(self, service_name: str) -> list[Trace]:
        """Traces with a span of ``service_name`` (the span's service, as the tracer names it)."""
        return list(self._index.traces_by_service.get(service_name, []))


@dataclass
class SnapshotPart:
    """What one collector's ``normalize`` contributes; merged into a MeshSnapshot by assembly."""

    services: list[Service] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    proxies: list[Proxy] = field(default_factory=list)
    certs: list[Cert] = field(default_factory=list)
    config: list[ConfigResource] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    series: list[MetricSeries] = field(default_factory=list)
    history: History | None = None
    istiod: list[IstiodReplica] = field(default_factory=list)
    xds_sync: list[XdsSync] = field(default_factory=list)
    xds_rejects: list[XdsReject] = field(default_factory=list)
    injection_webhooks: list[InjectionWebhook] = field(default_factory=list)
    webhooks_listed: bool = False  # the cluster's MutatingWebhookConfigurations were listed

    def extend(self, other: SnapshotPart) -> None:
        for name in ("services", "workloads", "pods", "edges", "proxies", "certs", "config",
                     "traces", "sources", "series", "istiod", "xds_sync", "xds_rejects", "injection_webhooks"):
            getattr(self, name).extend(getattr(other, name))
        self.webhooks_listed = self.webhooks_listed or other.webhooks_listed
        # One metrics source answers the history; a second one's (rare) is kept only when
        # the first had none.
        if self.history is None:
            self.history = other.history

    @classmethod
    def merge(cls, parts: Iterable[SnapshotPart]) -> SnapshotPart:
        out = cls()
        for p in parts:
            out.extend(p)
        return out


def _config_by_kind(snapshot: MeshSnapshot) -> dict[str, list[ConfigResource]]:
    by_kind: dict[str, list[ConfigResource]] = {}
    for c in snapshot.config:
        by_kind.setdefault(c.kind, []).append(c)
    return by_kind
