"""One proxy's raw admin payloads -> Proxy, Certs and a SourceStatus (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from meshobs.collectors.appmesh_names import parse_node_id
from meshobs.collectors.base import NormalizeContext
from meshobs.model import (
    FrozenDict,
    HttpRoute,
    Proxy,
    SnapshotPart,
    SourceState,
    SourceStatus,
    UpstreamCluster,
)
from meshobs.raw import Payload, RawSource

from .certs import certs_from_admin, certs_from_secrets
from .clusters import ClusterStatus, parse_clusters
from .config_dump import ConfigDump, parse_config_dump
from .names import parse_cluster_name
from .scraped import as_exposition
from .server_info import (
    ServerInfo,
    node_version,
    parse_server_info,
    pod_from_node_id,
    readiness,
    workload_of,
)
from .stats import HTTP_FILTER_COUNTERS, RDS_REJECTED, EnvoyStats, parse_prometheus_stats, parse_stats

# Cluster counters worth carrying into the model (cumulative since the proxy started).
COUNTERS = (
    "upstream_rq_total", "upstream_rq_2xx", "upstream_rq_4xx", "upstream_rq_5xx", "upstream_rq_503",
    "upstream_rq_pending_overflow", "upstream_cx_overflow", "upstream_cx_pool_overflow",
    "upstream_cx_none_healthy", "upstream_rq_retry", "upstream_rq_retry_success",
    "upstream_rq_retry_overflow", "upstream_rq_retry_limit_exceeded", "upstream_rq_timeout",
    "upstream_rq_per_try_timeout", "upstream_cx_connect_fail", "upstream_cx_connect_timeout",
    "upstream_cx_total", "upstream_cx_destroy_remote_with_active_rq", "upstream_rq_rx_reset",
    "upstream_rq_tx_reset", "upstream_rq_pending_failure_eject", "update_attempt", "update_success",
    "update_rejected", "update_empty",
)
_OPEN_GAUGES = ("cx_open", "cx_pool_open", "rq_open", "rq_pending_open", "rq_retry_open")
# RawSource meta: payload key -> why the collector did not ask for it (by design, not a gap).
NOT_ASKED = "not_asked"

T = TypeVar("T")


def _use(raw: RawSource, key: str, parse: Callable[[str], T], failures: list[str]) -> T | None:
    """Parse payload ``key`` or record, in words, why it cannot be used."""
    p = raw.get(key)
    if p is None:
        if key not in raw.meta.get(NOT_ASKED, {}):
            failures.append(f"{key}: not fetched")
        return None
    why = p.failure()
    if why:
        extra = f"; fallback {p.meta['fallback']}" if p.meta.get("fallback") else ""
        failures.append(f"{key} ({_path(p)}): {why}{extra}")
        return None
    try:
        return parse(p.body or "")
    except ValueError as exc:
        failures.append(str(exc))
        return None


def _path(p: Payload) -> str:
    return urlsplit(p.url).path or p.key


def route_hosts(routes: list[HttpRoute]) -> dict[str, str]:
    """Cluster -> the service host whose routes send to it (first domain without a port).

    App Mesh cluster names carry the target virtual node, not the virtual service; the egress
    route configuration names its virtual hosts after the virtual service
    (``cart-service.shop.svc.cluster.local``), so the routes say which service a cluster serves.
    """
    out: dict[str, str] = {}
    for r in routes:
        hosts = [d for d in r.domains if d and d != "*" and ":" not in d]
        if not hosts:
            continue
        best = max(hosts, key=len)  # the FQDN rather than a short alias
        for d in r.destinations:
            out.setdefault(d.cluster, best)
    return out


class _StatPlan(NamedTuple):
    """Where the model's fields are among one cluster's stat names (see :func:`_plan`)."""

    counters: tuple[str, ...]  # the COUNTERS present, in COUNTERS' order
    gauges: tuple[tuple[str, str], ...]  # (stat, circuit_breaker_open key), in the stats' order
    ejected: str | None  # the ejections-total stat that counts, if any


# Plans by the tuple of a cluster's stat names. Envoy gives every cluster of a kind the same stat
# names in the same order (75,863 clusters at 5,000 services, a handful of name lists), so the
# walk over every stat name to find the counters and breaker gauges is done once per list.
# Bounded (names come from the proxies): emptied when full.
_PLANS: dict[tuple[str, ...], _StatPlan] = {}
_PLANS_MAX = 4_096


def _plan(names: tuple[str, ...]) -> _StatPlan:
    plan = _PLANS.get(names)
    if plan is not None:
        return plan
    gauges: list[tuple[str, str]] = []
    for stat in names:
        if stat.startswith("circuit_breakers."):
            priority, _, gauge = stat[len("circuit_breakers."):].partition(".")
            if gauge in _OPEN_GAUGES:
                # Default priority keeps the bare gauge name ("rq_open"); others are prefixed.
                gauges.append((stat, gauge if priority == "default" else f"{priority}.{gauge}"))
    present = set(names)
    ejected = next((s for s in ("outlier_detection.ejections_enforced_total", "outlier_detection.ejections_total")
                    if s in present), None)
    plan = _StatPlan(tuple(c for c in COUNTERS if c in present), tuple(gauges), ejected)
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    _PLANS[names] = plan
    return plan


def _cluster(name: str, status: ClusterStatus | None, stats: dict[str, float],
             dump: ConfigDump | None, hosts_by_route: dict[str, str] | None = None) -> UpstreamCluster:
    parsed = parse_cluster_name(name)
    if parsed.service_host is None and parsed.direction == "outbound" and hosts_by_route:
        parsed = replace(parsed, service_host=hosts_by_route.get(name))
    hosts = status.hosts if status else ()
    healthy = stats.get("membership_healthy")
    total = stats.get("membership_total")
    if total is None and status is not None:
        total, healthy = len(hosts), sum(1 for h in hosts if h.healthy)
    plan = _plan(tuple(stats))
    open_gauges: dict[str, int] = {}
    for stat, key in plan.gauges:
        open_gauges[key] = int(stats[stat])
    return UpstreamCluster(
        name=name, direction=parsed.direction, service_host=parsed.service_host, port=parsed.port,
        subset=parsed.subset, hosts=hosts,
        membership_healthy=int(healthy) if healthy is not None else None,
        membership_total=int(total) if total is not None else None,
        outlier_ejections_active=int(stats.get("outlier_detection.ejections_active", 0)),
        outlier_ejections_total=int(stats[plan.ejected]) if plan.ejected else 0,
        # Plain ints: built frozen at once (frozen_map would walk every value to freeze it; a
        # mesh of thousands of proxies has tens of thousands of clusters).
        circuit_breaker_open=FrozenDict(open_gauges),
        counters=FrozenDict({c: int(stats[c]) for c in plan.counters}),
        warming=bool(dump and name in dump.warming_clusters),
        version=dump.cluster_versions.get(name) if dump else None,
        tls=dump.cluster_tls.get(name) if dump else None,
        **(dump.cluster_settings.get(name, {}) if dump else {}),
    )


def _clusters(statuses: list[ClusterStatus] | None, stats: EnvoyStats | None,
              dump: ConfigDump | None) -> tuple[UpstreamCluster, ...]:
    by_name = {c.name: c for c in statuses or []}
    names: dict[str, None] = dict.fromkeys(by_name)
    if dump:
        names.update(dict.fromkeys(dump.cluster_versions))
        names.update(dict.fromkeys(dump.warming_clusters))
    if stats:
        names.update(dict.fromkeys(stats.clusters))
    cluster_stats = stats.clusters if stats else {}
    hosts_by_route = route_hosts(dump.routes) if dump else {}
    return tuple(_cluster(n, by_name.get(n), cluster_stats.get(n, {}), dump, hosts_by_route) for n in names)


def _identity(raw: RawSource, node: dict[str, Any] | None) -> tuple[str, str]:
    pod, ns = raw.meta.get("pod") or "", raw.meta.get("namespace") or ""
    from_node = pod_from_node_id((node or {}).get("id"))
    # The node naming the pod we were told (the usual case) changes nothing: no URL to split.
    if from_node and from_node != (pod, ns) and (
            not ns or not pod or pod == urlsplit(str(raw.meta.get("url", ""))).netloc):
        pod, ns = from_node
    return pod or raw.name.removeprefix("envoy:"), ns


def normalize_proxy(raw: RawSource, ctx: NormalizeContext | None = None) -> SnapshotPart:
    """Normalise one proxy; partial data still yields a Proxy, with the gaps in the status."""
    if not raw.payloads:  # the collector found nothing to ask
        note = raw.meta.get("note") or "no Envoy admin payloads"
        return SnapshotPart(sources=[SourceStatus(raw.name, SourceState.NO_DATA, note,
                                                  raw.duration_s, "envoy")])
    failures: list[str] = []
    problems: list[str] = []  # single items left out (a host, a route): the rest is used
    scraped = (_use(raw, "scraped", lambda body: parse_prometheus_stats(as_exposition(body)), failures)
               if raw.get("scraped") else None)
    # The first request doubles as the reachability probe (/ready, or /server_info when
    # Prometheus already said whether the proxy is live, or /config_dump when only that is read:
    # collectors/envoy/fetch.DUMP_ONLY).
    probe = raw.get("ready") or raw.get("server_info") or raw.get("config_dump")
    if probe is None or probe.error:
        reason = (probe.error if probe else None) or "/ready was not fetched"
        what = ("not asked" if reason.startswith("not asked") else
                "no answer" if "deadline" in reason or "timed out" in reason else "proxy unreachable")
        return SnapshotPart(sources=[SourceStatus(
            raw.name, SourceState.ERROR, f"{raw.name}: {what}: {reason.removeprefix('not asked: ')}",
            raw.duration_s, "envoy")])
    ready_p = raw.get("ready")
    ready: bool | None = None
    ready_state: str | None = None
    if ready_p is not None:
        ready, ready_state, ready_unknown = readiness(ready_p.status, ready_p.body)
        if ready_unknown:  # no evidence either way: could not check, not "not ready"
            failures.append(f"ready ({_path(ready_p)}): {ready_unknown}")
    elif scraped is not None and "server.live" in scraped.server:
        ready = scraped.server["server.live"] == 1
    info = _use(raw, "server_info", parse_server_info, failures) or ServerInfo()
    statuses = _use(raw, "clusters", lambda text: parse_clusters(text, problems), failures)
    dump = _use(raw, "config_dump", parse_config_dump, failures)
    if dump:
        problems.extend(dump.problems)
    known = [c.name for c in statuses or []] + list(dump.cluster_versions if dump else [])
    stats = _use(raw, "stats", lambda text: parse_stats(text, known), failures) or scraped

    node = info.node or (dump.node if dump else None) or {}
    pod, ns = _identity(raw, node)
    workload = workload_of(raw.meta, node, pod, ns)
    appmesh = parse_node_id(str(node.get("id") or ""))
    if appmesh is not None:
        # An App Mesh sidecar is its virtual node: CloudWatch and X-Ray name it that way too.
        workload = appmesh.workload
    proxy_id = f"{pod}.{ns}" if ns else pod
    server = stats.server if stats else {}
    rejected = {x: int(server[k]) for x, k in (("cds", "cluster_manager.cds.update_rejected"),
                                               ("lds", "listener_manager.lds.update_rejected"),
                                               ("rds", RDS_REJECTED)) if k in server}
    connected = server.get("control_plane.connected_state")
    warming = server.get("cluster_manager.warming_clusters")
    proxy = Proxy(
        id=proxy_id, pod=pod, namespace=ns, workload=workload,
        admin_url=raw.meta.get("url"),
        ready=ready,
        # /server_info's state, else the one /ready named: both are Envoy's own words.
        state=info.state or ready_state, envoy_version=info.version or node_version(node),
        uptime_s=info.uptime_s if info.uptime_s is not None else server.get("server.uptime"),
        node_id=node.get("id"),
        xds=tuple(dump.xds) if dump else (),
        control_plane_connected=bool(connected) if connected is not None else None,
        update_rejected=FrozenDict(rejected),  # ints: nothing for frozen_map to freeze
        warming_clusters=int(warming) if warming is not None else len(dump.warming_clusters if dump else []),
        clusters=_clusters(statuses, stats, dump),
        routes=tuple(dump.routes) if dump else (),
        listeners=tuple(dump.listeners) if dump else (),
        listener_details=tuple(dump.listener_details) if dump else (),
        http_counters=FrozenDict({k: int(server[k]) for k in HTTP_FILTER_COUNTERS if k in server}),
    )
    certs, unreadable = certs_from_secrets(dump.secrets, proxy_id=proxy_id, workload=workload) if dump else ([], [])
    problems.extend(unreadable)  # one certificate that does not parse costs that certificate
    certs_p = raw.get("certs")
    if not certs and certs_p is not None:
        admin_certs = _use(raw, "certs", lambda t: certs_from_admin(t, proxy_id=proxy_id, workload=workload),
                           failures)
        certs = admin_certs or []
    elif certs_p is not None and certs_p.failure():
        failures.append(f"certs ({_path(certs_p)}): {certs_p.failure()}")
    if failures:
        status = SourceStatus(raw.name, SourceState.ERROR,
                              f"{raw.name}: partial data; " + "; ".join(failures), raw.duration_s, "envoy",
                              problems=tuple(problems))
    else:
        status = SourceStatus(raw.name, SourceState.OK, "", raw.duration_s, "envoy", problems=tuple(problems))
    return SnapshotPart(proxies=[proxy], certs=list(certs), sources=[status])
