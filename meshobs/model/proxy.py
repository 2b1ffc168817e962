"""Sidecar proxies as their Envoy admin API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .frozen import EMPTY, FrozenDict
from .refs import WorkloadRef


@dataclass(frozen=True, slots=True)
class XdsResource:
    """The version of one xDS type (``cds``, ``lds``, ``rds``, ``eds``, ``sds``) a proxy holds."""

    type: str
    version: str | None
    last_updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class UpstreamHost:
    """One endpoint of an upstream cluster."""

    address: str
    healthy: bool
    eds_health: str | None = None
    failed_outlier_check: bool = False
    failed_active_health_check: bool = False
    rq_total: int = 0
    rq_error: int = 0
    cx_connect_fail: int = 0


@dataclass(frozen=True, slots=True)
class UpstreamCluster:
    """An Envoy cluster: Istio names them ``outbound|PORT|SUBSET|HOST``.

    Counters come from ``/stats`` (cumulative since the proxy started); host health from
    ``/clusters``.
    """

    name: str
    direction: str = "outbound"  # outbound | inbound | other
    service_host: str | None = None
    port: int | None = None
    subset: str | None = None
    hosts: tuple[UpstreamHost, ...] = ()
    membership_healthy: int | None = None
    membership_total: int | None = None
    outlier_ejections_active: int = 0
    outlier_ejections_total: int = 0
    circuit_breaker_open: FrozenDict = EMPTY  # {"cx_open": 0|1, "rq_open":.., "rq_pending_open":..}
    counters: FrozenDict = EMPTY  # upstream_rq_pending_overflow, upstream_cx_none_healthy, ...
    warming: bool = False
    version: str | None = None
    # The TLS the cluster originates, from its transport socket in /config_dump:
    # istio_mutual | mutual | simple | disable; None when the config dump was not available.
    tls: str | None = None
    # From /config_dump, what `istioctl proxy-config cluster` shows: the discovery type (EDS,
    # STATIC, ORIGINAL_DST, STRICT_DNS ...), the circuit-breaker thresholds of the default
    # priority (max_connections, max_pending_requests, max_requests, max_retries), the outlier
    # detection settings as configured, and the Istio resource that made the cluster
    # ("DestinationRule shop/cart-service").
    discovery: str | None = None
    thresholds: FrozenDict = EMPTY
    outlier_detection: FrozenDict = EMPTY
    config_source: str | None = None

    @property
    def healthy_hosts(self) -> int:
        return sum(1 for h in self.hosts if h.healthy)

    def counter(self, name: str) -> int:
        value = self.counters.get(name, 0)
        return int(value) if value is not None else 0

    @property
    def overflows(self) -> int:
        """Requests or connections refused by a circuit breaker."""
        return self.counter("upstream_rq_pending_overflow") + self.counter("upstream_cx_overflow")


@dataclass(frozen=True, slots=True)
class RouteDestination:
    """A cluster a route sends to, with its weight (a single destination weighs 100)."""

    cluster: str
    weight: int


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One route of Envoy's RDS configuration: what the proxy actually does (effective layer)."""

    route_config: str
    virtual_host: str
    domains: tuple[str, ...]
    name: str | None
    match: FrozenDict
    destinations: tuple[RouteDestination, ...]
    timeout_s: float | None = None
    retry_attempts: int | None = None
    retry_on: str | None = None
    per_try_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class FilterChain:
    """One filter chain of a listener: what it matches and where it sends the traffic
    (``istioctl proxy-config listeners``' MATCH and DESTINATION: ``Route: 8080``,
    ``Cluster: outbound|8080||cart...``, ``Inline Route: /*``, ``Non-HTTP/Non-TCP``)."""

    match: FrozenDict = EMPTY  # the filter_chain_match as configured
    destination: str = ""


@dataclass(frozen=True, slots=True)
class Listener:
    """A listener as the proxy holds it (``state``: static | active | warming)."""

    name: str
    address: str | None = None
    port: int | None = None
    direction: str | None = None  # INBOUND | OUTBOUND (traffic_direction), None when unset
    chains: tuple[FilterChain, ...] = ()
    state: str = "active"


@dataclass(frozen=True, slots=True)
class Proxy:
    """The Envoy sidecar of one pod."""

    id: str  # pod.namespace, as istioctl proxy-status names it
    pod: str
    namespace: str
    workload: WorkloadRef | None = None
    admin_url: str | None = None
    ready: bool | None = None
    state: str | None = None  # LIVE | DRAINING | PRE_INITIALIZING | INITIALIZING
    envoy_version: str | None = None
    uptime_s: float | None = None
    node_id: str | None = None
    xds: tuple[XdsResource, ...] = ()
    control_plane_connected: bool | None = None
    update_rejected: FrozenDict = EMPTY  # {"cds": n, "lds": n, ...}
    warming_clusters: int = 0
    clusters: tuple[UpstreamCluster, ...] = ()
    routes: tuple[HttpRoute, ...] = ()
    listeners: tuple[str, ...] = ()
    listener_details: tuple[Listener, ...] = ()  # the same listeners with address and chains
    # HTTP filter counters summed over the proxy's listeners (cumulative): ``rbac.allowed``,
    # ``rbac.denied`` (the RBAC filter's verdicts on requests into the workload: 403),
    # ``jwt_authn.allowed``, ``jwt_authn.denied`` (the JWT filter's: 401).
    http_counters: FrozenDict = EMPTY

    def xds_version(self, xds_type: str) -> XdsResource | None:
        for x in self.xds:
            if x.type == xds_type:
                return x
        return None

    def cluster(self, name: str) -> UpstreamCluster | None:
        for c in self.clusters:
            if c.name == name:
                return c
        return None
