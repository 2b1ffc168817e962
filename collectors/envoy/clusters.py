"""Envoy ``/clusters?format=json`` -> hosts per cluster with their health.

Envoy's JSON changed field style over time: current releases write snake_case
(``host_statuses``, ``eds_health_status``), older ones (Istio 1.3 era) lowerCamelCase
(``hostStatuses``, ``edsHealthStatus``). Proto3 JSON omits zero values, so a missing stat is 0.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

from meshobs.model import UpstreamHost
from meshobs.shape import as_list, as_map, describe, each, load_json

# eds_health_status values under which Envoy still sends traffic to a host.
_ROUTABLE_EDS = {"HEALTHY", "UNKNOWN", "DEGRADED", None}
_UNHEALTHY_FLAGS = (
    "failed_outlier_check", "failed_active_health_check", "failed_active_degraded_check",
    "pending_dynamic_removal", "pending_active_hc", "excluded_via_immediate_hc_fail",
    "active_hc_timeout",
)


@dataclass(frozen=True)
class ClusterStatus:
    """One entry of ``cluster_statuses``."""

    name: str
    added_via_api: bool
    hosts: tuple[UpstreamHost, ...]


def pick(obj: Any, snake: str, default: Any = None) -> Any:
    """``obj[snake]``, falling back to the lowerCamelCase spelling older Envoys used; ``default``
    when ``obj`` is not a mapping at all (a malformed payload reads as absent fields)."""
    if not isinstance(obj, dict):
        return default
    if snake in obj:
        return obj[snake]
    return obj.get(camel(snake), default)


@functools.cache
def camel(snake: str) -> str:
    """``retry_policy`` -> ``retryPolicy``: the lowerCamelCase spelling of a snake_case field."""
    # A handful of field names, asked for hundreds of thousands of times on a big mesh.
    head, *rest = snake.split("_")
    return head + "".join(w.title() for w in rest)


def _address(addr: Any) -> str:
    if not isinstance(addr, dict):
        return str(addr or "")
    sock = pick(addr, "socket_address")
    if isinstance(sock, dict):
        port = pick(sock, "port_value")
        host = sock.get("address", "")
        return f"{host}:{port}" if port is not None else str(host)
    pipe = addr.get("pipe")
    if isinstance(pipe, dict):
        return f"unix:{pipe.get('path', '')}"
    internal = pick(addr, "envoy_internal_address")
    if isinstance(internal, dict):
        return f"internal:{pick(internal, 'server_listener_name', '')}"
    return json.dumps(addr, sort_keys=True)


def _stat_value(value: Any, where: str) -> int:
    # proto3 JSON writes uint64 counters as strings ("12"); a missing value is 0.
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where}: expected a number, got {describe(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: expected a number, got {describe(value)}") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return int(number)


def _host(raw: Any) -> UpstreamHost:
    if not isinstance(raw, dict):
        raise ValueError(f"expected a host object, got {describe(raw)}")
    stats = {str(s.get("name")): _stat_value(s.get("value", 0), f"stats.{s.get('name')}")
             for s in as_list(raw.get("stats")) if isinstance(s, dict)}
    health = as_map(pick(raw, "health_status", {}))
    eds = pick(health, "eds_health_status")
    if eds is not None and not isinstance(eds, str):
        raise ValueError(f"health_status.eds_health_status: expected a string, got {describe(eds)}")
    flags = {flag: bool(pick(health, flag, False)) for flag in _UNHEALTHY_FLAGS}
    healthy = eds in _ROUTABLE_EDS and not any(flags.values())
    return UpstreamHost(
        address=_address(raw.get("address")),
        healthy=healthy,
        eds_health=eds,
        failed_outlier_check=flags["failed_outlier_check"],
        failed_active_health_check=flags["failed_active_health_check"],
        rq_total=stats.get("rq_total", 0),
        rq_error=stats.get("rq_error", 0),
        cx_connect_fail=stats.get("cx_connect_fail", 0),
    )


def parse_clusters(text: str, problems: list[str] | None = None) -> list[ClusterStatus]:
    """Parse ``/clusters?format=json``; raises ValueError when it is not that shape.

    A malformed host costs that host only: its problem goes to ``problems`` (raised when None).
    """
    try:
        doc = load_json(text, "clusters")
    except ValueError as exc:
        raise ValueError(f"{exc}; was /clusters asked with ?format=json?") from None
    if not isinstance(doc, dict):
        raise ValueError("clusters: expected an object with 'cluster_statuses'")
    statuses = pick(doc, "cluster_statuses", [])
    if not isinstance(statuses, list):
        raise ValueError("clusters: 'cluster_statuses' is not a list")
    out = []
    for c in statuses:
        if not isinstance(c, dict) or "name" not in c:
            continue
        name = str(c["name"])
        hosts = each(as_list(pick(c, "host_statuses", [])), f"clusters: cluster {name} host_statuses",
                     _host, problems)
        out.append(ClusterStatus(name=name, added_via_api=bool(pick(c, "added_via_api", False)),
                                 hosts=tuple(hosts)))
    return out
