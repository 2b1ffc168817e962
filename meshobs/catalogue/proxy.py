"""Finding codes 01xx: proxy health (sidecars, readiness, restarts, xDS freshness, warming)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0101", Severity.ERROR, "Sidecar missing on a meshed workload",
         "{workload}: {missing} of {pods} pods run without a sidecar proxy in a meshed {scope}"),
    Code("MSH0102", Severity.ERROR, "Proxy not ready",
         "proxy {proxy} is not ready (ready={ready}, state {state})"),
    Code("MSH0103", Severity.WARNING, "Proxy restarting",
         "pod {pod}: the {container} restarted {restarts} times"),
    Code("MSH0104", Severity.WARNING, "Proxy restarted recently",
         "proxy {proxy} has been up {uptime_s}s while the other proxies of {workload} have been up "
         "{peer_uptime_s}s (median)"),
    Code("MSH0105", Severity.WARNING, "Proxy configuration behind the mesh",
         "proxy {proxy} holds {xds_type} version {version}; {peers} other proxies hold {latest}"),
    Code("MSH0106", Severity.WARNING, "Proxy configuration not updated for too long",
         "proxy {proxy} last received {xds_type} {age_s}s ago (threshold {threshold_s}s)"),
    Code("MSH0107", Severity.ERROR, "Proxy rejected configuration updates",
         "proxy {proxy} rejected {count} {xds_type} update(s) from the control plane"),
    Code("MSH0108", Severity.ERROR, "Proxy disconnected from the control plane",
         "proxy {proxy} is not connected to the control plane"),
    Code("MSH0109", Severity.WARNING, "Clusters stuck warming",
         "proxy {proxy} has {count} cluster(s) still warming: {clusters}"),
]
