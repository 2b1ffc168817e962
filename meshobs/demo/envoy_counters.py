"""Each sidecar's counters and readiness in an authored (``rich``) scenario: traffic counted
phase by phase (a fault's errors only since its onset), the inbound side from the destination's
view (every retry attempt, the callee's own errors), per route configuration RDS stats, inbound
HTTP connection-manager stats, the scenario's own counters (retries, RBAC, BlackHoleCluster...),
NACK counts, and the state of a proxy that is not ready or never got its configuration.
"""

from __future__ import annotations

import itertools
from typing import Any

from meshobs.raw import RawSource

from .envoy_config import ClusterView, MeshView
from .render_kubernetes import PodSpec
from .state import Rejection

NOT_REACHED = ("UH", "UF", "UO", "UC", "NR")


def _segments(edge: Any, uptime_s: float) -> list[tuple[float, float]]:
    """(start age, duration) of each phase of ``edge`` within the pod's uptime."""
    bounds = [0.0, *edge.boundaries, float("inf")]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        hi = min(hi, uptime_s)
        if hi > lo:
            out.append((lo, hi - lo))
    return out


def count_traffic(scenario: Any, clusters: list[ClusterView], pod: PodSpec, counters: Any) -> None:
    """Count a pod's outbound traffic (the source's view) and inbound traffic (the destination's
    view: every retry attempt, the callee's own errors) phase by phase."""
    w = pod.workload
    uptime = counters.uptime_s
    for cl in clusters:
        for edge, share in cl.edges:
            if not edge.source_reported:
                continue  # mirrored: the caller counts it on the mirror cluster, not here
            for age, span in _segments(edge, uptime):
                view = edge.view("source", age)
                counters.add(cl.name, view.rps * share / w.replicas, view.responses, span)
    if w.gateway:
        return
    for edge in scenario.edges:
        if edge.destination_workload != w.name or edge.destination_namespace != w.namespace:
            continue
        for age, span in _segments(edge, uptime):
            view = edge.view("destination", age)
            served = tuple(r for r in view.responses if not any(f in r[1] for f in NOT_REACHED))
            counters.add(f"inbound|{w.port}||", view.rps / w.replicas, served, span)


def _rejection(scenario: Any, pod: PodSpec, xds: str) -> Rejection | None:
    state = scenario.proxy_states.get(pod.workload.name)
    return next((r for r in (state.rejections if state else ()) if r.xds == xds), None)


def extend_stats(scenario: Any, mesh: MeshView, pod: PodSpec, stats: dict[str, Any], counters: Any
                 ) -> dict[str, Any]:
    """The classic stats plus per-route RDS stats, inbound HTTP connection-manager stats, the
    scenario's own counters, NACK counts and the control-plane connection."""
    entries: list[dict[str, Any]] = stats["stats"]
    values = {e["name"]: e for e in entries}
    state = scenario.proxy_states.get(pod.workload.name)
    uptime = counters.uptime_s
    for xds, name in (("cds", "cluster_manager.cds.update_rejected"), ("lds", "listener_manager.lds.update_rejected")):
        r = _rejection(scenario, pod, xds)
        if r is not None:
            values[name]["value"] = r.attempts
    if state is not None and not state.connected:
        values["control_plane.connected_state"]["value"] = 0
    if state is not None and state.warming_clusters:
        values["cluster_manager.warming_clusters"]["value"] = len(state.warming_clusters)
    extra: dict[str, float] = {}
    # RDS: one set of stats per route configuration the proxy subscribes to.
    w = pod.workload
    for config in mesh.routes_dump(pod).get("dynamic_route_configs", []):
        route_name = config["route_config"]["name"]
        port = route_name.split(".")[-1]
        prefix = f"http.outbound_0.0.0.0_{port}.rds.{route_name}."
        r = _rejection(scenario, pod, "rds")
        rejected = r.attempts if r is not None and r.route_config in ("", route_name) else 0
        pushes = 40 + int(uptime // 3600)
        extra.update({prefix + "config_reload": pushes - rejected, prefix + "update_attempt": pushes + 1,
                      prefix + "update_success": pushes - rejected, prefix + "update_rejected": rejected,
                      prefix + "update_empty": 0, prefix + "version": 1337435 + pushes - rejected})
    # Inbound HTTP connection manager: what this pod's sidecar served, by class.
    if not w.gateway:
        inbound = counters.values.get(f"inbound|{w.port}||", {})
        hcm = f"http.inbound_0.0.0.0_{w.port}."
        total = 0
        for cls in ("2xx", "3xx", "4xx", "5xx"):
            n = int(inbound.get(f"upstream_rq_{cls}", 0))
            extra[hcm + f"downstream_rq_{cls}"] = n
            total += n
        extra[hcm + "downstream_rq_total"] = total
        extra[hcm + "downstream_cx_active"] = 3
    for stat in state.counters if state else ():
        since = uptime if stat.since_s_ago is None else min(uptime, stat.since_s_ago)
        extra[stat.name] = extra.get(stat.name, 0) + int(stat.per_s * since)
    for name, value in extra.items():
        if name in values:
            values[name]["value"] = int(value)
        else:
            entry = {"name": name, "value": int(value)}
            entries.append(entry)
            values[name] = entry
    return stats


def apply_readiness(scenario: Any, pod: PodSpec, raw: RawSource) -> None:
    """A proxy that is not ready answers /ready with 503 and its state name, as Envoy does; one
    that never got its first configuration has no workload certificate either (istio-agent's
    CSR goes to istiod, which did not answer)."""
    import json

    state = scenario.proxy_states.get(pod.workload.name)
    if state is None or state.ready:
        return
    for payload in raw.payloads:
        if payload.key == "ready":
            payload.status = 503
            payload.body = "PRE_INITIALIZING\n"
        elif payload.key == "server_info" and payload.body:
            info = json.loads(payload.body)
            info["state"] = "PRE_INITIALIZING"
            payload.body = json.dumps(info, indent=1)
        elif payload.key == "certs" and not state.initialized:
            payload.body = json.dumps({"certificates": []}, indent=1)
        elif payload.key == "config_dump" and payload.body and not state.initialized:
            dump = json.loads(payload.body)
            for config in dump["configs"]:
                if config["@type"].endswith("SecretsConfigDump"):
                    config.pop("dynamic_active_secrets", None)
                    config["dynamic_warming_secrets"] = [{"name": "default", "version_info": "uninitialized"}]
            payload.body = json.dumps(dump, indent=1)
