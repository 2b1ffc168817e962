"""What a scenario can say about pods, proxies and the control plane beyond its traffic and config.

Every field defaults to "as a healthy, settled mesh looks", so a scenario states only what
departs from it: a container that restarted (and when), a proxy that rejected a route update,
counters an Envoy keeps (retries, RBAC denials, the BlackHoleCluster), istiod replicas and what
each has sent and each proxy has acknowledged.

Times are ages: seconds before the scenario time, so a scenario reads "the fault started
1200 s ago, the DestinationRule changed 40 s before that".
"""

from __future__ import annotations

from dataclasses import dataclass, field

XDS_TYPES = ("cds", "eds", "lds", "rds")
# xDS short name -> the type URL istiod and Envoy use.
TYPE_URLS = {
    "cds": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "eds": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "lds": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "rds": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
}


@dataclass(frozen=True)
class Restart:
    """A container's last restart: when, and how the previous run ended (``lastState``)."""

    container: str  # "app" for the application container, or a container name (istio-proxy)
    count: int = 1
    s_ago: float = 3 * 86400.0
    reason: str = "Error"  # Error | OOMKilled | Completed ...
    exit_code: int = 1
    ran_s: float = 6 * 3600.0  # how long the previous run lasted before it ended


@dataclass(frozen=True)
class PodState:
    """How one workload's pods depart from "running, ready, started days ago, never restarted"."""

    started_s_ago: float | None = None  # None: the demo's default (days ago, staggered)
    restarts: tuple[Restart, ...] = ()
    ready: bool = True
    replica: int | None = None  # only this replica (index) when set; else every replica


@dataclass(frozen=True)
class StatRate:
    """An Envoy counter that grows at ``per_s`` per pod since ``since_s_ago`` (None: since the
    pod started). ``name`` is Envoy's full stat name, e.g.
    ``cluster.outbound|8080||ledger-db.ledger.svc.cluster.local.upstream_rq_retry`` or
    ``http.inbound_0.0.0.0_8080.rbac.denied``."""

    name: str
    per_s: float
    since_s_ago: float | None = None


@dataclass(frozen=True)
class Rejection:
    """A proxy rejected (NACKed) every push of one xDS type since ``since_s_ago``: Envoy keeps
    the last accepted version, counts ``update_rejected``, and istiod records the reject."""

    xds: str  # cds | lds | rds | eds
    since_s_ago: float
    attempts: int = 6  # pushes rejected so far
    detail: str = ""  # the error Envoy sends back in the NACK (error_detail.message)
    route_config: str = ""  # for rds: the route configuration name (e.g. "8080")


@dataclass(frozen=True)
class ProxyState:
    """How one workload's sidecars depart from "ready, connected, config current, counters
    that follow from the traffic"."""

    counters: tuple[StatRate, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    # xDS type -> seconds since this proxy last accepted a push of it (default: 493 s, the
    # mesh's last push). A scoped push leaves proxies it did not select on an older push.
    pushed_s_ago: dict[str, float] = field(default_factory=dict)
    ready: bool = True
    connected: bool = True
    istio_version: str | None = None  # the proxy's version when it differs from istiod's
    # Clusters (names) received but not yet initialised: config_dump's dynamic_warming_clusters
    # and cluster_manager.warming_clusters.
    warming_clusters: tuple[str, ...] = ()
    # False: the proxy never received its first configuration (no dynamic clusters, listeners
    # or routes; /ready answers PRE_INITIALIZING), as a new pod when istiod is unreachable.
    initialized: bool = True
    # Services whose endpoints this proxy still holds from before their rollout: its clusters
    # list the previous ReplicaSet's pods (addresses that no longer answer).
    stale_endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class IstiodSpec:
    """The control plane: replicas (each serving a share of the proxies), readiness, what it
    pushed and what the proxies acknowledged, its push errors, and proxy convergence time."""

    replicas: int = 1
    version: str = "1.24.2"
    revision: str = "default"
    not_ready: tuple[int, ...] = ()  # replica indexes whose /ready answers 503
    # Proxies (workload names) whose last push of an xDS type was sent but not acknowledged.
    unacked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Send errors per second (pilot_xds_pushes{type="<xds>_senderr"}) since push_errors_since.
    push_errors_per_s: float = 0.0
    push_errors_since_s_ago: float = 900.0
    push_context_errors_per_s: float = 0.0
    pushes_per_s: float = 0.05  # full and incremental pushes, each type
    convergence_p50_s: float = 0.08
    convergence_p99_s: float = 0.6
    # Workloads the latest push went to (a scoped push: a Sidecar or exportTo narrowed it);
    # empty = every proxy got it.
    scoped_push_to: tuple[str, ...] = ()
    scoped_push_s_ago: float = 95.0
    restarted_s_ago: float = 6 * 86400.0
