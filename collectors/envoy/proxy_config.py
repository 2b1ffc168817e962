"""What ``istioctl proxy-config listeners|clusters`` shows, read from one ``/config_dump`` entry.

Pure helpers for :mod:`.config_dump`: a listener's address, direction and filter chains (what
each matches, where it sends), and a cluster's discovery type, circuit-breaker thresholds,
outlier detection and the Istio resource that made it. Both the v3 (``typed_config``) and the
Envoy 1.12 / Istio 1.3 v2 shapes (``envoy.http_connection_manager``, ``config``) are read.
"""

from __future__ import annotations

from typing import Any

from meshobs.model import FilterChain, Listener, freeze

from .clusters import pick

HCM = frozenset({"envoy.filters.network.http_connection_manager", "envoy.http_connection_manager"})
TCP_PROXY = frozenset({"envoy.filters.network.tcp_proxy", "envoy.tcp_proxy"})
THRESHOLDS = ("max_connections", "max_pending_requests", "max_requests", "max_retries")
# Istio's cluster metadata names the resource by its API path: .../namespaces/NS/destination-rule/NAME.
_KINDS = {"destination-rule": "DestinationRule", "service-entry": "ServiceEntry",
          "virtual-service": "VirtualService", "sidecar": "Sidecar"}


def _filter_config(f: dict[str, Any]) -> dict[str, Any]:
    cfg = f.get("typed_config") or f.get("typedConfig") or f.get("config") or {}
    return cfg if isinstance(cfg, dict) else {}


def _destination(chain: dict[str, Any]) -> str:
    """Where a filter chain sends its traffic, in istioctl's words."""
    for f in chain.get("filters") or []:
        if not isinstance(f, dict):
            continue
        name, cfg = str(f.get("name", "")), _filter_config(f)
        if name in HCM or "HttpConnectionManager" in str(cfg.get("@type", "")):
            rds = cfg.get("rds")
            if isinstance(rds, dict) and pick(rds, "route_config_name"):
                return f"Route: {pick(rds, 'route_config_name')}"
            inline = pick(cfg, "route_config")
            if isinstance(inline, dict):
                for vh in pick(inline, "virtual_hosts", []) or []:
                    for route in vh.get("routes") or []:
                        match = route.get("match") or {}
                        prefix = match.get("prefix") or match.get("path")
                        if prefix is not None:
                            return f"Inline Route: {prefix}*" if "prefix" in match else f"Inline Route: {prefix}"
                return "Inline Route"
            return "HTTP"
        if name in TCP_PROXY or "TcpProxy" in str(cfg.get("@type", "")):
            if cfg.get("cluster"):
                return f"Cluster: {cfg['cluster']}"
            weighted = pick(cfg, "weighted_clusters") or {}
            names = [str(c.get("name")) for c in weighted.get("clusters", []) if isinstance(c, dict)]
            return "Clusters: " + ", ".join(names) if names else "TCP"
    return "Non-HTTP/Non-TCP"


def listener_detail(listener: dict[str, Any], state: str) -> Listener | None:
    """One listener (``state``: static | active | warming); None when it has no name or address."""
    sock = pick(listener.get("address") or {}, "socket_address") or {}
    address = sock.get("address")
    port = pick(sock, "port_value")
    name = listener.get("name") or (f"{address}_{port}" if address is not None else None)
    if not name:
        return None
    chains = [c for c in pick(listener, "filter_chains", []) or [] if isinstance(c, dict)]
    default = pick(listener, "default_filter_chain")
    if isinstance(default, dict):
        chains.append(default)
    direction = pick(listener, "traffic_direction")
    return Listener(
        name=str(name), address=str(address) if address is not None else None,
        port=int(port) if isinstance(port, int) or str(port).isdigit() else None,
        direction=str(direction) if direction else None,
        chains=tuple(FilterChain(freeze(pick(c, "filter_chain_match") or {}), _destination(c)) for c in chains),
        state=state)


def _config_source(cluster: dict[str, Any]) -> str | None:
    metadata = pick(pick(cluster, "metadata") or {}, "filter_metadata") or {}
    path = (metadata.get("istio") or {}).get("config") if isinstance(metadata, dict) else None
    if not isinstance(path, str):
        return None
    parts = path.strip("/").split("/")
    # /apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME
    if len(parts) >= 4 and parts[-4] == "namespaces":
        kind = _KINDS.get(parts[-2], parts[-2])
        return f"{kind} {parts[-3]}/{parts[-1]}"
    return path


def cluster_settings(cluster: dict[str, Any]) -> dict[str, Any]:
    """Discovery type, default-priority thresholds, outlier detection and config source."""
    kind = pick(cluster, "type")
    if kind is None and pick(cluster, "cluster_type"):
        kind = (pick(cluster, "cluster_type") or {}).get("name")  # e.g. envoy.clusters.aggregate
    thresholds: dict[str, Any] = {}
    for t in (pick(cluster, "circuit_breakers") or {}).get("thresholds") or []:
        if isinstance(t, dict) and t.get("priority", "DEFAULT") == "DEFAULT":
            for key in THRESHOLDS:
                value = pick(t, key)
                if isinstance(value, dict):  # UInt32Value as {"value": n}
                    value = value.get("value")
                if value is not None:
                    thresholds[key] = int(value)
    outlier = pick(cluster, "outlier_detection")
    # proto3 JSON omits a field at its default, and Cluster.type's default is STATIC.
    return {"discovery": str(kind) if kind else "STATIC",
            "thresholds": freeze(thresholds),
            "outlier_detection": freeze(outlier if isinstance(outlier, dict) else {}),
            "config_source": _config_source(cluster)}
