"""Envoy ``/clusters?format=json`` -> hosts per cluster with their health.

Envoy's JSON changed field style over time: current releases write snake_case
(``host_statuses``, ``eds_health_status``), older ones (Istio 1.3 era) lowerCamelCase
(``hostStatuses``, ``edsHealthStatus``). Proto3 JSON omits zero values, so a missing stat is 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meshobs.model import UpstreamHost

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


def pick(obj: dict[str, Any], snake: str, default: Any = None) -> Any:
    """``obj[snake]``, falling back to the lowerCamelCase spelling older Envoys used."""
    if snake in obj:
        return obj[snake]
    head, *rest = snake.split("_")
    camel = head + "".join(w.title() for w in rest)
    return obj.get(camel, default)


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


def _host(raw: dict[str, Any]) -> UpstreamHost:
    stats = {str(s.get("name")): int(float(s.get("value", 0) or 0))
             for s in raw.get("stats", []) if isinstance(s, dict)}
    health = pick(raw, "health_status", {}) or {}
    eds = pick(health, "eds_health_status")
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


def parse_clusters(text: str) -> list[ClusterStatus]:
    """Parse ``/clusters?format=json``; raises ValueError when it is not that shape."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"clusters: not valid JSON ({exc.msg} at char {exc.pos}); "
                         "was /clusters asked with ?format=json?") from None
    if not isinstance(doc, dict):
        raise ValueError("clusters: expected an object with 'cluster_statuses'")
    statuses = pick(doc, "cluster_statuses", [])
    if not isinstance(statuses, list):
        raise ValueError("clusters: 'cluster_statuses' is not a list")
    out = []
    for c in statuses:
        if not isinstance(c, dict) or "name" not in c:
            continue
        hosts = pick(c, "host_statuses", []) or []
        out.append(ClusterStatus(
            name=str(c["name"]), added_via_api=bool(pick(c, "added_via_api", False)),
            hosts=tuple(_host(h) for h in hosts if isinstance(h, dict))))
    return out
