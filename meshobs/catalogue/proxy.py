"""Finding codes 01xx: proxy health (sidecars, readiness, restarts, configuration delivery, warming)
and the control plane that delivers it (istiod, its sidecar injector)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0101", Severity.ERROR, "Sidecar missing on a meshed workload",
         "{workload}: {missing} of {pods} pods run without a sidecar proxy in a meshed {scope}"),
    Code("MSH0102", Severity.ERROR, "Proxy not ready",
         "proxy {proxy} is not ready (ready={ready}, state {state})", follows_from="config"),
    Code("MSH0103", Severity.WARNING, "Proxy restarting",
         "pod {pod}: the {container} restarted {restarts} times"),
    Code("MSH0104", Severity.WARNING, "Proxy restarted recently",
         "proxy {proxy} has been up {uptime_s}s while the other proxies of {workload} have been up "
         "{peer_uptime_s}s (median)"),
    # Configuration delivery: what istiod sent vs what the proxy acknowledged (syncz), rejects.
    Code("MSH0105", Severity.WARNING, "Proxy has not acknowledged the configuration istiod sent",
         "proxy {proxy} has not acknowledged the {xds_type} push istiod {istiod} sent {sent_ago} ago ({status})",
         effects=("errors", "config")),
    Code("MSH0106", Severity.WARNING, "Proxy configuration not updated for too long",
         "proxy {proxy} last received {xds_type} {age_s}s ago (threshold {threshold_s}s)",
         effects=("errors", "config")),
    Code("MSH0107", Severity.ERROR, "Proxy rejects configuration from the control plane",
         "proxy {proxy} rejects {xds_type} updates from the control plane ({signals}){culprit}",
         effects=("errors", "config")),
    Code("MSH0108", Severity.ERROR, "Proxy disconnected from the control plane",
         "proxy {proxy} is not connected to the control plane", effects=("errors", "config"),
         follows_from="config"),
    Code("MSH0109", Severity.WARNING, "Clusters stuck warming",
         "proxy {proxy} has {count} cluster(s) still warming: {clusters}", follows_from="config"),
    # The control plane itself (mesh-level: istiod, its injector).
    Code("MSH0110", Severity.ERROR, "istiod is not ready",
         "istiod {istiod} is not ready: {reason}", effects=("config",)),
    Code("MSH0111", Severity.ERROR, "istiod fails to push configuration",
         "istiod {istiod} fails to push configuration: {failures}", effects=("config",)),
    Code("MSH0112", Severity.WARNING, "Proxy and control plane versions outside Istio's supported skew",
         "{count} proxies run Istio {proxy_versions} against istiod {istiod} ({version}): {why}", effects=()),
    Code("MSH0113", Severity.ERROR, "No sidecar injector for pods that expect one",
         "{pods} pods in {namespaces} expect Istio's sidecar injection, but no sidecar injector webhook "
         "{which}: new pods start without a sidecar"),
    Code("MSH0114", Severity.ERROR, "Sidecar injector webhook calls a Service that does not exist",
         "webhook {webhook} of MutatingWebhookConfiguration {configuration} calls Service {target}, which does not "
         "exist: pod creation {consequence}"),
    # Ambient's data plane: the node proxy (ztunnel) every ambient pod's traffic goes through.
    Code("MSH0115", Severity.ERROR, "No working node proxy (ztunnel) under ambient pods",
         "{pods} on node {node} without a working ztunnel: {state}"),
]
