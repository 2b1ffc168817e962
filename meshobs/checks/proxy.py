"""Proxy health: is there a sidecar, is it ready and stable, are its clusters warm?

Every check looks at the workloads of the target service. Whether a proxy is current with the
control plane is :mod:`.delivery`'s question.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import datetime

from meshobs.catalogue import Category
from meshobs.model import Mesh, MeshSnapshot, Pod, Proxy, ServiceRef, Workload

from ..words import plural
from .base import CouldNotCheck, Finding, Settings, check, finding, now_of


def _workloads(snapshot: MeshSnapshot, service: ServiceRef) -> list[Workload]:
    return snapshot.workloads_of(service)


def _proxies(snapshot: MeshSnapshot, service: ServiceRef) -> Iterator[tuple[Workload, Proxy]]:
    for w in _workloads(snapshot, service):
        for p in snapshot.proxies_of(w.ref):
            yield w, p


def _ambient_namespace(snapshot: MeshSnapshot, w: Workload) -> bool:
    """Do the other pods of the workload's namespace run on the ambient data plane?"""
    return any(p.ambient for p in snapshot.pods if p.namespace == w.ref.namespace)


@check("proxy.sidecar_missing", Category.PROXY, ("pods",), ("MSH0101",))
def sidecar_missing(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Pods of a meshed workload run without a sidecar (injection expected, or peers are meshed);
    pods on the ambient data plane have none by design, and ambient's node proxy (ztunnel) is a
    proxy itself."""
    workloads = _workloads(snapshot, service)
    pods = {w.ref: snapshot.pods_of(w.ref) for w in workloads}
    peers_meshed = {w.ref for w in workloads
                    if w.meshed or any(p.has_sidecar for p in pods[w.ref])}
    for w in workloads:
        # Ambient pods have no sidecar by design: ztunnel and the waypoint carry their traffic.
        bare = [p for p in pods[w.ref] if not p.has_sidecar and not p.ambient and not p.node_proxy]
        injected_ns = any(p.sidecar_injection_expected for p in bare)
        others = peers_meshed - {w.ref}
        if bare and (injected_ns or others):
            scope = "namespace" if injected_ns else "service"
            yield finding("MSH0101", "proxy.sidecar_missing", f"Workload {w.ref}", service=service,
                          workload=str(w.ref), missing=len(bare), pods=len(pods[w.ref]), scope=scope,
                          evidence={"pods_without_sidecar": sorted(p.name for p in bare),
                                    "injection_expected": injected_ns,
                                    "meshed_peers": sorted(str(r) for r in others)},
                          magnitude=len(bare),
                          hint="restart the pods after enabling injection (kubectl rollout restart); "
                               "check the namespace label istio-injection=enabled or the pod's "
                               "sidecar.istio.io/inject annotation")
        elif not pods[w.ref] and w.meshed is False and others and not _ambient_namespace(snapshot, w):
            yield finding("MSH0101", "proxy.sidecar_missing", f"Workload {w.ref}", service=service,
                          workload=str(w.ref), missing="all", pods="its", scope="service",
                          evidence={"meshed_peers": sorted(str(r) for r in others)},
                          hint="enable sidecar injection for this workload like its peers")


@check("proxy.not_ready", Category.PROXY, ("pods|proxies",), ("MSH0102",))
def not_ready(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A sidecar answers /ready with something other than LIVE, or Kubernetes reports it unready."""
    seen_pods: set[str] = set()
    for w, p in _proxies(snapshot, service):
        seen_pods.add(f"{p.namespace}/{p.pod}")
        if p.ready is False or (p.state is not None and p.state != "LIVE"):
            yield finding("MSH0102", "proxy.not_ready", f"Proxy {p.id}", service=service, workloads=(w.ref,),
                          proxy=p.id, ready=p.ready, state=p.state or "unknown",
                          evidence={"ready": p.ready, "state": p.state, "uptime_s": p.uptime_s},
                          magnitude=1,
                          hint=f"curl localhost:15000/init_dump inside {p.pod} shows what has not "
                               "initialised; kubectl logs -c istio-proxy for the reason")
    for w in _workloads(snapshot, service):
        for pod in snapshot.pods_of(w.ref):
            if pod.has_sidecar and pod.sidecar_ready is False and f"{pod.namespace}/{pod.name}" not in seen_pods:
                yield finding("MSH0102", "proxy.not_ready", f"Proxy {pod.name}.{pod.namespace}",
                              service=service, workloads=(w.ref,), proxy=f"{pod.name}.{pod.namespace}", ready=False,
                              state="container not ready",
                              evidence={"pod": pod.name, "phase": pod.phase}, magnitude=1,
                              hint="kubectl describe pod shows the failing readiness probe "
                                   "(port 15021 /healthz/ready)")


@check("proxy.node_proxy", Category.PROXY, ("pods",), ("MSH0115",), mesh=Mesh.ISTIO)
def node_proxy(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Pods on Istio's ambient data plane send and receive through their node's proxy (ztunnel):
    one runs, Running and ready, on every node where the service's ambient pods run."""
    ambient = [p for w in _workloads(snapshot, service) for p in snapshot.pods_of(w.ref)
               if p.ambient and p.phase == "Running" and p.node]
    if not ambient:
        return
    by_node = snapshot.derived("proxy.node_proxies", _node_proxies)
    if not by_node:
        raise CouldNotCheck("no ztunnel pod was read (its namespace, usually istio-system, was not "
                            "collected)")
    served: dict[str, list[Pod]] = {}
    for p in ambient:
        served.setdefault(p.node or "", []).append(p)
    for node, pods in sorted(served.items()):
        proxies = by_node.get(node, [])
        if any(z.ready and z.phase == "Running" for z in proxies):
            continue
        if proxies:
            state = "; ".join(f"{z.name} {_pod_state(z)}" for z in sorted(proxies, key=lambda z: z.name))
        else:
            state = f"no ztunnel pod runs there (it runs on {len(by_node)} other node(s))"
        yield finding("MSH0115", "proxy.node_proxy", f"Node {node}", service=service,
                      workloads=tuple(dict.fromkeys(p.workload for p in pods if p.workload)),
                      node=node, pods=plural(len(pods), 'ambient pod'), state=state,
                      evidence={"node": node, "ambient_pods": sorted(f"{p.namespace}/{p.name}" for p in pods),
                                "node_proxies": [{"pod": f"{z.namespace}/{z.name}", "phase": z.phase,
                                                  "ready": z.ready, "restarts": z.restarts,
                                                  "waiting": sorted({h.waiting for h in z.restart_history
                                                                     if h.waiting})}
                                                 for z in sorted(proxies, key=lambda z: z.name)]},
                      magnitude=len(pods),
                      hint=f"kubectl -n {(proxies or next(iter(by_node.values())))[0].namespace} get pods "
                           f"-o wide --field-selector spec.nodeName={node}; kubectl logs of its ztunnel "
                           "pod, or the DaemonSet's tolerations and nodeSelector when none is scheduled there")


def _node_proxies(snapshot: MeshSnapshot) -> dict[str, list[Pod]]:
    """ztunnel's pods by node, built once per snapshot (a --all asks for every ambient service)."""
    by_node: dict[str, list[Pod]] = {}
    for p in snapshot.pods:
        if p.node_proxy and p.node:
            by_node.setdefault(p.node, []).append(p)
    return by_node


def _pod_state(pod: Pod) -> str:
    """``Running, not ready``, ``Pending``, ``Running, CrashLoopBackOff``: a pod's state in words."""
    waiting = sorted({h.waiting for h in pod.restart_history if h.waiting})
    words = [pod.phase, *waiting] if waiting else [pod.phase, "ready" if pod.ready else "not ready"]
    return ", ".join(words)


def _restarts(pod: Pod, now: datetime, recent_s: float) -> Iterator[tuple[str, int, dict[str, object]]]:
    """(container kind, restarts, evidence) for the restarts that matter now: the last one
    ended within ``recent_s`` of the snapshot, or the container waits to start again
    (CrashLoopBackOff). One restart days ago is history, however many the count says. When the
    status does not say when (a hand-made pod, an old bundle), the count alone is reported."""
    if not pod.restart_history:
        if pod.sidecar_restarts > 0:
            yield "sidecar", pod.sidecar_restarts, {"last_restart": "unknown"}
        app = pod.restarts - pod.sidecar_restarts
        if app > 0:
            yield "application container", app, {"last_restart": "unknown"}
        return
    for kind, sidecar in (("sidecar", True), ("application container", False)):
        mine = [h for h in pod.restart_history if h.sidecar is sidecar]
        current = [h for h in mine if h.waiting or h.last_at is None
                   or (now - h.last_at).total_seconds() <= recent_s]
        if not current:
            continue
        latest = max((h for h in current if h.last_at is not None), key=lambda h: h.last_at or now, default=None)
        yield kind, sum(h.count for h in mine), {
            "containers": sorted(h.container for h in current),
            "last_restart": latest.last_at.isoformat() if latest and latest.last_at else "unknown",
            "last_restart_s_ago": round((now - latest.last_at).total_seconds()) if latest and latest.last_at else None,
            "last_reason": latest.reason if latest else None,
            "waiting": sorted({h.waiting for h in current if h.waiting}),
            "recent_within_s": recent_s}


def _median_without(ordered: list[float], value: float) -> float:
    """The median of ``ordered`` (sorted) with one occurrence of ``value`` left out.

    What ``statistics.median`` gives for the other proxies, read off the one sorted list
    instead of re-sorting the peers once per proxy (quadratic in a workload's replicas).
    """
    skip = bisect_left(ordered, value)
    n = len(ordered) - 1

    def at(i: int) -> float:
        return ordered[i] if i < skip else ordered[i + 1]

    return at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2


@check("proxy.restarting", Category.PROXY, ("pods|proxies",), ("MSH0103", "MSH0104"))
def restarting(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Containers of the service's pods restarted recently (or wait to restart), or a proxy's
    uptime is far below its peers' and recent; restarts older than ``thresholds.restart_recent``
    are history."""
    now = now_of(snapshot)
    for w in _workloads(snapshot, service):
        for pod in snapshot.pods_of(w.ref):
            for container, count, when in _restarts(pod, now, settings.restart_recent_s):
                yield finding("MSH0103", "proxy.restarting", f"Pod {pod.namespace}/{pod.name}",
                              service=service, pod=f"{pod.namespace}/{pod.name}",
                              container=container, restarts=count,
                              evidence={"restarts": pod.restarts,
                                        "sidecar_restarts": pod.sidecar_restarts, **when},
                              magnitude=count,
                              hint="kubectl logs --previous -c istio-proxy (or the app container) "
                                   "and kubectl describe pod for OOMKilled or probe failures")
        proxies = [p for p in snapshot.proxies_of(w.ref) if p.uptime_s is not None]
        uptimes = sorted(p.uptime_s for p in proxies if p.uptime_s is not None)
        for p in proxies:
            assert p.uptime_s is not None
            if len(uptimes) < 2:
                continue
            peer = _median_without(uptimes, p.uptime_s)
            # Younger than its peers, and recently: a proxy restarted last week is history.
            if peer > 0 and p.uptime_s < settings.uptime_fraction * peer and p.uptime_s <= settings.restart_recent_s:
                yield finding("MSH0104", "proxy.restarting", f"Proxy {p.id}", service=service,
                              proxy=p.id, uptime_s=round(p.uptime_s), workload=str(w.ref),
                              peer_uptime_s=round(peer),
                              evidence={"uptime_s": p.uptime_s, "peer_median_uptime_s": peer,
                                        "fraction": settings.uptime_fraction},
                              hint="a proxy much younger than its peers restarted; check the pod's "
                                   "events and the previous container's logs")


@check("proxy.warming", Category.PROXY, ("proxies",), ("MSH0109",))
def warming(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Clusters stay in Envoy's warming state (waiting for endpoints or secrets)."""
    for w, p in _proxies(snapshot, service):
        names = sorted(c.name for c in p.clusters if c.warming)
        count = max(p.warming_clusters, len(names))
        if count > 0:
            shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "") if names else "(names not reported)"
            yield finding("MSH0109", "proxy.warming", f"Proxy {p.id}", service=service, workloads=(w.ref,), proxy=p.id,
                          count=count, clusters=shown,
                          evidence={"warming_clusters": count, "clusters": names}, magnitude=count,
                          hint="curl localhost:15000/config_dump shows dynamic_warming_clusters; "
                               "a cluster waits for EDS endpoints or an SDS secret")
